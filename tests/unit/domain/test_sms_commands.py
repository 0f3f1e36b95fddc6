from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.domain.sms_commands import (
    CODE_ALPHABET,
    Action,
    SmsCommand,
    parse_sms_command,
    short_code,
)

ACK, RES, ESC = Action.ACK, Action.RESOLVE, Action.ESCALATE


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        # acknowledge
        ("ACK K3F9", SmsCommand(ACK, "K3F9")),
        ("A K3F9", SmsCommand(ACK, "K3F9")),
        ("ack k3f9", SmsCommand(ACK, "K3F9")),
        ("  Ack   k3f9 ", SmsCommand(ACK, "K3F9")),
        ("\tACK\n\nK3F9\r\n", SmsCommand(ACK, "K3F9")),
        ("ACK", SmsCommand(ACK)),
        ("ack.", SmsCommand(ACK)),
        ("A", SmsCommand(ACK)),
        ("ACK! K3F9.", SmsCommand(ACK, "K3F9")),
        ("ACK K3F9!", SmsCommand(ACK, "K3F9")),
        ("ACK K3F9 thanks", SmsCommand(ACK, "K3F9")),
        ("ACK K3F9 on my way, 2 min", SmsCommand(ACK, "K3F9")),
        ("ACK TS-K3F9QX", SmsCommand(ACK, "K3F9")),
        ("ack ts-k3f9qx", SmsCommand(ACK, "K3F9")),
        ("ACK K3F9QX", SmsCommand(ACK, "K3F9")),
        ("ACK #K3F9", SmsCommand(ACK, "K3F9")),
        ("ＡＣＫ Ｋ３Ｆ９", SmsCommand(ACK, "K3F9")),  # full-width keyboard
        ("ACK on my way", SmsCommand(ACK)),  # extra words after ACK are ignored, not a code
        ("ACK K3F0", SmsCommand(ACK)),  # 0 is not in the alphabet: never returned as a code
        ("ACK KOF9", SmsCommand(ACK)),
        ("ACK K3F", SmsCommand(ACK)),
        ("A man is here", SmsCommand(Action.UNKNOWN)),  # "A" + prose is not an ack
        # resolve
        ("RES K3F9", SmsCommand(RES, "K3F9")),
        ("res k3f9 all good now", SmsCommand(RES, "K3F9", "all good now")),
        ("RESOLVE K3F9 shopper   left\n the   store ", SmsCommand(RES, "K3F9", "shopper left the store")),
        ("RES. K3F9. fixed", SmsCommand(RES, "K3F9", "fixed")),
        ("RES TS-K3F9QX false alarm", SmsCommand(RES, "K3F9", "false alarm")),
        ("RES", SmsCommand(RES)),
        ("RES false alarm", SmsCommand(RES, None, "false alarm")),  # no guessing: the whole rest is the note
        ("RES all good 👍", SmsCommand(RES, None, "all good 👍")),
        ("RES K3F0 typo", SmsCommand(RES, None, "K3F0 typo")),
        # escalate
        ("ESC K3F9", SmsCommand(ESC, "K3F9")),
        ("esc k3f9 need backup", SmsCommand(ESC, "K3F9")),
        ("ESC", SmsCommand(ESC)),
        # help / opt-out / opt-in
        ("HELP", SmsCommand(Action.HELP)),
        ("help?", SmsCommand(Action.HELP)),
        ("STOP", SmsCommand(Action.STOP)),
        ("stop.", SmsCommand(Action.STOP)),
        ("Stop texting me", SmsCommand(Action.STOP)),
        ("UNSUBSCRIBE", SmsCommand(Action.STOP)),
        ("cancel", SmsCommand(Action.STOP)),
        ("END", SmsCommand(Action.STOP)),
        ("Quit", SmsCommand(Action.STOP)),
        ("STOPALL", SmsCommand(Action.STOP)),
        ("START", SmsCommand(Action.START)),
        ("unstop", SmsCommand(Action.START)),
        # emergency dispatch
        ("911 K3F9", SmsCommand(Action.DISPATCH, "K3F9")),
        ("911 k3f9", SmsCommand(Action.DISPATCH, "K3F9")),
        ("  911   TS-K3F9QX ", SmsCommand(Action.DISPATCH, "K3F9")),
        ("911 K3F9 shots fired", SmsCommand(Action.DISPATCH, "K3F9")),
        ("911", SmsCommand(Action.DISPATCH)),
        ("911 K3F0", SmsCommand(Action.DISPATCH)),  # not a valid code: the caller decides
        # test-page confirmation
        ("OK", SmsCommand(Action.OK)),
        ("ok", SmsCommand(Action.OK)),
        (" Ok. ", SmsCommand(Action.OK)),
        ("okay", SmsCommand(Action.OK)),
        ("YES", SmsCommand(Action.OK)),
        # unknown
        ("", SmsCommand(Action.UNKNOWN)),
        ("   \n\t ", SmsCommand(Action.UNKNOWN)),
        ("😀", SmsCommand(Action.UNKNOWN)),
        ("👍 K3F9", SmsCommand(Action.UNKNOWN)),
        ("K3F9", SmsCommand(Action.UNKNOWN)),
        ("OK thanks", SmsCommand(Action.UNKNOWN)),  # OK only confirms when it is the whole message
        ("ok K3F9", SmsCommand(Action.UNKNOWN)),
        ("yes I am on it", SmsCommand(Action.UNKNOWN)),
        ("9111 K3F9", SmsCommand(Action.UNKNOWN)),
        ("ACKK3F9", SmsCommand(Action.UNKNOWN)),
        ("Cancel K3F9", SmsCommand(Action.UNKNOWN)),  # ambiguous carrier word only counts as opt-out alone
        ("End of shift", SmsCommand(Action.UNKNOWN)),
        ("RESOLVED K3F9", SmsCommand(Action.UNKNOWN)),
    ],
)
def test_parse_table(body: str, expected: SmsCommand) -> None:
    assert parse_sms_command(body) == expected


def test_911_with_a_code_asks_for_dispatch_of_that_incident() -> None:
    assert parse_sms_command("911 K3F9") == SmsCommand(Action.DISPATCH, code="K3F9")


def test_ok_alone_confirms_a_test_page() -> None:
    assert parse_sms_command("OK") == SmsCommand(Action.OK)


def test_ok_followed_by_words_is_not_a_confirmation() -> None:
    assert parse_sms_command("OK see you").action is Action.UNKNOWN


def test_action_values_are_the_contract_strings() -> None:
    assert {a.value for a in Action} == {"ack", "resolve", "escalate", "dispatch", "ok", "help", "stop", "start",
                                         "unknown"}
    assert Action.ACK == "ack"


def test_note_is_capped_at_500_chars() -> None:
    cmd = parse_sms_command("RES K3F9 " + "x" * 2000)
    assert cmd.code == "K3F9"
    assert cmd.note == "x" * 500


def test_note_cap_does_not_leave_trailing_space() -> None:
    cmd = parse_sms_command("RES K3F9 " + "x" * 499 + " yz")
    assert cmd.note == "x" * 499


def test_very_long_input_does_not_raise() -> None:
    assert parse_sms_command("ACK K3F9 " + "🚨" * 1_000_000) == SmsCommand(ACK, "K3F9")
    assert parse_sms_command(" " * 1_000_000).action is Action.UNKNOWN


@pytest.mark.parametrize("body", [None, 42, b"ACK K3F9"])
def test_non_string_input_is_unknown(body: object) -> None:
    assert parse_sms_command(body) == SmsCommand(Action.UNKNOWN)  # type: ignore[arg-type]


def test_command_is_frozen() -> None:
    cmd = parse_sms_command("ACK K3F9")
    with pytest.raises(AttributeError):
        cmd.code = "ZZZZ"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("reference", "code"),
    [("TS-K3F9QX", "K3F9"), ("ts-k3f9qx", "K3F9"), ("K3F9QX", "K3F9"), ("  TS-ABCD23 ", "ABCD"), ("K3F9", "K3F9")],
)
def test_short_code(reference: str, code: str) -> None:
    assert short_code(reference) == code


def test_alphabet_excludes_ambiguous_characters() -> None:
    assert len(CODE_ALPHABET) == 31
    assert not set("01ILO") & set(CODE_ALPHABET)


@settings(max_examples=400, deadline=None)
@given(st.text())
def test_fuzz_never_raises_and_code_is_valid(body: str) -> None:
    cmd = parse_sms_command(body)
    assert isinstance(cmd, SmsCommand)
    assert isinstance(cmd.action, Action)
    assert cmd.code is None or (len(cmd.code) == 4 and set(cmd.code) <= set(CODE_ALPHABET))
    assert cmd.note is None or (0 < len(cmd.note) <= 500 and cmd.note == cmd.note.strip())
    if cmd.action is not Action.RESOLVE:
        assert cmd.note is None


_words = st.sampled_from(["ACK", "a", "Res", "RESOLVE", "esc", "911", "OK", "HELP", "stop", "START", "TS-K3F9QX",
                          "k3f9", "!"])


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(_words, st.text(max_size=12)), max_size=8), st.sampled_from([" ", "  ", "\n", "\t "]))
def test_fuzz_command_like_input(words: list[str], sep: str) -> None:
    cmd = parse_sms_command(sep.join(words))
    assert cmd.code is None or (len(cmd.code) == 4 and set(cmd.code) <= set(CODE_ALPHABET))


@settings(max_examples=200, deadline=None)
@given(
    st.text(alphabet=CODE_ALPHABET, min_size=4, max_size=4),
    st.sampled_from(["ACK", "ack", "A", "ESC", "RES", "resolve", "911"]),
    st.booleans(),
)
def test_any_valid_code_round_trips(code: str, word: str, lower: bool) -> None:
    body = f"{word} {code.lower() if lower else code}"
    assert parse_sms_command(body).code == code
