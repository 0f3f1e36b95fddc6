"""Post-deploy smoke test: `make smoke API_URL=https://.../api/ SMOKE_ADMIN_TOKEN=... SMOKE_PHONE=+1...`.

The last step of a deploy (docs/DEPLOY.md). Against a deployed stage, with real AWS behind it:
1. `GET /v1/health` answers {"status": "ok"};
2. a test responder (SMOKE_RESPONDER_ID, default `smoke-test-responder`) whose phone is SMOKE_PHONE (yours);
3. an incident of kind `test` (admin only, severity sev4, paged only to the responder named in `test_responder`):
   accepted (201), and paged within SMOKE_TIMEOUT_S (the timeline shows the `paged` event, only to that responder);
4. the acknowledgement, by the first channel available:
   - INBOUND_SMS_TOPIC_ARN and AWS credentials given: a two-way SMS reply `ACK <code>` published to the inbound-sms
     topic exactly as End User Messaging publishes it (the inbound_sms Lambda, the reply path);
   - else SMOKE_RESPONDER_TOKEN (a token for SMOKE_RESPONDER_ID): `POST /acknowledge`;
   - else you: reply `ACK <code>` from SMOKE_PHONE; the script waits for it (the real SMS round trip);
5. cleans up whatever happened: resolves the incident (same channel), and deletes the responder if it created it.

Exit status: 0 all passed, 1 a check failed, 2 bad arguments, 3 the service has no `test` incident kind yet.
Local use: the same against `make run` (AWS_ENDPOINT_URL points boto3 at the local AWS; tests/infra/test_smoke.py).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass, field
from typing import Any

NO_TEST_KIND = 3


class SmokeFailed(Exception):
    pass


class NoTestKind(Exception):
    pass


@dataclass
class Config:
    api_url: str
    admin_token: str
    phone: str
    responder_id: str = "smoke-test-responder"
    responder_token: str | None = None
    topic_arn: str | None = None
    origination_number: str = "+10000000000"
    timeout_s: float = 120.0
    aws_endpoint_url: str | None = None

    @classmethod
    def from_environment(cls, env: dict[str, str], api_url: str | None = None) -> Config:
        missing = [n for n in ("SMOKE_ADMIN_TOKEN", "SMOKE_PHONE") if not env.get(n)]
        url = api_url or env.get("API_URL")
        if not url:
            missing.insert(0, "API_URL")
        if missing:
            raise SystemExit(f"smoke: {', '.join(missing)} required (see docs/DEPLOY.md, last step)")
        return cls(api_url=url.rstrip("/") + "/", admin_token=env["SMOKE_ADMIN_TOKEN"], phone=env["SMOKE_PHONE"],
                   responder_id=env.get("SMOKE_RESPONDER_ID") or "smoke-test-responder",
                   responder_token=env.get("SMOKE_RESPONDER_TOKEN") or None,
                   topic_arn=env.get("INBOUND_SMS_TOPIC_ARN") or None,
                   origination_number=env.get("SMS_ORIGINATION_NUMBER") or "+10000000000",
                   timeout_s=float(env.get("SMOKE_TIMEOUT_S") or 120),
                   aws_endpoint_url=env.get("AWS_ENDPOINT_URL") or None)


@dataclass
class Smoke:
    config: Config
    log: list[str] = field(default_factory=list)
    created_responder: bool = False
    incident: dict | None = None
    resolved: bool = False

    # --- plumbing ------------------------------------------------------------------------------------------------
    def say(self, line: str) -> None:
        self.log.append(line)
        print(line, flush=True)

    def call(self, method: str, path: str, token: str | None = None, body: Any = None,
             headers: dict | None = None) -> tuple[int, Any]:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.config.api_url + path.lstrip("/"), data=data, method=method,
                                         headers={"Content-Type": "application/json", **(headers or {}),
                                                  **({"Authorization": f"Bearer {token}"} if token else {})})
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                raw = response.read()
                return response.status, json.loads(raw) if raw else None
        except urllib.error.HTTPError as error:
            raw = error.read()
            try:
                return error.code, json.loads(raw) if raw else None
            except ValueError:
                return error.code, raw.decode(errors="replace")

    def admin(self, method: str, path: str, body: Any = None, headers: dict | None = None) -> tuple[int, Any]:
        return self.call(method, path, self.config.admin_token, body, headers)

    def wait(self, what: str, predicate, timeout_s: float | None = None) -> Any:
        deadline = time.monotonic() + (timeout_s or self.config.timeout_s)
        while time.monotonic() < deadline:
            value = predicate()
            if value:
                return value
            time.sleep(1)
        raise SmokeFailed(f"timed out after {timeout_s or self.config.timeout_s:.0f} s waiting for {what}")

    # --- steps ---------------------------------------------------------------------------------------------------
    def health(self) -> None:
        status, body = self.call("GET", "v1/health")
        if status != 200 or body != {"status": "ok"}:
            raise SmokeFailed(f"GET /v1/health answered {status} {body}")
        self.say("ok    health")

    def responder(self) -> None:
        rid = self.config.responder_id
        status, body = self.admin("PUT", f"v1/responders/{rid}",
                                  {"name": "Smoke test", "phone": self.config.phone, "active": True})
        if status == 409:
            raise SmokeFailed(f"{self.config.phone} already belongs to another responder: {body}")
        if status not in (200, 201):
            raise SmokeFailed(f"PUT /v1/responders/{rid} answered {status} {body}")
        self.created_responder = status == 201
        self.say(f"ok    test responder {rid} ({'created' if self.created_responder else 'already there'})")

    def open_test_incident(self) -> None:
        body = {"kind": "test", "test_responder": self.config.responder_id}
        status, answer = self.admin("POST", "v1/incidents", body, {"Idempotency-Key": f"smoke-{uuid.uuid4()}"})
        error = (answer or {}).get("error", {}) if isinstance(answer, dict) else {}
        if status == 422 and "kind" in json.dumps(answer):
            raise NoTestKind(f"the service has no `test` incident kind: {answer}")
        if status == 403 and "admin" not in error.get("allowed_roles", ["admin"]):
            raise NoTestKind(f"the service lets no admin open an incident, so it has no `test` kind: {answer}")
        if status != 201:
            raise SmokeFailed(f"POST /v1/incidents (kind test) answered {status} {answer}")
        self.incident = answer["incident"]
        if self.incident.get("severity") != "sev4":
            raise SmokeFailed(f"a test incident must be sev4, got {self.incident.get('severity')}")
        self.say(f"ok    test incident {self.incident['reference']} ({self.incident['id']})")

    @property
    def code(self) -> str:
        return self.incident.get("code") or self.incident["reference"].rsplit("-", 1)[-1][:4]

    def timeline(self) -> list[dict]:
        status, body = self.admin("GET", f"v1/incidents/{self.incident['id']}/timeline")
        return body["events"] if status == 200 else []

    def paged(self) -> dict:
        pages = self.wait("the test page", lambda: [e for e in self.timeline() if e["type"] == "paged"])
        others = [e for e in pages if e.get("details", {}).get("responder") not in (None, self.config.responder_id)]
        if others:
            raise SmokeFailed(f"a test incident paged someone else: {others}")
        self.say(f"ok    paged ({len(pages)} SMS, message {pages[0]['details'].get('message_id')})")
        return pages[0]

    def status(self) -> str | None:
        status, body = self.admin("GET", f"v1/incidents/{self.incident['id']}")
        return body["incident"]["status"] if status == 200 else None

    def publish_reply(self, text: str, previous_message_id: str | None) -> None:
        import boto3

        sns = boto3.client("sns", endpoint_url=self.config.aws_endpoint_url)
        message = {"originationNumber": self.config.phone, "destinationNumber": self.config.origination_number,
                   "messageKeyword": text.split()[0].upper(), "messageBody": text,
                   "inboundMessageId": str(uuid.uuid4()), "previousPublishedMessageId": previous_message_id or ""}
        sns.publish(TopicArn=self.config.topic_arn, Message=json.dumps(message))

    def acknowledge(self, page: dict) -> str:
        if self.config.topic_arn:
            self.publish_reply(f"ACK {self.code}", page.get("details", {}).get("message_id"))
            channel = "SMS reply published to the inbound-sms topic"
        elif self.config.responder_token:
            status, body = self.call("POST", f"v1/incidents/{self.incident['id']}/acknowledge",
                                     self.config.responder_token)
            if status != 200:
                raise SmokeFailed(f"POST /acknowledge answered {status} {body}")
            channel = "API, as the test responder"
        else:
            self.say(f"....  reply  ACK {self.code}  from {self.config.phone} now "
                     f"(waiting {self.config.timeout_s:.0f} s)")
            channel = "your SMS reply"
        self.wait("the acknowledgement", lambda: self.status() == "acknowledged")
        self.say(f"ok    acknowledged ({channel})")
        return channel

    def cleanup(self) -> None:
        if self.incident and not self.resolved and self.status() in ("triggered", "acknowledged"):
            try:
                if self.config.topic_arn:
                    self.publish_reply(f"RES {self.code} smoke test", None)
                elif self.config.responder_token:
                    self.call("POST", f"v1/incidents/{self.incident['id']}/resolve", self.config.responder_token,
                              {"outcome": "other", "note": "smoke test"})
                else:
                    self.say(f"....  reply  RES {self.code}  from {self.config.phone} to close the test incident")
                self.wait("the test incident to be resolved", lambda: self.status() == "resolved",
                          timeout_s=min(self.config.timeout_s, 60))
                self.resolved = True
                self.say("ok    test incident resolved")
            except SmokeFailed as error:
                self.say(f"WARN  test incident {self.incident['reference']} left open: {error}")
        if self.created_responder:
            status, body = self.admin("DELETE", f"v1/responders/{self.config.responder_id}")
            if status in (200, 204):
                self.say(f"ok    test responder {self.config.responder_id} deleted")
            else:
                self.say(f"WARN  could not delete test responder {self.config.responder_id}: {status} {body}")

    def run(self) -> int:
        try:
            self.health()
            self.responder()
            self.open_test_incident()
            page = self.paged()
            self.acknowledge(page)
            self.cleanup()
        except NoTestKind as error:
            self.say(f"SKIP  {error}")
            self.cleanup()
            return NO_TEST_KIND
        except (SmokeFailed, OSError, KeyError) as error:
            self.say(f"FAIL  {type(error).__name__}: {error}")
            self.cleanup()
            return 1
        self.say("smoke test passed")
        return 0


def main(argv: list[str] | None = None, env: dict[str, str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--api-url", help="the stage's EndpointURL (default: $API_URL)")
    args = parser.parse_args(argv)
    try:
        config = Config.from_environment(dict(os.environ if env is None else env), args.api_url)
    except SystemExit as error:
        print(error, file=sys.stderr)
        return 2
    return Smoke(config).run()


if __name__ == "__main__":
    sys.exit(main())
