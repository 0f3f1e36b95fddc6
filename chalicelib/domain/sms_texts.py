"""Every outgoing SMS text, plus GSM-7 / segment-length helpers.

Why this module is fussy about characters: one non-GSM character (a curly quote pasted into a name, an emoji)
switches the whole message to UCS-2, which cuts a segment from 160 to 70 characters. A page that silently becomes
3 segments costs 3x, may arrive out of order, and on some carriers arrives truncated. So every text here is built
from GSM-7 only and kept to one segment (<= 160 septets) whenever its inputs allow; free text (names, notes,
statuses) is passed through ``to_gsm7`` and truncated to the room left.
"""

from __future__ import annotations

import math
import re
import unicodedata

from chalicelib.domain.clock import TimeFormatError, parse_iso
from chalicelib.domain.sms_commands import short_code

# GSM 03.38 default alphabet (basic table), excluding 0x1B which is the escape to the extension table.
# 0x09 is the capital C-cedilla in the standard (often rendered as lowercase by handsets).
GSM7_BASIC: frozenset[str] = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅå"
    "Δ_ΦΓΛΩΠΨΣΘΞÆæßÉ"
    " !\"#¤%&'()*+,-./"
    "0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§"
    "¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
# Extension table: sendable in GSM-7 but each costs 2 septets (escape + char). \f is the page break.
GSM7_EXTENSION: frozenset[str] = frozenset("^{}\\[~]|€\f")

SINGLE_PART_GSM7 = 160
MULTI_PART_GSM7 = 153  # 7 septets of each part go to the concatenation header
SINGLE_PART_UCS2 = 70
MULTI_PART_UCS2 = 67

MAP_BASE = "https://maps.google.com/?q="
NO_LOCATION = "no location"

# Replacements for common non-GSM characters, chosen so the text still reads naturally.
_GSM7_REPLACEMENTS: dict[str, str] = {
    "\u2018": "'", "\u2019": "'", "\u201a": "'", "\u201b": "'", "\u2032": "'", "\u00b4": "'", "`": "'",
    "\u201c": '"', "\u201d": '"', "\u201e": '"', "\u201f": '"', "\u2033": '"', "\u00ab": '"', "\u00bb": '"',
    "\u2010": "-", "\u2011": "-", "\u2012": "-", "\u2013": "-", "\u2014": "-", "\u2015": "-", "\u2212": "-",
    "\u2026": "...", "\u2022": "*", "\u00b7": ".", "\u00d7": "x", "\u00f7": "/",
    "\t": " ", "\u00a0": " ", "\u2028": "\n", "\u2029": "\n",
    "\u00e7": "\u00c7",  # GSM 0x09 is C-cedilla; using it keeps "Français" recognisable
    "\u0153": "oe", "\u0152": "OE", "\u0142": "l", "\u0141": "L", "\u0111": "d", "\u0110": "D",
    "\u00f0": "d", "\u00d0": "D", "\u00fe": "th", "\u00de": "Th", "\u0131": "i",
    "\u00a9": "(c)", "\u00ae": "(R)", "\u2122": "TM", "\u00b0": "deg",
}

_WHITESPACE_RE = re.compile(r"\s+")
_HHMM_RE = re.compile(r"(\d{1,2}):(\d{2})")


def is_gsm7(text: str) -> bool:
    return all(ch in GSM7_BASIC or ch in GSM7_EXTENSION for ch in text)


def _septets(text: str) -> int:
    return sum(2 if ch in GSM7_EXTENSION else 1 for ch in text)


def _greedy_parts(units: list[int], per_part: int) -> int:
    # Parts are filled greedily and an escape pair / surrogate pair is never split across parts (handsets cannot
    # reassemble a split one), so the count can exceed ceil(total / per_part).
    parts, used = 1, 0
    for size in units:
        if used + size > per_part:
            parts += 1
            used = 0
        used += size
    return parts


def sms_parts(text: str) -> int:
    """Number of SMS segments ``text`` is sent as. An empty text still costs one segment."""
    if is_gsm7(text):
        units = [2 if ch in GSM7_EXTENSION else 1 for ch in text]
        single, multi = SINGLE_PART_GSM7, MULTI_PART_GSM7
    else:
        # UCS-2 on the wire is really UTF-16: characters outside the BMP (most emoji) take two code units.
        units = [2 if ord(ch) > 0xFFFF else 1 for ch in text]
        single, multi = SINGLE_PART_UCS2, MULTI_PART_UCS2
    if sum(units) <= single:
        return 1
    return _greedy_parts(units, multi)


def _char_to_gsm7(ch: str) -> str:
    if ch in GSM7_BASIC or ch in GSM7_EXTENSION:
        return ch
    if ch in _GSM7_REPLACEMENTS:
        return _GSM7_REPLACEMENTS[ch]
    category = unicodedata.category(ch)
    # Invisible characters (zero-width joiners, variation selectors, stray combining marks, BOM) would otherwise
    # each become a visible "?".
    if category in ("Mn", "Me", "Cf"):
        return ""
    if category in ("Zs", "Zl", "Zp", "Cc"):
        return " "
    # Compatibility decomposition then dropping accents: "ő" -> "o", "ﬁ" -> "fi", "Ｋ" -> "K".
    decomposed = "".join(c for c in unicodedata.normalize("NFKD", ch) if not unicodedata.combining(c))
    if decomposed and all(c in GSM7_BASIC for c in decomposed):
        return decomposed
    return "?"


def to_gsm7(text: str) -> str:
    """Replace non-GSM characters with close GSM equivalents (or '?') so the text encodes as GSM-7."""
    # NFC first so "e" + combining acute becomes the single GSM character "é" instead of "e".
    return "".join(_char_to_gsm7(ch) for ch in unicodedata.normalize("NFC", str(text)))


def clean_inline(text: str | None) -> str:
    # Free text goes on one line: a newline in a name must not be able to forge extra lines in a page.
    return _WHITESPACE_RE.sub(" ", to_gsm7(text or "")).strip()


def _truncate(text: str, max_septets: int) -> str:
    if max_septets <= 0:
        return ""
    out: list[str] = []
    used = 0
    for ch in text:
        cost = 2 if ch in GSM7_EXTENSION else 1
        if used + cost > max_septets:
            break
        out.append(ch)
        used += cost
    return "".join(out).rstrip()


def fit(before: str, field: str, after: str, fallback: str = "") -> str:
    """``before + field + after`` with the field truncated so the whole text stays one segment."""
    room = SINGLE_PART_GSM7 - _septets(before) - _septets(after)
    value = _truncate(field, room) or _truncate(fallback, room)
    return f"{before}{value}{after}"


def ref(reference: str) -> str:
    # Case change before GSM conversion: upper-casing a GSM letter can leave the set ("è" -> "È").
    return clean_inline(str(reference).upper())


def _code(reference: str) -> str:
    return to_gsm7(short_code(reference))


def _coordinate(value: float) -> str:
    text = f"{round(value, 5):.5f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def map_link(lat: float, lng: float) -> str:
    """Google Maps link, coordinates rounded to 5 decimals (~1 m) with trailing zeros stripped to save characters."""
    if not (math.isfinite(lat) and math.isfinite(lng)):
        raise ValueError(f"non-finite coordinates: {lat!r}, {lng!r}")
    return f"{MAP_BASE}{_coordinate(lat)},{_coordinate(lng)}"


def _location(lat: float | None, lng: float | None) -> str:
    # An invalid fix is worse than none: it would send a responder to the wrong place, so say "no location".
    try:
        if lat is None or lng is None:
            return NO_LOCATION
        lat_f, lng_f = float(lat), float(lng)
    except (TypeError, ValueError):
        return NO_LOCATION
    if not (math.isfinite(lat_f) and math.isfinite(lng_f)) or abs(lat_f) > 90 or abs(lng_f) > 180:
        return NO_LOCATION
    return map_link(lat_f, lng_f)


def page_text(reference: str, kind: str, lat: float | None, lng: float | None, duress: bool = False) -> str:
    reference_text, code = ref(reference), _code(reference)
    after = f" {_location(lat, lng)} Reply ACK {code} or RES {code}"
    # DURESS leads: a responder must not mistake it for an ordinary page, even in a lock-screen preview.
    head = "DURESS EMERGENCY" if duress else "EMERGENCY"
    return fit(f"{head} {reference_text} ", clean_inline(kind), after, fallback="alert")


def exhausted_text(reference: str, kind: str, lat: float | None, lng: float | None, duress: bool = False) -> str:
    reference_text, code = ref(reference), _code(reference)
    after = f" {_location(lat, lng)} Reply ACK {code}"
    head = "DURESS EXHAUSTED" if duress else "EXHAUSTED"
    return fit(f"{head}: no one acknowledged {reference_text} ", clean_inline(kind), after, fallback="alert")


def cancelled_text(reference: str) -> str:
    return f"{ref(reference)} was cancelled by the reporter. No action needed."


def ack_confirmation_text(reference: str) -> str:
    return f"You acknowledged {ref(reference)}; reply RES {_code(reference)} <note> when resolved"


def resolve_confirmation_text(reference: str) -> str:
    return f"Resolved {ref(reference)}. Thank you."


def escalate_confirmation_text(reference: str, tier: int) -> str:
    return f"Escalated {ref(reference)} to tier {tier}; those responders are being paged now."


def _hhmm_utc(at_iso: str) -> str | None:
    text = str(at_iso or "").strip()
    try:
        moment = parse_iso(text)
    except TimeFormatError:
        # Not ISO-8601 as we know it; still show a time if one is recognisable rather than dropping it.
        match = _HHMM_RE.search(text)
        if match and int(match.group(1)) < 24 and int(match.group(2)) < 60:
            return f"{int(match.group(1)):02d}:{match.group(2)}Z"
        return None
    return f"{moment:%H:%M}Z"


def already_acknowledged_text(reference: str, name: str, at_iso: str) -> str:
    hhmm = _hhmm_utc(at_iso)
    suffix = f" at {hhmm}" if hhmm else ""
    before = f"{ref(reference)} already acknowledged by "
    return fit(before, clean_inline(name), suffix, fallback="another responder")


def already_closed_text(reference: str, status: str) -> str:
    before = f"{ref(reference)} is already "
    return fit(before, clean_inline(str(status).lower()), "; no action needed.", fallback="closed")


def choose_incident_text(references: list[str]) -> str:
    if not references:
        return no_open_incident_text()
    head, tail = "Several open: ", ". Reply ACK <code>"
    entries = [f"{ref(r)} (ACK {_code(r)})" for r in references]
    # Keep as many entries as fit, leaving room for a "+N more" marker when any are dropped.
    for shown in range(len(entries), 0, -1):
        more = f" +{len(entries) - shown} more" if shown < len(entries) else ""
        text = f"{head}{', '.join(entries[:shown])}{more}{tail}"
        if _septets(text) <= SINGLE_PART_GSM7:
            return text
    return f"{head}{len(entries)} incidents{tail}"


def no_open_incident_text() -> str:
    return "You have no open incident to act on. Reply HELP for commands."


def unknown_code_text(code: str) -> str:
    after = " for you. Check the code or reply HELP."
    return fit("No open incident with code ", clean_inline(str(code).upper()), after, fallback="?")


def help_text() -> str:
    return "Commands: ACK <code>, RES <code> [note], ESC <code> escalate, 911 <code> send emergency services, HELP, STOP"


def duress_notice_text(reference: str, kind: str, lat: float | None, lng: float | None) -> str:
    """To everyone already paged (and the acknowledger): the shopper's cancel was made under duress."""
    code = _code(reference)
    after = f" {_location(lat, lng)} Reply ACK {code} or 911 {code}"
    return fit(f"DURESS: {ref(reference)} was NOT cancelled freely ", clean_inline(kind), after, fallback="alert")


def reminder_text(reference: str, minutes: int) -> str:
    code = _code(reference)
    return (f"Reminder: {ref(reference)} is acknowledged by you and not resolved. Reply RES {code} <note>; "
            f"in {minutes} min it goes back to the team.")


def pressed_again_text(reference: str, lat: float | None, lng: float | None) -> str:
    return f"{ref(reference)}: the shopper pressed the button again. {_location(lat, lng)}"


def dispatch_confirmation_text(reference: str) -> str:
    return f"Emergency dispatch requested for {ref(reference)}; you will see its status on the incident."


def dispatch_failed_text(reference: str, lat: float | None, lng: float | None) -> str:
    return fit("", f"DISPATCH FAILED for {ref(reference)}: call 911 yourself. ", _location(lat, lng))


def dispatch_active_text(reference: str, status: str) -> str:
    return f"{ref(reference)} already has an emergency dispatch ({clean_inline(status)})."


def no_location_text(reference: str) -> str:
    return f"{ref(reference)} has no location; emergency services cannot be sent by the service. Call 911."


def refused_text(reference: str, reason: str) -> str:
    return fit(f"{ref(reference)}: ", clean_inline(reason), "", fallback="not allowed")


def test_page_text() -> str:
    return "Test page from Trust & Safety alerts. Reply OK to confirm this phone receives emergency pages."


def verified_text() -> str:
    return "Thank you: this phone is confirmed for emergency pages."


def opted_out_text() -> str:
    return "You are unsubscribed and will get no more alert texts. Reply START to resubscribe."


def opted_in_text() -> str:
    return "You are subscribed to alert texts again. Reply HELP for commands, STOP to opt out."
