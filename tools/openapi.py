"""Generates docs/openapi.json, the OpenAPI 3.1 document of the HTTP API.

    python -m tools.openapi            # writes docs/openapi.json
    python -m tools.openapi --check    # exits 1 if docs/openapi.json is not what the code generates

Where each part comes from, so the document follows the code instead of being kept by hand:
- operations and path parameters: Chalice's own Swagger generator over the app's routes (`SwaggerGenerator`);
- who may call each operation (`security`, `x-roles`), the request body model and the success status: the
  `endpoint(...)` registration of each route in app.py (read from the view's closure);
- request schemas: the pydantic models of chalicelib/schemas.py (`model_json_schema()`), completed with the rules
  their validators enforce in code (E.164 phone numbers, a location for life-safety kinds, exactly one target, known
  routing kinds), so that a client that follows the document is accepted;
- response schemas and the error shape: CONTRACT.md (written out below, with the kinds, statuses and outcomes taken
  from the domain so they cannot drift);
- the routes that are not `endpoint(...)` registrations (the dispatch provider's webhook, authenticated by its HMAC
  signature instead of a token; the reviewer's HTML pages): PLAIN_ROUTES below.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
OUTPUT = ROOT / "docs" / "openapi.json"
ERROR_REF = {"$ref": "#/components/schemas/Error"}
ISO_TIME = {"type": "string", "format": "date-time"}
# Ids are opaque, but the service only ever hands out these characters (incident ids, references, directory ids).
ID_PATTERN = r"^[A-Za-z0-9_.-]{1,64}$"

ERROR_DESCRIPTIONS = {
    "400": "Malformed JSON or a body larger than 64 KiB.",
    "401": "Missing, expired or invalid bearer token.",
    "401-webhook": "Missing, malformed, expired or wrong `X-Dispatch-Signature`: nothing was changed.",
    "403": "The caller's role may not do this, or it is not theirs: a shopper's own incidents and check-ins only; a "
           "responder only while active and only on incidents whose plan names them (need-to-know).",
    "404": "Unknown id or reference.",
    "404-webhook": "The signed event names an alarm the service never placed.",
    "409": "Conflict: the state does not allow it (of the incident, the check-in, or a dispatch already under way), "
           "it was acknowledged by someone else, the phone number belongs to another responder, or the "
           "Idempotency-Key was used with another body.",
    "422": "Validation failed; `details` names each bad field.",
    "422-webhook": "Correctly signed, but not the event shape the provider promised.",
    "503-webhook": "A dependency failed, or webhooks are not configured: nothing was changed; the provider retries.",
    "429": "Rate limited (for example: too many wrong cancel PINs).",
    "503": "A dependency failed (storage, queues, the identity provider's keys, the dispatch provider's "
           "configuration) and nothing half-done was kept: retry (with the same Idempotency-Key).",
}


def _whitespace_class() -> str:
    """A regex class of exactly the characters Python's str.strip() removes (pydantic's str_strip_whitespace), spelled
    with \\uXXXX escapes that ECMA, Rust and Python regex engines all read the same way (their \\s differ)."""
    spaces = [code for code in range(0x110000) if chr(code).isspace()]
    ranges, start = [], spaces[0]
    for previous, code in zip(spaces, spaces[1:] + [None]):
        if code != previous + 1:
            ranges.append((start, previous))
            start = code
    return "".join(f"\\u{a:04x}" if a == b else f"\\u{a:04x}-\\u{b:04x}" for a, b in ranges)


# Surrounding whitespace is trimmed before length limits apply: a required string must have a character strip() keeps.
NOT_BLANK = f"[^{_whitespace_class()}]"


def _not_blank(schema: Any) -> None:
    """Adds NOT_BLANK to every string schema with minLength >= 1 (walking anyOf/items/properties)."""
    if isinstance(schema, dict):
        if schema.get("type") == "string" and schema.get("minLength", 0) >= 1:
            if "pattern" in schema:
                schema["allOf"] = schema.get("allOf", []) + [{"pattern": NOT_BLANK}]
            else:
                schema["pattern"] = NOT_BLANK
        for value in schema.values():
            _not_blank(value)
    elif isinstance(schema, list):
        for value in schema:
            _not_blank(value)


def _bounds(schema: Any) -> None:
    """pydantic writes the bounds of an optional number (`X | None = Field(ge=..)`) as `ge`/`le`/`gt`/`lt`, which JSON
    Schema ignores: rename them, so the document refuses what the model refuses."""
    names = {"ge": "minimum", "le": "maximum", "gt": "exclusiveMinimum", "lt": "exclusiveMaximum"}
    if isinstance(schema, dict):
        for short, proper in names.items():
            if short in schema and isinstance(schema[short], (int, float)) and schema.get("type") in ("number", "integer"):
                schema[proper] = schema.pop(short)
        for value in schema.values():
            _bounds(value)
    elif isinstance(schema, list):
        for value in schema:
            _bounds(value)


# --- what app.py registers -------------------------------------------------------------------------------------------
def _registration(view) -> dict[str, Any]:
    """roles/body/status of a route registered with app.endpoint(); {} for plain Chalice routes (HTML pages)."""
    names = view.__code__.co_freevars
    cells = view.__closure__ or ()
    found = dict(zip(names, (cell.cell_contents for cell in cells)))
    return {k: found[k] for k in ("roles", "body", "status", "handler") if k in found}


def _load_app():
    sys.path.insert(0, str(ROOT))
    import app  # noqa: E402  (settings are read lazily: importing needs no AWS and no environment)

    return app


# --- schemas ---------------------------------------------------------------------------------------------------------
def _model_schemas() -> dict[str, dict]:
    """Every request model as a component, nested models included, with the code-only rules made explicit."""
    from pydantic import BaseModel

    from chalicelib import schemas
    from chalicelib.domain.incidents import KIND_RULES, PUBLIC_KINDS

    components: dict[str, dict] = {}
    models = [v for v in vars(schemas).values()
              if isinstance(v, type) and issubclass(v, BaseModel) and v.__module__ == schemas.__name__
              and v not in (schemas.Strict, schemas.InboundSms)]
    for model in models:
        schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
        for name, definition in schema.pop("$defs", {}).items():
            components[name] = definition
        components[model.__name__] = schema
    stripped = {m.__name__ for m in models if m.model_config.get("str_strip_whitespace")}
    for name, definition in components.items():
        _bounds(definition)
        if name in stripped:
            _not_blank(definition)
            definition["description"] = ((definition.get("description") or "") +
                                         " Leading and trailing whitespace of strings is removed before their limits apply.").strip()

    phone = {"type": "string", "pattern": schemas.E164.pattern, "description": "E.164, like +14155550100"}
    incident = components["IncidentCreate"]
    incident["properties"]["callback_phone"] = {"anyOf": [phone, {"type": "null"}], "default": None}
    needs_location = sorted(kind for kind, rule in KIND_RULES.items() if rule.location_required)
    # The kinds a client may open: the public ones, and `test` for admins (the others are opened by the service).
    incident["properties"]["kind"] = {"enum": [*PUBLIC_KINDS, "test"], "title": "Kind", "type": "string"}
    incident["allOf"] = [
        {"if": {"properties": {"kind": {"enum": needs_location}}, "required": ["kind"]},
         "then": {"required": ["location"], "properties": {"location": {"$ref": "#/components/schemas/Location"}}}},
        {"if": {"properties": {"kind": {"const": "test"}}, "required": ["kind"]},
         "then": {"required": ["test_responder"], "properties": {"test_responder": {"type": "string"}}},
         "else": {"properties": {"test_responder": {"type": "null"}}}},
    ]
    incident["description"] = (
        f"`location` is required for {', '.join(needs_location)}. Kind `test` (admins only: the post-deploy smoke "
        "test) requires `test_responder`, the one responder it pages; other kinds must not name one. `duress_pin` "
        "must differ from `cancel_pin` (x-distinct). A second press of a life-safety kind while the shopper has one "
        "open (opened in the last 30 minutes) joins it: 200 instead of 201.")
    incident["x-distinct"] = [["cancel_pin", "duress_pin"]]
    responder = components["ResponderPut"]
    responder["properties"]["phone"] = phone
    responder["properties"]["email"] = {"anyOf": [{"type": "string", "maxLength": 254, "pattern": schemas.EMAIL.pattern,
                                                   "description": "like oncall@example.com"}, {"type": "null"}],
                                        "default": None, "title": "Email"}
    responder["description"] = ((responder.get("description") or "") + " `voice` and `email` are the failover "
                                "channels of a page that fails or is not delivered in time.").strip()
    components["PolicyPut"]["description"] = (
        (components["PolicyPut"].get("description") or "") + " `ack_timeout_s`: an acknowledged incident not resolved "
        "within it reminds the acknowledger, then returns to triggered. `dispatch_on_exhaustion`: emergency dispatch "
        "when every tier was paged. `delivery_timeout_s` (default 30): a page not delivered within it fails over to "
        "voice/email. `require_verified`: every responder it names must have verified their phone.").strip()
    target = components["TargetRef"]
    target["oneOf"] = [
        {"required": ["responder"], "properties": {"responder": {"type": "string"}}},
        {"required": ["schedule"], "properties": {"schedule": {"type": "string"}}},
    ]
    target["description"] = "Exactly one of `responder` or `schedule`."
    routing = components["RoutingPut"]
    policy_id = {"type": "string", "pattern": schemas.IDENTIFIER}
    routing["properties"] = {kind: policy_id for kind in KIND_RULES} | {"default": policy_id}
    routing["additionalProperties"] = False
    routing["description"] = "kind -> escalation policy id, plus `default`."
    return components


def _response_schemas() -> dict[str, dict]:
    from chalicelib.domain import checkins as check_in_rules
    from chalicelib.domain import dispatch as dispatch_rules
    from chalicelib.domain.incidents import KINDS, OUTCOMES, Status

    statuses = [s.value for s in Status]
    string = {"type": "string"}
    location = {"type": "object", "required": ["lat", "lng"], "properties": {
        "lat": {"type": "number", "minimum": -90, "maximum": 90}, "lng": {"type": "number", "minimum": -180, "maximum": 180},
        "accuracy_m": {"type": ["number", "null"]}, "at": ISO_TIME}}
    incident = {
        "type": "object",
        "required": ["id", "reference", "kind", "severity", "status", "created_at", "escalation"],
        "properties": {
            "id": {"type": "string"},
            "reference": {"type": "string", "pattern": r"^TS-[0-9A-Z]{6}$"},
            "code": {"type": "string", "pattern": r"^[0-9A-Z]{4}$"},
            "kind": {"enum": list(KINDS)},
            "severity": {"enum": ["sev1", "sev2", "sev3", "sev4"]},
            "status": {"enum": statuses},
            "created_at": ISO_TIME, "acknowledged_at": ISO_TIME, "resolved_at": ISO_TIME, "cancelled_at": ISO_TIME,
            "acknowledged_by": {"type": "string"}, "acknowledged_by_name": {"type": "string"},
            "outcome": {"enum": list(OUTCOMES)},
            "order_id": {"type": "string"},
            "location": location,
            "escalation": {"type": "object", "required": ["tier", "policy", "exhausted"], "properties": {
                "tier": {"type": "integer", "minimum": 0}, "policy": {"type": ["string", "null"]},
                "exhausted": {"type": "boolean"}}},
            "attachments": {"type": "array", "items": {"$ref": "#/components/schemas/Attachment"}},
            "description": string,
            "callback_phone": string,
            "shopper_message": {"type": "string", "description": "The one sentence the shopper's app shows now."},
            "dispatch": {"$ref": "#/components/schemas/Dispatch"},
            "duress": {"const": True, "description": "Staff views only: the shopper cancelled with her duress PIN."},
            "pressed_again": {"type": "integer", "minimum": 1,
                              "description": "How many further presses joined this incident."},
            "check_in_id": {"type": "string", "description": "Set on the incident a missed check-in opened."},
        },
    }
    dispatch_times = {f"{name}_at": ISO_TIME for name in ("requested", "updated", "accepted", "psap_contacted", "closed",
                                                          "cancelled", "failed")}
    dispatch = {"type": "object", "required": ["id", "status", "provider", "requested_at", "updated_at"],
                "properties": {"id": string, "status": {"enum": list(dispatch_rules.STATUSES)}, "provider": string,
                               **dispatch_times, "automatic": {"type": "boolean"}}}
    check_in = {"type": "object", "required": ["id", "status", "created_at", "due_at"], "properties": {
        "id": string, "status": {"enum": [check_in_rules.ACTIVE, check_in_rules.COMPLETED, check_in_rules.MISSED]},
        "created_at": ISO_TIME, "due_at": ISO_TIME, "completed_at": ISO_TIME, "missed_at": ISO_TIME,
        "order_id": string, "note": string, "location": location,
        "incident_id": {"type": "string", "description": "The incident a missed check-in opened."}}}
    attachment = {"type": "object", "required": ["id", "filename", "content_type", "size_bytes", "at"], "properties": {
        "id": {"type": "string"}, "filename": {"type": "string"}, "content_type": {"type": "string"},
        "size_bytes": {"type": "integer"}, "added_by": {"type": "string"}, "at": ISO_TIME, "key": {"type": "string"}}}
    event = {"type": "object", "required": ["seq", "at", "type", "details"], "properties": {
        "seq": {"type": "integer", "minimum": 1}, "at": ISO_TIME, "type": {"type": "string"},
        "actor": {"type": "string"}, "details": {"type": "object"}}}
    duration = {"type": "object"}
    responder = {"type": "object", "required": ["id", "name", "phone", "active"], "properties": {
        "id": {"type": "string"}, "name": {"type": "string"}, "phone": {"type": "string"}, "active": {"type": "boolean"},
        "opted_out": {"type": "boolean"}, "voice": {"type": "boolean"}, "email": string,
        "verified_at": {"anyOf": [ISO_TIME, {"type": "null"}],
                        "description": "When the responder last answered a test page (null: never, or not since the "
                                       "phone number changed)."},
        "updated_at": ISO_TIME}}
    document = {"type": "object", "required": ["id", "updated_at"],
                "properties": {"id": {"type": "string"}, "updated_at": ISO_TIME}}

    def envelope(name: str, schema: dict) -> dict:
        return {"type": "object", "required": [name], "properties": {name: schema}}

    return {
        "Error": {
            "type": "object", "required": ["error"],
            "properties": {"error": {
                "type": "object", "required": ["code", "message"],
                "properties": {
                    "code": {"type": "string"}, "message": {"type": "string"},
                    "details": {"type": "array", "items": {"type": "object", "required": ["field", "problem"],
                                                           "properties": {"field": {"type": "string"},
                                                                          "problem": {"type": "string"}}}},
                },
                "description": "Some errors add context, e.g. a 409 already_acknowledged names who acknowledged.",
            }},
        },
        "Incident": incident,
        "Dispatch": dispatch,
        "CheckIn": check_in,
        "Attachment": attachment,
        "TimelineEvent": event,
        "Responder": responder,
        "Health": {"type": "object", "required": ["status"], "properties": {"status": {"const": "ok"}}},
        "IncidentResponse": envelope("incident", {"$ref": "#/components/schemas/Incident"}),
        "IncidentList": {"type": "object", "required": ["incidents"], "properties": {
            "incidents": {"type": "array", "items": {"$ref": "#/components/schemas/Incident"}},
            "next_cursor": {"type": "string"}}},
        "NoteResponse": envelope("note", {"type": "object", "required": ["text"], "properties": {"text": {"type": "string"}}}),
        "AttachmentResponse": {"type": "object", "required": ["attachment", "upload"], "properties": {
            "attachment": {"$ref": "#/components/schemas/Attachment"},
            "upload": {"type": "object", "required": ["url", "fields"],
                       "properties": {"url": {"type": "string"}, "fields": {"type": "object"}}}}},
        "EscalationResponse": envelope("escalation", {"type": "object", "required": ["tier"],
                                                      "properties": {"tier": {"type": "integer", "minimum": 1}}}),
        "Timeline": {"type": "object", "required": ["events"], "properties": {
            "events": {"type": "array", "items": {"$ref": "#/components/schemas/TimelineEvent"}},
            "verification": {"type": "object", "required": ["intact"], "properties": {
                "intact": {"type": "boolean"}, "first_bad_seq": {"type": ["integer", "null"]},
                "events": {"type": "integer"}}}}},
        "Metrics": envelope("metrics", {"type": "object", "required": ["incidents"], "properties": {
            "incidents": {"type": "integer", "minimum": 0}, "by_kind": {"type": "object"},
            "by_status": {"type": "object"}, "by_outcome": {"type": "object"},
            "time_to_acknowledge_s": duration, "time_to_resolve_s": duration, "escalation_depth": {"type": "object"}}}),
        "Report": envelope("report", {"type": "object", "required": ["incident", "timeline_intact"], "properties": {
            "incident": {"$ref": "#/components/schemas/Incident"}, "timeline_intact": {"type": "boolean"},
            "events": {"type": "integer"}}}),
        "ReviewResponse": envelope("review", {"type": "object", "required": ["findings"], "properties": {
            "findings": {"type": "string"}, "follow_up_actions": {"type": "array", "items": {"type": "string"}}}}),
        "ResponderResponse": envelope("responder", {"$ref": "#/components/schemas/Responder"}),
        "ResponderList": envelope("responders", {"type": "array", "items": {"$ref": "#/components/schemas/Responder"}}),
        "ScheduleResponse": envelope("schedule", document),
        "PolicyResponse": envelope("policy", document),
        "RoutingResponse": envelope("routing", {"type": "object", "additionalProperties": {"type": "string"}}),
        "CheckInResponse": envelope("check_in", {"$ref": "#/components/schemas/CheckIn"}),
        "DispatchResponse": envelope("dispatch", {"$ref": "#/components/schemas/Dispatch"}),
        "TestPageResponse": envelope("test_page", {"type": "object", "required": ["responder", "status", "reply"],
                                                   "properties": {"responder": string, "status": {"const": "queued"},
                                                                  "reply": {"const": "OK"}}}),
        "DispatchWebhook": {
            "type": "object", "required": ["event_id", "alarm_id", "status", "at"],
            "description": "The dispatch provider's status event, signed with `X-Dispatch-Signature`.",
            "properties": {"event_id": {"type": "string", "minLength": 1, "pattern": NOT_BLANK},
                           "alarm_id": {"type": "string", "minLength": 1, "pattern": NOT_BLANK},
                           "status": {"enum": ["accepted", "psap_contacted", "closed", "canceled", "cancelled"]},
                           "at": ISO_TIME}},
        "DispatchWebhookResponse": {
            "type": "object", "properties": {"dispatch": {"$ref": "#/components/schemas/Dispatch"}},
            "description": "The dispatch as it now stands (a late or repeated status changes nothing)."},
    }


# --- operations ------------------------------------------------------------------------------------------------------
# (method, path) -> success response schema (component name), or a media type for non-JSON answers.
SUCCESS: dict[tuple[str, str], str | None] = {
    ("GET", "/v1/health"): "Health",
    ("POST", "/v1/incidents"): "IncidentResponse",
    ("GET", "/v1/incidents"): "IncidentList",
    ("GET", "/v1/incidents/{incident_id}"): "IncidentResponse",
    ("POST", "/v1/incidents/{incident_id}/locations"): "IncidentResponse",
    ("POST", "/v1/incidents/{incident_id}/cancel"): "IncidentResponse",
    ("POST", "/v1/incidents/{incident_id}/notes"): "NoteResponse",
    ("POST", "/v1/incidents/{incident_id}/attachments"): "AttachmentResponse",
    ("POST", "/v1/incidents/{incident_id}/acknowledge"): "IncidentResponse",
    ("POST", "/v1/incidents/{incident_id}/resolve"): "IncidentResponse",
    ("POST", "/v1/incidents/{incident_id}/escalate"): "EscalationResponse",
    ("POST", "/v1/incidents/{incident_id}/dispatch"): "DispatchResponse",
    ("POST", "/v1/dispatch/webhook"): "DispatchWebhookResponse",
    ("POST", "/v1/check-ins"): "CheckInResponse",
    ("GET", "/v1/check-ins/{check_in_id}"): "CheckInResponse",
    ("POST", "/v1/check-ins/{check_in_id}/locations"): "CheckInResponse",
    ("POST", "/v1/check-ins/{check_in_id}/complete"): "CheckInResponse",
    ("GET", "/v1/incidents/{incident_id}/timeline"): "Timeline",
    ("GET", "/v1/review/metrics"): "Metrics",
    ("GET", "/v1/review/export"): "text/csv",
    ("GET", "/v1/incidents/{incident_id}/report"): "Report",
    ("POST", "/v1/incidents/{incident_id}/review"): "ReviewResponse",
    ("GET", "/review"): "text/html",
    ("GET", "/review/incidents/{incident_id}"): "text/html",
    ("GET", "/v1/responders"): "ResponderList",
    ("PUT", "/v1/responders/{responder_id}"): "ResponderResponse",
    ("GET", "/v1/responders/{responder_id}"): "ResponderResponse",
    ("DELETE", "/v1/responders/{responder_id}"): None,
    ("POST", "/v1/responders/{responder_id}/test-page"): "TestPageResponse",
    ("PUT", "/v1/schedules/{schedule_id}"): "ScheduleResponse",
    ("GET", "/v1/schedules/{schedule_id}"): "ScheduleResponse",
    ("PUT", "/v1/escalation-policies/{policy_id}"): "PolicyResponse",
    ("GET", "/v1/escalation-policies/{policy_id}"): "PolicyResponse",
    ("PUT", "/v1/routing"): "RoutingResponse",
    ("GET", "/v1/routing"): "RoutingResponse",
}


# Success statuses where one registration answers more than one (the registered status comes first).
ALSO = {
    ("POST", "/v1/incidents"): {"200": "A second press of a life-safety kind joined the shopper's open incident "
                                       "(contract 4.2, pressing again): that incident, now escalating."},
}
SUCCESS_DESCRIPTIONS = {
    ("POST", "/v1/incidents"): "Opened (or the same Idempotency-Key and body again: the same incident).",
    ("POST", "/v1/incidents/{incident_id}/dispatch"): "Emergency dispatch requested; the provider is called from a "
                                                       "queue and its progress shows in `dispatch.status`.",
    ("POST", "/v1/responders/{responder_id}/test-page"): "Test SMS queued; the reply OK sets `verified_at`.",
}
# Routes registered with plain `@app.route` (no `endpoint(...)`): what the registration would have said.
PLAIN_ROUTES = {
    ("POST", "/v1/dispatch/webhook"): {
        "summary": "The dispatch provider's status webhook (public: authenticated by its HMAC signature, not a token)",
        "body": "DispatchWebhook",
        "parameters": [{"name": "X-Dispatch-Signature", "in": "header", "required": True, "schema": {"type": "string"},
                        "description": "`t=<unix seconds>,v1=<hex HMAC-SHA256 of \"<t>.\" + raw body>` with the "
                                       "shared webhook secret; refused more than 300 s from now."}],
        "errors": {"401": "401-webhook", "404": "404-webhook", "422": "422-webhook", "503": "503-webhook"},
    },
}


def _query_parameters(method: str, path: str) -> list[dict]:
    from chalicelib.domain.incidents import KINDS, Status

    def query(name: str, schema: dict, description: str) -> dict:
        return {"name": name, "in": "query", "required": False, "schema": schema, "description": description}

    if (method, path) in (("GET", "/v1/incidents"), ("GET", "/v1/review/metrics"), ("GET", "/v1/review/export")):
        params = [
            query("status", {"enum": [s.value for s in Status]}, "Only incidents in this status."),
            query("kind", {"enum": list(KINDS)}, "Only incidents of this kind."),
            query("since", ISO_TIME, "Created at or after (default: 30 days before `until`)."),
            query("until", ISO_TIME, "Created at or before (default: now)."),
        ]
        if path == "/v1/incidents":
            params += [query("limit", {"type": "integer", "minimum": 1, "maximum": 200, "default": 50}, "Page size."),
                       query("cursor", {"type": "string"}, "`next_cursor` of the previous page, as given.")]
        return params
    if path.endswith("/timeline"):
        return [query("verify", {"enum": ["true", "false"]}, "With `true`, the hash chain is verified.")]
    if (method, path) == ("GET", "/v1/responders"):
        return [query("verified", {"enum": ["true", "false"]},
                      "`true`: only responders who verified their phone (answered a test page); `false`: only those "
                      "who have not.")]
    return []


def _operation(method: str, path: str, view, swagger_op: dict) -> dict:
    registration = _registration(view)
    plain = PLAIN_ROUTES.get((method, path), {})
    roles = registration.get("roles")
    body = registration.get("body")
    status = str(registration.get("status", 200))
    handler = registration.get("handler", view)
    operation: dict[str, Any] = {
        "operationId": handler.__name__,
        "summary": plain.get("summary") or (handler.__doc__ or handler.__name__.replace("_", " ")).strip().splitlines()[0],
        "tags": [_tag(path)],
    }
    parameters = [{"name": p["name"], "in": "path", "required": True,
                   "schema": {"type": "string", "pattern": ID_PATTERN}}
                  for p in swagger_op.get("parameters", []) if p.get("in") == "path"]
    if path == "/v1/incidents/{incident_id}" or path.startswith("/v1/incidents/{incident_id}/"):
        for parameter in parameters:
            parameter["description"] = "The incident's id, or its reference (TS-XXXXXX)."
    if (method, path) in (("POST", "/v1/incidents"), ("POST", "/v1/check-ins")):
        what = "incident" if path == "/v1/incidents" else "check-in"
        parameters.append({"name": "Idempotency-Key", "in": "header", "required": False,
                           "schema": {"type": "string", "minLength": 1, "maxLength": 255},
                           "description": f"The same key and body return the same {what}; another body is 409."})
    parameters += _query_parameters(method, path) + plain.get("parameters", [])
    if parameters:
        operation["parameters"] = parameters
    body_name = body.__name__ if body is not None else plain.get("body")
    if body_name is not None:
        operation["requestBody"] = {"required": True, "content": {
            "application/json": {"schema": {"$ref": f"#/components/schemas/{body_name}"}}}}

    responses: dict[str, Any] = {}
    success = SUCCESS[(method, path)]
    descriptions = {status: SUCCESS_DESCRIPTIONS.get((method, path), "OK"), **ALSO.get((method, path), {})}
    if method == "PUT" and path != "/v1/routing":
        descriptions = {"200": "Replaced.", "201": "Created."}
    if method == "DELETE":
        descriptions = {"204": "Deleted."}
    for code, description in descriptions.items():
        if success is None:
            responses[code] = {"description": "No content."}
        elif "/" in success:
            responses[code] = {"description": description, "content": {success: {"schema": {"type": "string"}}}}
        else:
            responses[code] = {"description": description, "content": {
                "application/json": {"schema": {"$ref": f"#/components/schemas/{success}"}}}}

    if roles == () or roles is None:  # public: no token
        operation["security"] = []
        operation["x-roles"] = []
        for code, key in plain.get("errors", {}).items():
            responses[code] = {"description": ERROR_DESCRIPTIONS[key],
                               "content": {"application/json": {"schema": ERROR_REF}}}
    else:
        operation["security"] = [{"bearerAuth": []}]
        operation["x-roles"] = list(roles)
        errors = ["401", "403", "503"]
        if body is not None or method in ("POST", "PUT"):
            errors.append("400")  # a body over 64 KiB is refused whether or not the operation reads one
        if body is not None:
            errors.append("422")
        if any(p["in"] == "path" for p in parameters):
            errors.append("404")
        if any(p["in"] in ("query", "header") for p in parameters):
            errors.append("422")
        if method in ("POST", "PUT") and path not in ("/v1/routing", "/v1/responders/{responder_id}/test-page"):
            errors.append("409")
        if path.endswith("/cancel"):
            errors.append("429")
        for code in sorted(set(errors)):
            responses[code] = {"description": ERROR_DESCRIPTIONS[code],
                               "content": {"application/json": {"schema": ERROR_REF}}}
    operation["responses"] = responses
    return operation


def _tag(path: str) -> str:
    if path.startswith(("/v1/responders", "/v1/schedules", "/v1/escalation-policies", "/v1/routing")):
        return "admin"
    if path.startswith(("/v1/review", "/review")) or path.endswith(("/timeline", "/report", "/review")):
        return "review"
    if path.startswith("/v1/dispatch/"):
        return "webhooks"
    if path.endswith(("/acknowledge", "/resolve", "/escalate", "/dispatch")):
        return "responder"
    if path.startswith("/v1/check-ins"):
        return "check-ins"
    if path == "/v1/health":
        return "health"
    return "incidents"


def build_document() -> dict:
    from chalice.deploy.swagger import SwaggerGenerator

    app_module = _load_app()
    app = app_module.app
    swagger = SwaggerGenerator("us-east-1", {"api_handler_arn": "arn:aws:lambda:us-east-1:123456789012:function:api"}
                               ).generate_swagger(app)
    paths: dict[str, dict] = {}
    for path, methods in swagger["paths"].items():
        for method, swagger_op in methods.items():
            if method == "options":
                continue
            view = app.routes[path][method.upper()].view_function
            paths.setdefault(path, {})[method] = _operation(method.upper(), path, view, swagger_op)
    missing = set(SUCCESS) - {(m.upper(), p) for p, ms in paths.items() for m in ms}
    unknown = {(m.upper(), p) for p, ms in paths.items() for m in ms} - set(SUCCESS)
    if missing or unknown:
        raise SystemExit(f"tools/openapi.py is out of date with app.py: missing {sorted(missing)}, new {sorted(unknown)}; "
                         "add the new routes' response schema to SUCCESS")
    return {
        "openapi": "3.1.0",
        "jsonSchemaDialect": "https://json-schema.org/draft/2020-12/schema",
        "info": {
            "title": "Trust & Safety emergency alerts",
            "version": "v1",
            "description": "Generated by `python -m tools.openapi` from app.py, chalicelib/schemas.py and the contract "
                           "(../shared/CONTRACT.md); do not edit by hand. Errors always have the shape "
                           "`{\"error\": {\"code\", \"message\", \"details\"?}}`.",
        },
        "servers": [{"url": "http://127.0.0.1:8000", "description": "the local stack (`make run`)"}],
        "security": [{"bearerAuth": []}],
        "tags": [{"name": n} for n in ("health", "incidents", "check-ins", "responder", "review", "admin", "webhooks")],
        "paths": paths,
        "components": {
            "securitySchemes": {"bearerAuth": {
                "type": "http", "scheme": "bearer", "bearerFormat": "JWT",
                "description": "claims: sub (user id; the responder id for responders), role (shopper | responder | "
                               "reviewer | admin), exp, iss, aud. Locally: POST /dev/tokens on the dev server."}},
            "schemas": dict(sorted({**_model_schemas(), **_response_schemas()}.items())),
        },
    }


def render(document: dict) -> str:
    return json.dumps(document, indent=2, sort_keys=False, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if the committed document is out of date")
    parser.add_argument("--out", type=Path, default=OUTPUT)
    args = parser.parse_args(argv)
    text = render(build_document())
    if args.check:
        current = args.out.read_text() if args.out.exists() else ""
        if current != text:
            print(f"{args.out} is out of date: run `python -m tools.openapi`", file=sys.stderr)
            return 1
        return 0
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(f"wrote {args.out.relative_to(ROOT) if args.out.is_relative_to(ROOT) else args.out}")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
    raise SystemExit(main())
