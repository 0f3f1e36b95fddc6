from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.domain import sms_texts as t
from chalicelib.domain.incidents import KINDS
from chalicelib.domain.sms_commands import Action, parse_sms_command

EXTREME_COORDS = [
    (-89.99999, -179.99999), (89.99999, 179.99999), (-89.999994, -179.999994), (0.0, 0.0), (None, None), (12.3, None),
]
REF = "TS-K3F9QX"
LONG_NAME = "Maximilian-Alexander Wolfeschlegelsteinhausenbergerdorff " * 6


def _one_gsm_part(text: str) -> None:
    assert t.is_gsm7(text), text
    assert t.sms_parts(text) == 1, text
    assert len(text) <= 160


# --- GSM-7 / segment helpers -------------------------------------------------


def test_gsm7_basic_table_size_and_members() -> None:
    assert len(t.GSM7_BASIC) == 127  # 128 code points minus the escape
    assert {"@", "£", "é", "Δ", "ß", "\n", "§", "à", " "} <= t.GSM7_BASIC
    assert not set("^{}\\[~]|€") & t.GSM7_BASIC


@pytest.mark.parametrize(
    ("text", "expected"),
    [("Hello @ £5 ÄÖÑÜ", True), ("braces {} [] ~ | ^ € \\", True), ("", True), ("naïve", False),
     ("“quoted”", False), ("😀", False), ("ç", False), ("—", False)],
)
def test_is_gsm7(text: str, expected: bool) -> None:
    assert t.is_gsm7(text) is expected


@pytest.mark.parametrize(
    ("text", "parts"),
    [
        ("", 1),
        ("a" * 160, 1),
        ("a" * 161, 2),
        ("a" * 306, 2),
        ("a" * 307, 3),
        ("€" * 80, 1),  # extension chars cost 2 septets
        ("€" * 81, 2),
        ("a" * 159 + "{", 2),
        ("a" * 158 + "{", 1),
        ("a" * 152 + "[" + "a" * 152, 3),  # an escape pair is never split across parts
        ("a" * 151 + "[" + "a" * 153, 2),
        ("é" * 70, 1),  # GSM-basic accented letter stays GSM-7
        ("ï" * 70, 1),  # UCS-2
        ("ï" * 71, 2),
        ("a" * 159 + "ï", 3),  # one non-GSM char switches the whole text to UCS-2
        ("ï" * 134, 2),
        ("ï" * 135, 3),
        ("😀" * 35, 1),  # surrogate pairs: 2 UTF-16 units each
        ("😀" * 36, 2),
    ],
)
def test_sms_parts(text: str, parts: int) -> None:
    assert t.sms_parts(text) == parts


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("“Hi” ‘there’", "\"Hi\" 'there'"),
        ("a — b – c", "a - b - c"),
        ("wait…", "wait..."),
        ("naïve Zoë Łódź", "naive Zoe Lodz"),
        ("café Ñoño où", "café Ñoño où"),  # already GSM: untouched
        ("Ñandú", "Ñandu"),  # ú is not GSM (ù is)
        ("e\u0301", "é"),  # decomposed accent recombined, not dropped
        ("ﬁne Ｋ３", "fine K3"),
        ("zero\u200bwidth", "zerowidth"),
        ("tab\there", "tab here"),
        ("help 😀", "help ?"),
        ("中文", "??"),
        ("{€}", "{€}"),
    ],
)
def test_to_gsm7(text: str, expected: str) -> None:
    assert t.to_gsm7(text) == expected


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_to_gsm7_always_gsm(text: str) -> None:
    assert t.is_gsm7(t.to_gsm7(text))


# --- map link ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("lat", "lng", "expected"),
    [
        (37.77, -122.41, "https://maps.google.com/?q=37.77,-122.41"),
        (37.7749295, -122.4194155, "https://maps.google.com/?q=37.77493,-122.41942"),
        (10.0, 20.5, "https://maps.google.com/?q=10,20.5"),
        (-0.000001, 0.0, "https://maps.google.com/?q=0,0"),
        (-89.99999, -179.99999, "https://maps.google.com/?q=-89.99999,-179.99999"),
    ],
)
def test_map_link(lat: float, lng: float, expected: str) -> None:
    assert t.map_link(lat, lng) == expected


def test_map_link_rejects_non_finite() -> None:
    with pytest.raises(ValueError):
        t.map_link(float("nan"), 0.0)


# --- page / exhausted --------------------------------------------------------


def test_page_text_example() -> None:
    assert t.page_text(REF, "panic", 37.77, -122.41) == (
        "EMERGENCY TS-K3F9QX panic https://maps.google.com/?q=37.77,-122.41 Reply ACK K3F9 or RES K3F9"
    )


def test_page_text_without_location() -> None:
    text = t.page_text(REF, "medical", None, None)
    assert text == "EMERGENCY TS-K3F9QX medical no location Reply ACK K3F9 or RES K3F9"
    assert "https://" not in text


@pytest.mark.parametrize(("lat", "lng"), [(float("nan"), 1.0), (1.0, float("inf")), (91.0, 0.0), (0.0, -181.0)])
def test_invalid_coordinates_are_no_location(lat: float, lng: float) -> None:
    assert "no location" in t.page_text(REF, "panic", lat, lng)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(("lat", "lng"), EXTREME_COORDS)
def test_page_and_exhausted_fit_one_part_for_every_kind(kind: str, lat: float | None, lng: float | None) -> None:
    page = t.page_text(REF, kind, lat, lng)
    exhausted = t.exhausted_text(REF, kind, lat, lng)
    for text in (page, exhausted):
        _one_gsm_part(text)
        assert REF in text and kind in text
    assert page.endswith("Reply ACK K3F9 or RES K3F9")
    assert exhausted.startswith("EXHAUSTED: no one acknowledged TS-K3F9QX")
    assert exhausted.endswith("Reply ACK K3F9")


def test_page_reply_instruction_parses_back_to_the_code() -> None:
    page = t.page_text(REF, "panic", 1.0, 2.0)
    ack = page.split("Reply ", 1)[1].split(" or ")[0]
    assert parse_sms_command(ack) == parse_sms_command("ACK K3F9")
    assert parse_sms_command(ack).action is Action.ACK


def test_page_with_hostile_kind_stays_one_part() -> None:
    page = t.page_text(REF, "“weird”\nkind 😀 " * 40, -89.99999, -179.99999)
    _one_gsm_part(page)
    assert page.endswith("Reply ACK K3F9 or RES K3F9")
    assert "\n" not in page


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from(KINDS),
    st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True)),
    st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True)),
)
def test_page_fits_for_any_coordinates(kind: str, lat: float | None, lng: float | None) -> None:
    _one_gsm_part(t.page_text(REF, kind, lat, lng))
    _one_gsm_part(t.exhausted_text(REF, kind, lat, lng))


# --- confirmations and replies ------------------------------------------------


def test_fixed_texts_are_one_gsm_part() -> None:
    texts = [
        t.cancelled_text(REF), t.ack_confirmation_text(REF), t.resolve_confirmation_text(REF),
        t.escalate_confirmation_text(REF, 3), t.no_open_incident_text(), t.help_text(), t.opted_out_text(),
        t.opted_in_text(), t.unknown_code_text("K3F9"), t.already_closed_text(REF, "resolved"),
    ]
    for text in texts:
        _one_gsm_part(text)


def test_reference_texts_mention_reference_and_code() -> None:
    assert "TS-K3F9QX" in t.cancelled_text(REF) and "cancel" in t.cancelled_text(REF).lower()
    assert t.ack_confirmation_text(REF) == "You acknowledged TS-K3F9QX; reply RES K3F9 <note> when resolved"
    assert "TS-K3F9QX" in t.resolve_confirmation_text(REF)
    assert "tier 2" in t.escalate_confirmation_text(REF, 2)
    assert "K3F9" in t.unknown_code_text("k3f9")


def test_help_text_lists_commands() -> None:
    text = t.help_text()
    for command in ("ACK <code>", "RES <code> [note]", "ESC <code>", "911 <code>", "HELP", "STOP"):
        assert command in text


def test_opt_texts_point_to_the_opposite_keyword() -> None:
    assert "START" in t.opted_out_text()
    assert "STOP" in t.opted_in_text()


@pytest.mark.parametrize(
    ("at_iso", "hhmm"),
    [
        ("2024-05-01T12:34:56Z", "12:34Z"),
        ("2024-05-01T12:34:56+02:00", "10:34Z"),
        ("2024-05-01T07:05:00", "07:05Z"),
        ("2024-05-01T23:59:59.999999+00:00", "23:59Z"),
    ],
)
def test_already_acknowledged(at_iso: str, hhmm: str) -> None:
    assert t.already_acknowledged_text(REF, "Ann Lee", at_iso) == f"TS-K3F9QX already acknowledged by Ann Lee at {hhmm}"


def test_already_acknowledged_bad_time_omits_it() -> None:
    assert t.already_acknowledged_text(REF, "Ann", "garbage") == "TS-K3F9QX already acknowledged by Ann"


def test_already_acknowledged_long_name_truncated_to_fit() -> None:
    text = t.already_acknowledged_text(REF, LONG_NAME, "2024-05-01T12:34:56Z")
    _one_gsm_part(text)
    assert text.startswith("TS-K3F9QX already acknowledged by Maximilian")
    assert text.endswith(" at 12:34Z")
    assert len(text) == 160  # the name used all the room left


def test_names_are_converted_to_gsm7_and_single_line() -> None:
    text = t.already_acknowledged_text(REF, "Zoë “Z”\nO’Brien 🚓", "2024-05-01T12:00:00Z")
    assert text == "TS-K3F9QX already acknowledged by Zoe \"Z\" O'Brien ? at 12:00Z"


def test_empty_name_uses_fallback() -> None:
    assert t.already_acknowledged_text(REF, "  ", "2024-05-01T12:00:00Z") == (
        "TS-K3F9QX already acknowledged by another responder at 12:00Z")


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=400), st.text(max_size=40))
def test_name_texts_always_one_part(name: str, at_iso: str) -> None:
    _one_gsm_part(t.already_acknowledged_text(REF, name, at_iso))
    _one_gsm_part(t.already_closed_text(REF, name))
    _one_gsm_part(t.unknown_code_text(name))
    _one_gsm_part(t.refused_text(REF, name))


def test_long_name_with_extension_chars_counts_septets() -> None:
    text = t.already_acknowledged_text(REF, "€" * 200, "2024-05-01T12:34:56Z")
    _one_gsm_part(text)
    assert text.count("€") == (160 - len("TS-K3F9QX already acknowledged by  at 12:34Z")) // 2


def test_case_changes_keep_gsm7() -> None:
    # lower()/upper() of a GSM letter can leave the set (Ç -> ç, è -> È); conversion must happen afterwards
    _one_gsm_part(t.already_closed_text(REF, "ÇΣ"))
    _one_gsm_part(t.unknown_code_text("èùì"))
    _one_gsm_part(t.cancelled_text("ts-è"))


@pytest.mark.parametrize("status", ["resolved", "cancelled", "RESOLVED"])
def test_already_closed(status: str) -> None:
    text = t.already_closed_text(REF, status)
    assert text.startswith(f"TS-K3F9QX is already {status.lower()}")


def test_choose_incident_lists_refs_and_codes() -> None:
    text = t.choose_incident_text(["TS-AAAA22", "TS-BBBB33"])
    assert text == "Several open: TS-AAAA22 (ACK AAAA), TS-BBBB33 (ACK BBBB). Reply ACK <code>"


def test_choose_incident_truncates_list_to_fit() -> None:
    refs = [f"TS-{c}{c}{c}{c}22" for c in "ABCDEFGHJKMNPQRSTUVWXYZ"]
    text = t.choose_incident_text(refs)
    _one_gsm_part(text)
    assert "TS-AAAA22 (ACK AAAA)" in text
    assert "TS-ZZZZ22" not in text
    shown = text.count("(ACK ")
    assert 1 <= shown < len(refs)
    assert f"+{len(refs) - shown} more" in text
    assert text.endswith("Reply ACK <code>")


def test_choose_incident_empty_is_no_open() -> None:
    assert t.choose_incident_text([]) == t.no_open_incident_text()


# --- public helpers ----------------------------------------------------------


def test_fit_truncates_the_field_to_fill_one_part() -> None:
    text = t.fit("Before ", "x" * 300, " after")
    assert text == "Before " + "x" * (160 - len("Before  after")) + " after"


def test_fit_uses_the_fallback_for_an_empty_field() -> None:
    assert t.fit("Hi ", "", "!", fallback="there") == "Hi there!"
    assert t.fit("Hi ", "Ann", "!", fallback="there") == "Hi Ann!"


def test_fit_counts_extension_characters_as_two_septets() -> None:
    text = t.fit("", "€" * 100, "")
    assert text == "€" * 80
    _one_gsm_part(text)


def test_ref_is_uppercase_gsm7_on_one_line() -> None:
    assert t.ref("ts-k3f9qx") == "TS-K3F9QX"
    assert t.ref(" ts-\nk3 ") == "TS- K3"
    assert t.is_gsm7(t.ref("ts-è"))


@pytest.mark.parametrize(
    ("text", "expected"),
    [(None, ""), ("", ""), ("  Ann \n\t Lee  ", "Ann Lee"), ("Zoë\r\nO’Brien", "Zoe O'Brien"), ("a\u2028b", "a b")],
)
def test_clean_inline_is_one_gsm7_line_without_extra_spaces(text: str | None, expected: str) -> None:
    assert t.clean_inline(text) == expected


# --- duress and the second release's texts ------------------------------------


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(("lat", "lng"), EXTREME_COORDS)
def test_duress_page_starts_with_duress_emergency_and_is_one_part_for_every_kind(
        kind: str, lat: float | None, lng: float | None) -> None:
    text = t.page_text(REF, kind, lat, lng, duress=True)
    _one_gsm_part(text)
    assert text.startswith(f"DURESS EMERGENCY TS-K3F9QX {kind} ")
    assert text.endswith("Reply ACK K3F9 or RES K3F9")


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(("lat", "lng"), EXTREME_COORDS)
def test_duress_exhausted_and_duress_notice_are_one_part_for_every_kind(
        kind: str, lat: float | None, lng: float | None) -> None:
    exhausted = t.exhausted_text(REF, kind, lat, lng, duress=True)
    notice = t.duress_notice_text(REF, kind, lat, lng)
    for text in (exhausted, notice):
        _one_gsm_part(text)
        assert kind in text
    assert exhausted.startswith("DURESS EXHAUSTED: no one acknowledged TS-K3F9QX")
    assert notice.startswith("DURESS: TS-K3F9QX was NOT cancelled freely")
    assert notice.endswith("Reply ACK K3F9 or 911 K3F9")


def test_the_duress_notice_reply_911_parses_back_to_a_dispatch_of_the_code() -> None:
    notice = t.duress_notice_text(REF, "panic", 1.0, 2.0)
    assert parse_sms_command(notice.rsplit(" or ", 1)[1]) == parse_sms_command("911 K3F9")
    assert parse_sms_command("911 K3F9").action is Action.DISPATCH


def test_a_hostile_kind_keeps_the_duress_texts_one_part() -> None:
    kind = "“weird”\nkind 😀 " * 40
    for text in (t.page_text(REF, kind, -89.99999, -179.99999, duress=True),
                 t.duress_notice_text(REF, kind, -89.99999, -179.99999)):
        _one_gsm_part(text)
        assert text.startswith("DURESS")


@pytest.mark.parametrize("minutes", [1, 5, 60, 1440, 99_999])
def test_reminder_is_one_part_and_says_how_to_resolve(minutes: int) -> None:
    text = t.reminder_text(REF, minutes)
    _one_gsm_part(text)
    assert "TS-K3F9QX" in text and "RES K3F9" in text and f"in {minutes} min" in text


@pytest.mark.parametrize(("lat", "lng"), EXTREME_COORDS)
def test_pressed_again_and_dispatch_failed_are_one_part_at_any_location(lat: float | None, lng: float | None) -> None:
    pressed = t.pressed_again_text(REF, lat, lng)
    failed = t.dispatch_failed_text(REF, lat, lng)
    for text in (pressed, failed):
        _one_gsm_part(text)
        assert "TS-K3F9QX" in text
    assert "pressed the button again" in pressed
    assert failed.startswith("DISPATCH FAILED for TS-K3F9QX: call 911 yourself.")


@pytest.mark.parametrize("status", ["requested", "accepted", "psap_contacted", "cancelled", "closed", "failed",
                                    "active"])
def test_dispatch_active_is_one_part_for_every_dispatch_status(status: str) -> None:
    text = t.dispatch_active_text(REF, status)
    _one_gsm_part(text)
    assert text == f"TS-K3F9QX already has an emergency dispatch ({status})."


def test_refused_is_one_part_for_a_long_reason_and_falls_back_for_none() -> None:
    text = t.refused_text(REF, "you are not covering this incident, " * 10)
    _one_gsm_part(text)
    assert text.startswith("TS-K3F9QX: you are not covering")
    assert t.refused_text(REF, "") == "TS-K3F9QX: not allowed"


def test_fixed_second_release_texts_are_one_gsm_part() -> None:
    for text in (t.dispatch_confirmation_text(REF), t.no_location_text(REF), t.test_page_text(), t.verified_text(),
                 t.dispatch_confirmation_text("ts-k3f9qx"), t.no_location_text("ts-k3f9qx")):
        _one_gsm_part(text)
    assert "call 911" in t.no_location_text(REF).lower()


def test_the_test_page_asks_for_the_reply_that_verifies_it() -> None:
    text = t.test_page_text()
    assert "Reply OK" in text
    assert parse_sms_command("OK").action is Action.OK
