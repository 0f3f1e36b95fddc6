"""Who may read and act on an incident (contract 4.4, need-to-know).

- a shopper: her own incidents only;
- a responder: only while active, and only incidents her frozen plan names (paged, or in a tier that may be);
- reviewers and admins: every incident, read-only (admins may also request a dispatch).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from chalicelib.domain.errors import Forbidden
from chalicelib.domain.escalation import ResponderContact
from chalicelib.domain.incidents import Actor, Incident


@dataclass(frozen=True)
class Principal:
    role: str
    sub: str


class Access:
    def __init__(self, responder: Callable[[str], ResponderContact | None]):
        self._responder = responder

    def active_responder(self, principal: Principal) -> ResponderContact:
        """A responder token is not enough: the responder must exist and be active (deactivating someone cuts their
        access to shoppers' locations, not only their pages)."""
        contact = self._responder(principal.sub) if principal.role == "responder" else None
        if contact is None or not contact.active:
            raise Forbidden("you are not an active responder")
        return contact

    def require_read(self, principal: Principal, incident: Incident, owner_only: bool = False) -> None:
        if principal.role == "shopper":
            if incident.owner != principal.sub:
                raise Forbidden("this incident is not yours")
            return
        if owner_only:
            raise Forbidden(f"role {principal.role} may not do this")
        if principal.role == "responder":
            self.active_responder(principal)
            if not incident.covers(principal.sub):
                raise Forbidden("this incident was not routed to you")
        elif principal.role not in ("reviewer", "admin"):
            raise Forbidden(f"role {principal.role} may not do this")

    def require_write(self, principal: Principal, incident: Incident) -> None:
        """Notes and evidence: the owner, or a responder the incident covers."""
        if principal.role not in ("shopper", "responder"):
            raise Forbidden(f"role {principal.role} may not add to an incident")
        self.require_read(principal, incident)

    def responder_acting_on(self, principal: Principal, incident: Incident) -> Actor:
        contact = self.active_responder(principal)
        if not incident.covers(contact.id):
            raise Forbidden("this incident was not routed to you")
        return Actor("responder", contact.id, contact.name)


def responder_actor(contact: ResponderContact) -> Actor:
    return Actor("responder", contact.id, contact.name)
