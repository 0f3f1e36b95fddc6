"""The carrier, played locally: every SMS the local AWS sends (moto records them without a time or a status), its
delivery status, and the delivery receipt AWS would log for it.

On AWS, SNS writes one delivery status log line per SMS to CloudWatch Logs (`sns/<region>/<account>/
DirectPublishToPhoneNumber`, and `.../Failure`), and a subscription filter delivers them to `sms_receipts` as a
gzipped, base64 `awslogs` event. `receipt_event` builds exactly that event.
"""

from __future__ import annotations

import base64
import gzip
import json
import threading
import time
from datetime import datetime, timezone


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


class Carrier(dict):
    """Replaces moto's SNS `sms_messages` dict, so each SMS also gets the time it was sent and a status."""

    def __init__(self) -> None:
        super().__init__()
        self.sent_at: dict[str, str] = {}
        self.status: dict[str, str] = {}
        self.lock = threading.Lock()

    @classmethod
    def install(cls, account: str, region: str) -> Carrier:
        from moto.sns.models import sns_backends

        backend = sns_backends[account][region]
        carrier = cls()
        carrier.update(backend.sms_messages)
        backend.sms_messages = carrier
        carrier.account, carrier.region = account, region
        return carrier

    def __setitem__(self, message_id: str, value: tuple[str, str]) -> None:
        with self.lock:
            self.sent_at[message_id] = _iso(datetime.now(timezone.utc))
            self.status[message_id] = "sent"
            super().__setitem__(message_id, value)

    def listing(self) -> list[dict]:
        with self.lock:
            return [{"to": to, "body": body, "message_id": mid, "sent_at": self.sent_at.get(mid),
                     "status": self.status.get(mid, "sent")} for mid, (to, body) in self.items()]

    def receipt_event(self, message_id: str, status: str) -> dict:
        """Marks the SMS and returns the `sms_receipts` event for it. Raises KeyError for an unknown message id."""
        with self.lock:
            to, _body = self[message_id]
            self.status[message_id] = status
            sent_at = self.sent_at.get(message_id)
        # As AWS writes it: `notification.timestamp` is the publish, `dwellTimeMs` the time until the carrier answered.
        now = datetime.now(timezone.utc)
        published = datetime.fromisoformat(sent_at.replace("Z", "+00:00")) if sent_at else now
        line = {
            "notification": {"messageId": message_id, "timestamp": published.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]},
            "delivery": {"destination": to, "smsType": "Transactional", "phoneCarrier": "Local Carrier",
                         "providerResponse": "Message has been accepted by phone" if status == "delivered"
                         else "Unknown error attempting to reach phone",
                         "dwellTimeMs": max(0, int((now - published).total_seconds() * 1000)), "priceInUSD": 0.00645},
            "status": "SUCCESS" if status == "delivered" else "FAILURE",
        }
        suffix = "" if status == "delivered" else "/Failure"
        payload = {
            "messageType": "DATA_MESSAGE", "owner": getattr(self, "account", "123456789012"),
            "logGroup": f"sns/{getattr(self, 'region', 'us-east-1')}/{getattr(self, 'account', '')}/"
                        f"DirectPublishToPhoneNumber{suffix}",
            "logStream": message_id, "subscriptionFilters": ["sms-receipts"],
            "logEvents": [{"id": str(int(time.time() * 1000)), "timestamp": int(time.time() * 1000),
                           "message": json.dumps(line)}],
        }
        data = base64.b64encode(gzip.compress(json.dumps(payload).encode())).decode()
        return {"awslogs": {"data": data}}
