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
  from the domain so they cannot drift).
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
    "403": "The caller's role may not do this, or the incident is not theirs.",
    "404": "Unknown id or reference.",
    "409": "Conflict: the incident's state does not allow it, it was acknowledged by someone else, or the "
           "Idempotency-Key was used with another body.",
    "422": "Validation failed; `details` names each bad field.",
    "429": "Rate limited (for example: too many wrong cancel PINs).",
    "503": "A dependency failed and nothing half-done was kept: retry (with the same Idempotency-Key).",
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
    from chalicelib.domain.incidents import KIND_RULES

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
        if name in stripped:
            _not_blank(definition)
            definition["description"] = ((definition.get("description") or "") +
                                         " Leading and trailing whitespace of strings is removed before their limits apply.").strip()

    phone = {"type": "string", "pattern": schemas.E164.pattern, "description": "E.164, like +14155550100"}
    incident = components["IncidentCreate"]
    incident["properties"]["callback_phone"] = {"anyOf": [phone, {"type": "null"}], "default": None}
    needs_location = sorted(kind for kind, rule in KIND_RULES.items() if rule.location_required)
    incident["allOf"] = [{
        "if": {"properties": {"kind": {"enum": needs_location}}, "required": ["kind"]},
        "then": {"required": ["location"], "properties": {"location": {"$ref": "#/components/schemas/Location"}}},
    }]
    incident["description"] = f"`location` is required for {', '.join(needs_location)}."
    components["ResponderPut"]["properties"]["phone"] = phone
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
    from chalicelib.domain.incidents import KINDS, OUTCOMES, Status

    statuses = [s.value for s in Status]
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
        },
    }
    attachment = {"type": "object", "required": ["id", "filename", "content_type", "size_bytes", "at"], "properties": {
        "id": {"type": "string"}, "filename": {"type": "string"}, "content_type": {"type": "string"},
        "size_bytes": {"type": "integer"}, "added_by": {"type": "string"}, "at": ISO_TIME, "key": {"type": "string"}}}
    event = {"type": "object", "required": ["seq", "at", "type", "details"], "properties": {
        "seq": {"type": "integer", "minimum": 1}, "at": ISO_TIME, "type": {"type": "string"},
        "actor": {"type": "string"}, "details": {"type": "object"}}}
    duration = {"type": "object"}
    responder = {"type": "object", "required": ["id", "name", "phone", "active"], "properties": {
        "id": {"type": "string"}, "name": {"type": "string"}, "phone": {"type": "string"}, "active": {"type": "boolean"},
        "opted_out": {"type": "boolean"}, "updated_at": ISO_TIME}}
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
    }


# --- operations ------------------------------------------------------------------------------------------------------
# (method, path) -> success response schema (component name), or a media type for non-JSON answers.
SUCCESS = {
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
    ("PUT", "/v1/schedules/{schedule_id}"): "ScheduleResponse",
    ("GET", "/v1/schedules/{schedule_id}"): "ScheduleResponse",
    ("PUT", "/v1/escalation-policies/{policy_id}"): "PolicyResponse",
    ("GET", "/v1/escalation-policies/{policy_id}"): "PolicyResponse",
    ("PUT", "/v1/routing"): "RoutingResponse",
    ("GET", "/v1/routing"): "RoutingResponse",
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
    return []


def _operation(method: str, path: str, view, swagger_op: dict) -> dict:
    registration = _registration(view)
    roles = registration.get("roles")
    body = registration.get("body")
    status = str(registration.get("status", 200))
    handler = registration.get("handler", view)
    operation: dict[str, Any] = {
        "operationId": handler.__name__,
        "summary": (handler.__doc__ or handler.__name__.replace("_", " ")).strip().splitlines()[0],
        "tags": [_tag(path)],
    }
    parameters = [{"name": p["name"], "in": "path", "required": True,
                   "schema": {"type": "string", "pattern": ID_PATTERN}}
                  for p in swagger_op.get("parameters", []) if p.get("in") == "path"]
    if path == "/v1/incidents/{incident_id}" or path.startswith("/v1/incidents/{incident_id}/"):
        for parameter in parameters:
            parameter["description"] = "The incident's id, or its reference (TS-XXXXXX)."
    if (method, path) == ("POST", "/v1/incidents"):
        parameters.append({"name": "Idempotency-Key", "in": "header", "required": False,
                           "schema": {"type": "string", "minLength": 1, "maxLength": 255},
                           "description": "The same key and body return the same incident; another body is 409."})
    parameters += _query_parameters(method, path)
    if parameters:
        operation["parameters"] = parameters
    if body is not None:
        operation["requestBody"] = {"required": True, "content": {
            "application/json": {"schema": {"$ref": f"#/components/schemas/{body.__name__}"}}}}

    responses: dict[str, Any] = {}
    success = SUCCESS[(method, path)]
    codes = [status]
    if method == "PUT" and path != "/v1/routing":
        codes = ["200", "201"]  # replaced, or created
    if method == "DELETE":
        codes = ["204"]
    for code in codes:
        if success is None:
            responses[code] = {"description": "No content."}
        elif "/" in success:
            responses[code] = {"description": "OK", "content": {success: {"schema": {"type": "string"}}}}
        else:
            responses[code] = {"description": "OK", "content": {
                "application/json": {"schema": {"$ref": f"#/components/schemas/{success}"}}}}

    if roles == () or roles is None:  # public: no token
        operation["security"] = []
        operation["x-roles"] = []
    else:
        operation["security"] = [{"bearerAuth": []}]
        operation["x-roles"] = list(roles)
        errors = ["401", "403", "503"]
        if body is not None:
            errors += ["400", "422"]
        if any(p["in"] == "path" for p in parameters):
            errors.append("404")
        if any(p["in"] in ("query", "header") for p in parameters):
            errors.append("422")
        if method in ("POST", "PUT") and path != "/v1/routing":
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
    if path.endswith(("/acknowledge", "/resolve", "/escalate")):
        return "responder"
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
        "tags": [{"name": n} for n in ("health", "incidents", "responder", "review", "admin")],
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
