"""What the person who pressed the button is told: the one sentence the app shows now (`shopper_message`) and the
SMS to her callback phone. Short, calm, concrete: who is on it, what to do now. Pure.

A duress PIN must stay invisible to whoever holds her phone: her view of a duress incident is exactly the view of a
cancelled one, and she gets no SMS about it afterwards.
"""

from __future__ import annotations

from chalicelib.domain.incidents import Incident, Status
from chalicelib.domain.sms_texts import clean_inline, fit, ref

CALL_911 = "If you are in immediate danger, call 911."

DISPATCH_MESSAGES = {
    "requested": "We are asking emergency services to come to your last location.",
    "accepted": "An emergency dispatcher has your alert and your last location.",
    "psap_contacted": "911 has been contacted and is sending help to your last location.",
}


def shopper_message(incident: Incident, for_owner: bool = True) -> str:
    if for_owner and incident.duress:
        return cancelled_message()
    dispatch = (incident.dispatch or {}).get("status")
    if incident.status == Status.ROUTED:
        return f"Your report {incident.reference} went to our support team; they will contact you. {CALL_911}"
    if incident.status == Status.CANCELLED:
        return cancelled_message()
    if incident.status == Status.RESOLVED:
        return f"Your alert {incident.reference} is resolved. If you need help again, press the button."
    if dispatch in DISPATCH_MESSAGES and incident.status in (Status.TRIGGERED, Status.ACKNOWLEDGED):
        who = f" {incident.acknowledged_by_name} from our safety team is on it too." if incident.acknowledged_by_name else ""
        return f"{DISPATCH_MESSAGES[dispatch]}{who} Stay somewhere safe and keep your phone with you."
    if incident.status == Status.ACKNOWLEDGED:
        return (f"{incident.acknowledged_by_name or 'A responder'} from our safety team is on it. "
                f"Stay somewhere safe and keep your phone with you. {CALL_911}")
    if incident.escalation_exhausted:
        return "Nobody from our safety team has answered yet. Call 911 now if you are in danger. We keep trying."
    if incident.escalation_tier > 1:
        return f"We are still reaching our safety team and are alerting more responders now. {CALL_911}"
    return f"We are alerting our safety team now. {CALL_911}"


def cancelled_message() -> str:
    return "You cancelled this alert. If you need help, press the button again."


def acknowledged_sms(reference: str, responder_name: str | None) -> str:
    return fit("Help is coming: ", clean_inline(responder_name or ""), f" from our safety team is on {ref(reference)}."
               " Stay somewhere safe.", fallback="a responder")


def exhausted_sms(reference: str) -> str:
    return (f"No responder has answered your alert {ref(reference)} yet. If you are in danger call 911 now. "
            "We keep trying.")


def resolved_sms(reference: str) -> str:
    return f"Your alert {ref(reference)} is resolved. If you need help again, press the button."


def dispatch_sms(reference: str, status: str) -> str | None:
    if status == "psap_contacted":
        return f"911 has been contacted for your alert {ref(reference)} and is sending help to your last location."
    return None
