"""Unit tests for chalicelib.domain.paging: page records, their keys, and which steps a page request sends."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.domain.paging import PAGING_PURPOSES, Page, PageState, PageWrite, Purpose, page_key, steps_due


def _page(**changes: object) -> Page:
    fields = {"incident_id": "inc_1", "page_key": "page#0000#r1", "responder_id": "r1", "phone": "+15550000001",
              "code": "K3F9", "purpose": "page", "tier": 1, "step": 0, "state": "sending",
              "sent_at": "2026-11-25T15:00:00.000Z", **changes}
    return Page(**fields)


def test_page_key_names_purpose_zero_padded_step_and_responder() -> None:
    assert page_key(Purpose.PAGE.value, 3, "r1") == "page#0003#r1"
    assert page_key("duress", 12, "r-2") == "duress#0012#r-2"


def test_page_keys_of_one_purpose_sort_by_step() -> None:
    keys = [page_key("page", step, "r1") for step in (10, 2, 1000, 0)]
    assert sorted(keys) == [page_key("page", step, "r1") for step in (0, 2, 10, 1000)]


def test_steps_due_are_every_step_not_sent_yet_in_order() -> None:
    assert list(steps_due(-1, 0)) == [0]
    assert list(steps_due(0, 3)) == [1, 2, 3]  # tiers overtaken (a manual ESC) are sent with the next one


def test_no_step_is_due_when_the_request_is_not_ahead_of_what_was_sent() -> None:
    assert list(steps_due(2, 2)) == []
    assert list(steps_due(3, 1)) == []


@settings(max_examples=100, deadline=None)
@given(st.integers(-1, 20), st.lists(st.integers(0, 30), min_size=1, max_size=6))
def test_requests_in_any_order_send_every_step_exactly_once_in_order(start: int, requests: list[int]) -> None:
    sent, sent_steps = start, []
    for up_to in requests:
        sent_steps += steps_due(sent, up_to)
        sent = max(sent, up_to)
    assert sent_steps == list(range(start + 1, max([start, *requests]) + 1))


def test_a_sent_page_records_its_message_id_and_when() -> None:
    claimed = _page()
    sent = claimed.sent("msg-1", "2026-11-25T15:00:01.000Z")
    assert (sent.state, sent.message_id, sent.sent_at) == (PageState.SENT.value, "msg-1", "2026-11-25T15:00:01.000Z")
    assert claimed.state == "sending"  # pages are values: the claim is unchanged


def test_a_page_write_is_unconditional_unless_told() -> None:
    write = PageWrite(_page())
    assert (write.expect, write.stale_before) == (None, None)


def test_only_tier_pages_exhaustion_and_duress_are_recorded_as_paging() -> None:
    assert PAGING_PURPOSES == {Purpose.PAGE, Purpose.EXHAUSTED, Purpose.DURESS}
    assert {p.value for p in Purpose} == {"page", "exhausted", "duress", "cancelled", "reminder", "pressed",
                                          "shopper", "dispatch", "test"}
