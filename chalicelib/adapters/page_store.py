"""One record per SMS the service sends: the claim that keeps a redelivered request from sending twice, and the
index from phone number and SNS message id back to the incident (for replies)."""

from __future__ import annotations

from datetime import timedelta

from pynamodb.exceptions import DoesNotExist, PutError

from chalicelib.adapters.models import PageModel

PAGE_RETENTION = timedelta(days=30)


class PageStore:
    def claim(self, page: PageModel, stale_before: str) -> bool:
        """True if this sender may send `page`: nobody has, or a previous sender died mid-send before
        `stale_before` (then the responder may get it twice: at least once beats never for an emergency page)."""
        page.state = "sending"
        page.expires_at = PAGE_RETENTION
        condition = PageModel.page_key.does_not_exist() | (
            (PageModel.state == "sending") & (PageModel.sent_at < stale_before)
        )
        try:
            page.save(condition=condition)
        except PutError as exc:
            if exc.cause_response_code == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def mark_sent(self, page: PageModel, message_id: str) -> None:
        page.update(actions=[PageModel.state.set("sent"), PageModel.message_id.set(message_id)])

    def release(self, page: PageModel) -> None:
        """A send failed: drop the claim so the redelivered request sends it."""
        page.delete(condition=PageModel.state == "sending")

    def for_incident(self, incident_id: str) -> list[PageModel]:
        return list(PageModel.query(incident_id, consistent_read=True))

    def by_message_id(self, message_id: str) -> PageModel | None:
        for page in PageModel.by_message.query(message_id):
            return page
        return None

    def recent_for_phone(self, phone: str, since: str) -> list[PageModel]:
        return list(PageModel.by_phone.query(phone, PageModel.sent_at >= since, scan_index_forward=False))

    def get(self, incident_id: str, page_key: str) -> PageModel | None:
        try:
            return PageModel.get(incident_id, page_key, consistent_read=True)
        except DoesNotExist:
            return None
