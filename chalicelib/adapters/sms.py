"""SMS out through SNS."""

from __future__ import annotations

from chalicelib.adapters.clients import aws_client


class SnsSmsSender:
    def send(self, phone: str, text: str) -> str:
        """Publishes one transactional SMS; returns the SNS message id. Raises on failure (throttling included):
        the caller leaves the request on its queue so it is sent later, never dropped."""
        response = aws_client("sns").publish(
            PhoneNumber=phone,
            Message=text,
            MessageAttributes={
                "AWS.SNS.SMS.SMSType": {"DataType": "String", "StringValue": "Transactional"},
            },
        )
        return response["MessageId"]
