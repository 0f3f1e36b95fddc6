"""The directory's contract, held by both implementations: one phone number, one responder."""

from __future__ import annotations

import threading
import uuid

import pytest

from chalicelib.adapters.directory import PhoneTaken
from chalicelib.domain.escalation import ResponderContact


def phone() -> str:
    return "+1555" + str(uuid.uuid4().int)[:7]


def test_a_responder_is_found_by_id_and_by_phone(directory):
    number = phone()
    ann = ResponderContact(f"a-{uuid.uuid4().hex[:6]}", "Ann", number)
    directory.put_responder(ann, None)
    assert directory.responder(ann.id).phone == number
    assert directory.responder_by_phone(number).id == ann.id
    assert directory.responders([ann.id, "nobody"]).keys() == {ann.id}


def test_a_phone_belongs_to_one_responder_even_under_concurrency(directory):
    number = phone()
    outcomes = []

    def claim(n: int):
        try:
            directory.put_responder(ResponderContact(f"r{n}-{number}", f"R{n}", number), None)
            outcomes.append("ok")
        except PhoneTaken:
            outcomes.append("taken")

    threads = [threading.Thread(target=claim, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert outcomes.count("ok") == 1 and outcomes.count("taken") == 5


def test_changing_a_number_frees_the_old_one(directory):
    old, new = phone(), phone()
    ann = ResponderContact(f"a-{uuid.uuid4().hex[:6]}", "Ann", old)
    directory.put_responder(ann, None)
    moved = ResponderContact(ann.id, "Ann", new)
    directory.put_responder(moved, ann)
    directory.put_responder(ResponderContact(f"b-{uuid.uuid4().hex[:6]}", "Ben", old), None)
    with pytest.raises(PhoneTaken):
        directory.put_responder(ResponderContact(f"c-{uuid.uuid4().hex[:6]}", "Cy", new), None)


def test_deleting_a_responder_frees_its_number(directory):
    number = phone()
    ann = ResponderContact(f"a-{uuid.uuid4().hex[:6]}", "Ann", number)
    directory.put_responder(ann, None)
    directory.delete_responder(ann)
    assert directory.responder(ann.id) is None
    directory.put_responder(ResponderContact(f"b-{uuid.uuid4().hex[:6]}", "Ben", number), None)


def test_flags_update_in_place(directory):
    ann = ResponderContact(f"a-{uuid.uuid4().hex[:6]}", "Ann", phone())
    directory.put_responder(ann, None)
    assert directory.update_responder(ann.id, opted_out=True).opted_out
    assert directory.update_responder("nobody", opted_out=True) is None


def test_documents_are_created_then_replaced(directory):
    key = f"p-{uuid.uuid4().hex[:6]}"
    assert directory.put_document("policy", key, {"tiers": []}, "t1") is True
    assert directory.put_document("policy", key, {"tiers": [1]}, "t2") is False
    assert directory.document("policy", key) == ({"tiers": [1]}, "t2")
    assert directory.documents("policy", [key, "none"]) == {key: {"tiers": [1]}}
