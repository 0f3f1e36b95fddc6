"""SMS out through SNS."""

from __future__ import annotations

from chalicelib.adapters.clients import aws_client
from chalicelib.config import settings


class SnsSmsSender:
    def send(self, phone: str, text: str) -> str:
        """Publishes one transactional SMS; returns the SNS message id. Raises on failure (throttling included):
        the caller leaves the request on its queue so it is sent later, never dropped."""
        attributes = {"AWS.SNS.SMS.SMSType": {"DataType": "String", "StringValue": "Transactional"}}
        origination = settings().sms_origination_number
        if origination:
            # Pages must come from the two-way number, or replies land on a number nobody listens to.
            attributes["AWS.MM.SMS.OriginationNumber"] = {"DataType": "String", "StringValue": origination}
        response = aws_client("sns").publish(PhoneNumber=phone, Message=text, MessageAttributes=attributes)
        return response["MessageId"]
