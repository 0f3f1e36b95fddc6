"""Parser for responders' SMS replies.

Grammar (case-insensitive, extra whitespace ignored):

    ACK <code> | A <code> | ACK      acknowledge (bare ACK: the only open incident paged to this number)
    RES <code> [note] | RESOLVE ...  resolve with outcome "other" and the note
    ESC <code>                       escalate to the next tier now
    911 <code>                       ask the dispatch provider to send emergency services
    OK                               confirms a test page (verifies the number)
    HELP                             list of commands
    STOP (UNSUBSCRIBE, CANCEL, ...)  carrier opt-out keywords
    START | UNSTOP                   opt back in

Anything else is UNKNOWN and the caller answers with the help text. The parser is pure and total: any string
(including empty, emoji-only or megabytes long) yields an ``SmsCommand`` and never raises, because an exception
here would drop a responder's reply on the floor in the middle of an emergency.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from enum import Enum

CODE_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
CODE_LENGTH = 4
NOTE_MAX_CHARS = 500

# A reference is "<PREFIX>-<random part>" (e.g. TS-K3F9QX); the code is the first 4 characters of the random part.
# Responders copy-paste whatever is in the page, so accept the bare code, the random part (4-8 chars, in case it is
# truncated or the format grows) and the full reference with any short letter prefix.
_CODE_TOKEN_RE = re.compile(rf"^(?:[A-Z]{{1,4}}-)?([{CODE_ALPHABET}]{{{CODE_LENGTH},8}})$")

# Characters people put around words by habit ("ACK.", "ACK K3F9!", "#K3F9", "(K3F9)"); never part of a code.
_EDGE_PUNCTUATION = ".,!?;:'\"`()[]{}<>#*~_\u2018\u2019\u201c\u201d\u00a1\u00bf"

# Hard cap on how much of a body we look at; real SMS bodies are a few hundred chars at most, and bounding the
# work keeps a hostile multi-megabyte payload from costing anything. Large enough that the note cap still applies.
_MAX_BODY_CHARS = 10_000


class Action(str, Enum):
    ACK = "ack"
    RESOLVE = "resolve"
    ESCALATE = "escalate"
    DISPATCH = "dispatch"
    OK = "ok"
    HELP = "help"
    STOP = "stop"
    START = "start"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class SmsCommand:
    action: Action
    code: str | None = None
    note: str | None = None


_ACK_WORDS = frozenset({"ACK", "A"})
_RESOLVE_WORDS = frozenset({"RES", "RESOLVE"})
_ESCALATE_WORDS = frozenset({"ESC"})
_HELP_WORDS = frozenset({"HELP"})
_DISPATCH_WORDS = frozenset({"911"})
_OK_WORDS = frozenset({"OK", "OKAY", "YES"})
_START_WORDS = frozenset({"START", "UNSTOP"})
# Unambiguous opt-out words: honoured even with trailing text ("STOP texting me"), because failing to honour an
# opt-out is a compliance breach and these words have no other meaning in our grammar.
_STOP_WORDS_ANYWHERE = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "OPTOUT"})
# Words carriers also treat as opt-out, but which a responder could plausibly start a sentence with ("Cancel K3F9",
# "End of shift"). Carriers only act on them when they are the whole message, so we do the same to keep our
# opt-out state in step with the carrier's and avoid silently unsubscribing an on-call responder.
_STOP_WORDS_ALONE = frozenset({"CANCEL", "END", "QUIT", "REVOKE"})


def _normalize_word(token: str) -> str:
    # NFKC folds full-width / compatibility forms ("ＡＣＫ") into ASCII so other-locale phone keyboards still work.
    return unicodedata.normalize("NFKC", token).upper().strip(_EDGE_PUNCTUATION)


def _code_from_token(token: str) -> str | None:
    """The 4-char code a token denotes, or None if it is not a code/reference."""
    match = _CODE_TOKEN_RE.match(_normalize_word(token))
    return match.group(1)[:CODE_LENGTH] if match else None


def _note(tokens: list[str]) -> str | None:
    # Tokens come from str.split(), so joining with one space both trims and collapses internal whitespace.
    note = " ".join(tokens)[:NOTE_MAX_CHARS].rstrip()
    return note or None


def short_code(reference: str) -> str:
    """The 4-character reply code of a reference: "TS-K3F9QX" -> "K3F9".

    Lenient by design (upper-cases, ignores surrounding whitespace, tolerates a missing prefix) because it is used
    to build outgoing texts and must not fail on a reference it did not mint.
    """
    text = unicodedata.normalize("NFKC", str(reference)).strip().upper()
    return text.rsplit("-", 1)[-1][:CODE_LENGTH]


def parse_sms_command(body: str) -> SmsCommand:
    if not isinstance(body, str):
        return SmsCommand(Action.UNKNOWN)
    tokens = body[:_MAX_BODY_CHARS].split()
    if not tokens:
        return SmsCommand(Action.UNKNOWN)

    word = _normalize_word(tokens[0])
    rest = tokens[1:]
    code = _code_from_token(rest[0]) if rest else None

    if word in _ACK_WORDS:
        # "A" is also an English article: with trailing words that are not a code ("A man is here") it is far more
        # likely prose than an ack, and a false ack stops escalation, so only the explicit ACK ignores extra words.
        if word == "A" and rest and code is None:
            return SmsCommand(Action.UNKNOWN)
        return SmsCommand(Action.ACK, code=code)
    if word in _RESOLVE_WORDS:
        # No guessing: if the first word is not a valid code it is part of the note and the caller decides
        # (it resolves only when exactly one incident is open).
        if code is not None:
            return SmsCommand(Action.RESOLVE, code=code, note=_note(rest[1:]))
        return SmsCommand(Action.RESOLVE, code=None, note=_note(rest))
    if word in _ESCALATE_WORDS:
        return SmsCommand(Action.ESCALATE, code=code)
    if word in _DISPATCH_WORDS:
        return SmsCommand(Action.DISPATCH, code=code)
    if word in _OK_WORDS and not rest:
        return SmsCommand(Action.OK)
    if word in _HELP_WORDS:
        return SmsCommand(Action.HELP)
    if word in _STOP_WORDS_ANYWHERE or (word in _STOP_WORDS_ALONE and not rest):
        return SmsCommand(Action.STOP)
    if word in _START_WORDS:
        return SmsCommand(Action.START)
    return SmsCommand(Action.UNKNOWN)
