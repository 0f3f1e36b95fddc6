"""Hostile input generators shared by the fuzz tests: the inputs contract 4.4 names ("deep nesting, out-of-range
dates, wrong key types ... 400/422, never 500") that a generator of ordinary JSON never reaches.

- `deep_json_text`: JSON *text* nested thousands of levels deep (lists, objects or both, bare or inside a field of
  an otherwise plausible body). Built as text, because Python's own encoder refuses to write what a client may send.
- `hostile_dates`: out-of-range and malformed ISO 8601 times: year 1 and year 9999, offsets up to +-23:59 that push
  them past datetime's range, leap seconds, week dates, non-ASCII digits, control characters, and any datetime
  hypothesis can build with any offset. Never moved into a "reasonable" window: that is what hid the overflow.
- `wrong_types_for(fields)`: objects with the right keys holding values of every wrong JSON type, and objects with
  keys that are not what a field name looks like (empty, numeric, control characters, very long, near misses).
- `BAD_KEY_TEXTS`: JSON-like texts whose object keys are not strings at all (`{1: 2}`), which a lenient parser
  might take: must be a 400.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

from hypothesis import strategies as st

# Python's recursion limit is 1000: depths around it and far past it, and one a little below (a lenient parser
# reads it, the validator must still refuse it cleanly).
DEPTHS = (2, 50, 400, 990, 1_001, 3_000, 20_000)


def nest(depth: int, shape: str, leaf: str = "0") -> str:
    """`depth` levels of "list", "object" or "mixed" nesting around `leaf`, as JSON text."""
    if shape == "list":
        return "[" * depth + leaf + "]" * depth
    if shape == "object":
        return '{"a":' * depth + leaf + "}" * depth
    opening, closing = [], []
    for level in range(depth):
        if level % 2:
            opening.append('{"k":')
            closing.append("}")
        else:
            opening.append("[")
            closing.append("]")
    return "".join(opening) + leaf + "".join(reversed(closing))


@st.composite
def deep_json_text(draw, fields: tuple[str, ...] = ("kind", "location", "text", "tiers", "body"),
                   base: dict | None = None) -> str:
    """A request body nested `depth` levels: bare, or as the value of one field of `base` (a plausible body)."""
    depth = draw(st.sampled_from(DEPTHS))
    shape = draw(st.sampled_from(("list", "object", "mixed")))
    leaf = draw(st.sampled_from(("0", '"x"', "null", "{}", "[]", '"2026-01-01T00:00:00Z"')))
    nested = nest(depth, shape, leaf)
    where = draw(st.sampled_from(("top", "field")))
    if where == "top":
        return nested
    field = draw(st.sampled_from(fields))
    rest = {k: v for k, v in (base or {}).items() if k != field}
    prefix = json.dumps(rest)[:-1] + (", " if rest else "")
    return f'{prefix}"{field}": {nested}}}'


EXTREME_DATES = (
    "0001-01-01T00:00:00", "0001-01-01T00:00:00Z", "0001-01-01T00:00:00+23:59", "0001-01-01T00:00:00-23:59",
    "0001-01-01", "9999-12-31T23:59:59", "9999-12-31T23:59:59.999999", "9999-12-31T23:59:59-23:59",
    "9999-12-31T23:59:59+23:59", "9999-12-31", "1969-12-31T23:59:59Z", "1970-01-01T00:00:00Z",
    "8999-12-31T23:59:59Z", "9000-01-01T00:00:00Z", "2026-02-30T00:00:00Z", "2026-01-01T24:00:00Z",
    "2026-06-30T23:59:60Z", "2026-01-01T00:00:00+24:00", "2026-01-01T00:00:00+23:59:59.999999",
    "2026-01-01T00:00:00-99:99", "2026-01-01T00:00:00.0000000001Z", "20260101T000000Z", "2026-W01-1", "2026-001",
    "2026-01-01T00:00:00ZZ", "2026-01-01T00:00:00+00:00Z", "2026-01-01 00:00:00", "T00:00:00", "2026",
    "", " ", "now", "today", "-1", "0", "1e309", "NaN", "Infinity", "9" * 40, "9" * 5_000, "-0001-01-01T00:00:00",
    "+10000-01-01T00:00:00", "2026-01-01T00:00:00\x00", "2026-01-01T00:00:00\n", "\u202e2026-01-01T00:00:00Z",
    "２０２６-01-01T00:00:00Z", "٢٠٢٦-٠١-٠١T00:00:00", "2026-01-01T00:00:00+٠٥:٠٠", "2026-01-01T00:00:00😀",
    "%00", "' OR 1=1 --", "${jndi:ldap://x}",
)
OFFSETS = st.integers(min_value=-(23 * 60 + 59), max_value=23 * 60 + 59).map(
    lambda minutes: timezone(timedelta(minutes=minutes)))


@st.composite
def _any_datetime_text(draw) -> str:
    moment = draw(st.datetimes(min_value=datetime.min, max_value=datetime.max, timezones=st.none() | OFFSETS))
    style = draw(st.sampled_from(("iso", "z", "space", "date")))
    if style == "date":
        return moment.date().isoformat()
    text = moment.isoformat(sep=" " if style == "space" else "T")
    if style == "z" and moment.tzinfo is not None and moment.utcoffset() == timedelta(0):
        text = text.replace("+00:00", "Z")
    return text


def hostile_dates():
    """Dates to put where the API expects an ISO 8601 time: extreme, overflowing, malformed, or any at all."""
    return st.sampled_from(EXTREME_DATES) | _any_datetime_text() | st.text(max_size=45)


# Values of every JSON type, including the awkward ones: huge and non-finite numbers, very long strings, nesting.
WRONG_VALUES = st.sampled_from([
    None, True, False, 0, -1, 2**63, -(2**63) - 1, 10**40, 1e308, -1e308, 0.5, "", " ", "x" * 70_000, "\x00", "😀",
    [], [None], [[]], {}, {"": None}, {"a": {"b": {"c": []}}}, ["panic"], {"lat": 1, "lng": 2},
])
ODD_KEYS = st.sampled_from(["", " ", "0", "-1", "1e3", "null", "true", "__proto__", "constructor", "kind\x00",
                            "KIND", "kind ", " kind", "lat\u200b", "k" * 10_000, "😀", "a.b", "a[0]", "$where"])


def wrong_types_for(fields: tuple[str, ...] | list[str]):
    """Objects with the model's own keys holding wrong values, mixed with keys no model has."""
    known = st.sampled_from(list(fields)) if fields else ODD_KEYS
    return st.dictionaries(known | ODD_KEYS, WRONG_VALUES | hostile_dates(), min_size=1, max_size=6)


# Texts that look like JSON objects but whose keys are not strings: not JSON, so 400.
BAD_KEY_TEXTS = (
    '{1: "x"}', '{null: 1}', '{true: 1}', '{["kind"]: "panic"}', '{{}: 1}', "{kind: \"panic\"}", "{'kind': 'panic'}",
    '{"kind": "panic", 2: 3}', '{"kind" "panic"}', '{"kind": "panic",}', '{"kind": panic}', '{"a":1}{"b":2}',
    '\ufeff{"kind": "panic"}', '{"kind": "panic"}\x00', "[1,]", "{" * 10 + "}" * 9,
)


def raw_bodies(fields: tuple[str, ...], base: dict | None = None):
    """Any hostile request body, as text: deep nesting, non-string keys, wrong value types, odd keys."""
    typed = wrong_types_for(fields).map(lambda value: json.dumps(value))
    with_base = wrong_types_for(fields).map(lambda value: json.dumps({**(base or {}), **value}))
    return deep_json_text(fields or ("body",), base) | st.sampled_from(BAD_KEY_TEXTS) | typed | with_base
