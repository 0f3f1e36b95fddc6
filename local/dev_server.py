"""The dev server (local only, never deployed): the console, the contract's /dev endpoints, and the stand-ins for
what AWS or a partner does outside the service (the carrier, the two-way SMS topic's delivery, voice calls, the
dispatch provider)."""

from __future__ import annotations

import json
import logging
import uuid
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

log = logging.getLogger("local.dev_server")
CONSOLE_DIR = Path(__file__).resolve().parent / "console"
CONTENT_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript", ".css": "text/css",
                 ".svg": "image/svg+xml", ".png": "image/png", ".json": "application/json"}
ROLES = ("shopper", "responder", "reviewer", "admin")


def _error(code: str, message: str, field: str | None = None) -> dict:
    body: dict = {"code": code, "message": message}
    if field:
        body["details"] = [{"field": field, "problem": message}]
    return {"error": body}


def dev_handler(stack: Any):
    from local.fake_dispatch import FakeDispatchProvider

    class DevHandler(BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:  # quiet
            pass

        # --- plumbing --------------------------------------------------------------------------------------------
        def _send(self, status: int, body: Any) -> None:
            payload = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def _raw_body(self) -> bytes:
            length = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(length) if length else b""

        def _json_body(self) -> dict:
            data = json.loads(self._raw_body() or b"{}")
            if not isinstance(data, dict):
                raise ValueError("body must be a JSON object")
            return data

        def _route(self) -> str:
            return self.path.split("?")[0]

        def _static(self, relative: str) -> None:
            """The local console (local/console/): plain files, no build step."""
            path = (CONSOLE_DIR / (relative or "index.html")).resolve()
            if CONSOLE_DIR.resolve() not in path.parents or not path.is_file():
                self._send(404, _error("not_found", "no such file"))
                return
            payload = path.read_bytes()
            self.send_response(200)
            self.send_header("Content-Type", CONTENT_TYPES.get(path.suffix, "application/octet-stream"))
            self.send_header("Content-Length", str(len(payload)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(payload)

        def _dispatch_provider(self, method: str) -> bool:
            if not FakeDispatchProvider.owns(self.path):  # before reading the body: the provider reads it
                return False
            status, payload = stack.dispatch.handle(method, self.path, dict(self.headers.items()), self._raw_body())
            self._send(status, payload)
            return True

        def _proxy(self, method: str) -> None:
            """/api/<path> -> the API's /<path>: the console is served from this origin and calls the public API
            through it, so the API needs no CORS for a local-only page."""
            import requests

            body = self._raw_body() or None
            headers = {k: v for k, v in self.headers.items()
                       if k.lower() in ("authorization", "content-type", "idempotency-key")}
            upstream = requests.request(method, stack.api_url + self.path.removeprefix("/api"), data=body,
                                        headers=headers, timeout=30)
            self.send_response(upstream.status_code)
            self.send_header("Content-Type", upstream.headers.get("Content-Type", "application/json"))
            self.send_header("Content-Length", str(len(upstream.content)))
            self.end_headers()
            self.wfile.write(upstream.content)

        # --- verbs -----------------------------------------------------------------------------------------------
        def do_GET(self) -> None:  # noqa: N802 - http.server's names
            route = self._route()
            if self._dispatch_provider("GET"):
                return
            if route == "/" or route.startswith("/console/"):
                self._static(route.removeprefix("/").removeprefix("console/"))
            elif route.startswith("/api/"):
                self._proxy("GET")
            elif route == "/dev/sms":
                self._send(200, {"messages": stack.sms.listing()})
            elif route == "/dev/calls":
                self._send(200, {"calls": list(stack.calls)})
            elif route == "/dev/email":
                self._send(200, {"emails": _emails()})
            elif route == "/dev/health":
                self._send(200, {"status": "ok"})
            else:
                self._send(404, _error("not_found", "no such dev endpoint"))

        def do_PUT(self) -> None:  # noqa: N802
            self._proxy("PUT") if self.path.startswith("/api/") else self._send(404, _error("not_found", "no such path"))

        def do_DELETE(self) -> None:  # noqa: N802
            self._proxy("DELETE") if self.path.startswith("/api/") else self._send(404, _error("not_found", "no such path"))

        def do_POST(self) -> None:  # noqa: N802
            if self._dispatch_provider("POST"):
                return
            if self.path.startswith("/api/"):
                self._proxy("POST")
                return
            try:
                body = self._json_body()
            except (ValueError, RecursionError):
                self._send(400, _error("bad_request", "body is not a JSON object"))
                return
            route = self._route()
            if route == "/dev/tokens":
                self._token(body)
            elif route == "/dev/sms/inbound":
                self._inbound(body)
            elif route.startswith("/dev/sms/") and route.endswith("/status"):
                self._receipt(route.removeprefix("/dev/sms/").removesuffix("/status"), body)
            elif route == "/dev/sns":
                self._sns(body)
            elif route == "/dev/calls":
                call = {"call_id": f"call-{uuid.uuid4().hex[:12]}", "to": body.get("to"), "text": body.get("text"),
                        "at": datetime.now(timezone.utc).isoformat()}
                stack.calls.append(call)
                self._send(201, call)
            else:
                self._send(404, _error("not_found", "no such dev endpoint"))

        # --- endpoints -------------------------------------------------------------------------------------------
        def _token(self, body: dict) -> None:
            role, sub = body.get("role"), body.get("sub")
            if role not in ROLES or not isinstance(sub, str) or not sub:
                self._send(422, _error("validation_error", "role and sub are required", "role"))
                return
            self._send(200, {"token": stack.mint_token(role, sub)})

        def _inbound(self, body: dict) -> None:
            sender, text = body.get("from"), body.get("body")
            if not isinstance(sender, str) or not isinstance(text, str):
                self._send(422, _error("validation_error", "from and body are required", "from"))
                return
            inbound_id = stack.publish_inbound_sms(sender, text, previous_message_id=body.get("previous_message_id"))
            self._send(202, {"inbound_message_id": inbound_id})

        def _receipt(self, message_id: str, body: dict) -> None:
            status = body.get("status")
            if status not in ("delivered", "failed"):
                self._send(422, _error("validation_error", "status must be delivered or failed", "status"))
                return
            try:
                result = stack.sms_receipt(message_id, status)
            except KeyError:
                self._send(404, _error("not_found", f"no SMS {message_id}"))
                return
            self._send(200, {"message_id": message_id, "status": status, **(result or {})})

        def _sns(self, body: dict) -> None:
            # moto's http delivery of the inbound-sms topic: what Lambda's SNS trigger does on AWS.
            try:
                stack.deliver_sns(body)
            except Exception:  # noqa: BLE001 - as on Lambda: logged; the message went to the dead-letter queue
                self._send(500, _error("internal_error", "handler failed"))
                return
            self._send(200, {})

    return DevHandler


def _emails() -> list[dict]:
    """What SES on the local AWS sent (moto keeps them in its backend)."""
    from moto.ses.models import ses_backends

    backend = ses_backends["123456789012"]["us-east-1"]
    return [{"id": m.id, "to": m.destinations.get("ToAddresses", []), "subject": m.subject, "body": m.body,
             "source": m.source} for m in backend.sent_messages]
