"""The other ways to reach a responder when an SMS page fails or is not delivered in time: a voice call that reads
the page (AWS End User Messaging SMS and Voice v2) and an email (SES). Locally there is no voice emulator: the dev
server plays the call (GET /dev/calls) behind the same interface; SES runs on the local AWS."""

from __future__ import annotations

import json
import threading
import urllib.request
from typing import Protocol
from xml.sax.saxutils import escape

from chalicelib.adapters.clients import aws_client
from chalicelib.config import settings


class VoiceCaller(Protocol):
    def call(self, phone: str, text: str) -> str: ...


class Mailer(Protocol):
    def send(self, to: str, subject: str, text: str) -> str: ...


class EndUserMessagingVoice:
    def call(self, phone: str, text: str) -> str:
        cfg = settings()
        response = aws_client("pinpoint-sms-voice-v2").send_voice_message(
            DestinationPhoneNumber=phone,
            OriginationIdentity=cfg.voice_origination_number or cfg.sms_origination_number,
            MessageBody=f"<speak>{escape(text)} <break time='1s'/> {escape(text)}</speak>",
            MessageBodyTextType="SSML",
            VoiceId="JOANNA",
        )
        return response["MessageId"]


class DevServerVoice:
    """The local stand-in: the dev server records the call (GET /dev/calls)."""

    def call(self, phone: str, text: str) -> str:
        request = urllib.request.Request(
            settings().voice_dev_url, data=json.dumps({"to": phone, "text": text}).encode(),
            headers={"Content-Type": "application/json"}, method="POST")
        with urllib.request.urlopen(request, timeout=3) as answer:  # noqa: S310 - a local URL from configuration
            return json.loads(answer.read())["call_id"]


class SesMailer:
    def send(self, to: str, subject: str, text: str) -> str:
        response = aws_client("ses").send_email(
            Source=settings().email_from,
            Destination={"ToAddresses": [to]},
            Message={"Subject": {"Data": subject}, "Body": {"Text": {"Data": text}}},
        )
        return response["MessageId"]


class RecordingVoice:
    def __init__(self) -> None:
        self.calls: list[dict] = []
        self._lock = threading.Lock()

    def call(self, phone: str, text: str) -> str:
        with self._lock:
            self.calls.append({"to": phone, "text": text})
            return f"call-{len(self.calls)}"


class RecordingMailer:
    def __init__(self) -> None:
        self.sent: list[dict] = []

    def send(self, to: str, subject: str, text: str) -> str:
        self.sent.append({"to": to, "subject": subject, "text": text})
        return f"email-{len(self.sent)}"
