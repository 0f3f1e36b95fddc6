"""Hypothesis on every pydantic model of chalicelib/schemas.py (the SMS parser is fuzzed in tests/unit). Pure: no
stack needed.

- Any JSON at all is either accepted or rejected with a ValidationError, whose `validation_details` is the contract's
  list of {field, problem} strings; nothing else is ever raised (a TypeError here would be a 500).
- What a model accepts is clean: serialisable as strict JSON (no NaN or infinity on its way to DynamoDB or an SMS),
  and accepted again unchanged (validation is idempotent).
- Every body the published document (docs/openapi.json) allows is accepted by the model behind the operation: a
  client that follows the document is never refused with a 422. (One rule JSON Schema cannot state, two fields that
  must differ, is published as `x-distinct` and honoured here.)
- Hostile input (tests/fuzz/strategies.py): objects nested thousands of levels deep, extreme and malformed dates in
  every date field, wrong value types and odd keys, reach the models as Python objects and as raw JSON text; only a
  ValidationError may come out.
"""

from __future__ import annotations

import json

import pytest
import schemathesis
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from chalicelib import schemas
from tests.conftest import ROOT
from tests.fuzz.strategies import DEPTHS, hostile_dates, nest, wrong_types_for

MODELS = sorted((v for v in vars(schemas).values()
                 if isinstance(v, type) and issubclass(v, BaseModel) and v.__module__ == schemas.__name__
                 and v.model_fields), key=lambda m: m.__name__)
DOCUMENT = json.loads((ROOT / "docs" / "openapi.json").read_text())
API = schemathesis.openapi.from_dict(DOCUMENT)

# Awkward scalars: huge and non-finite numbers, look-alike strings, control and non-BMP characters.
SCALARS = (st.none() | st.booleans() | st.integers() | st.integers(min_value=2**63, max_value=2**200)
           | st.floats(allow_nan=True, allow_infinity=True)
           | st.sampled_from(["", " ", "panic", "PANIC", "+14155550100", "1234", "r1", "2026-01-05T09:00:00",
                              "America/New_York", "NaN", "Infinity", "-0", "1e400", "\x00", "\u202e", "😀"])
           | st.text(max_size=40))
JSON = st.recursive(SCALARS, lambda children: st.lists(children, max_size=4)
                    | st.dictionaries(st.text(max_size=15), children, max_size=6), max_leaves=20)


def _field_names(model: type[BaseModel]) -> list[str]:
    return list(model.model_fields) + ["default", "panic", "responder", "schedule", "lat", "lng"]


def near_valid(model: type[BaseModel]):
    """Objects using the model's own field names with awkward values: reaches the validators, not only the type check."""
    return st.dictionaries(st.sampled_from(_field_names(model)), JSON | SCALARS, max_size=8)


def deeply_nested(depth: int, shape: str):
    """`depth` levels of lists/objects as a Python value, built without recursion."""
    value: object = 0
    for level in range(depth):
        value = [value] if shape == "list" or (shape == "mixed" and level % 2) else {"a": value}
    return value


DEEP = st.builds(deeply_nested, st.sampled_from(DEPTHS), st.sampled_from(("list", "object", "mixed")))


def hostile(model: type[BaseModel]):
    """The model's own fields holding deep nesting, extreme dates or wrong types; or such a value as the body."""
    fields = _field_names(model)
    return (st.dictionaries(st.sampled_from(fields), DEEP | hostile_dates(), min_size=1, max_size=4)
            | wrong_types_for(fields) | DEEP)




FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck), database=None)


def _check_accept_or_reject(model: type[BaseModel], data) -> None:
    try:
        instance = model.model_validate(data)
    except ValidationError as error:
        details = schemas.validation_details(error)
        assert details and all(isinstance(d["field"], str) and d["field"] and isinstance(d["problem"], str)
                               and d["problem"] for d in details), details
        json.dumps(details)
        return
    dumped = instance.model_dump(mode="json")
    json.dumps(dumped, allow_nan=False)  # raises on NaN/Infinity
    assert model.model_validate(dumped) == instance


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
@FUZZ
@given(data=st.data())
def test_any_json_is_accepted_cleanly_or_rejected_with_field_details(model, data):
    _check_accept_or_reject(model, data.draw(JSON | near_valid(model) | hostile(model)))


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
@pytest.mark.parametrize("depth", DEPTHS)
def test_deep_nesting_as_json_text_is_only_ever_a_validation_error(model, depth):
    """pydantic's own JSON parser (model_validate_json, what the inbound-SMS Lambda uses) on nesting past any
    recursion limit: a ValidationError, never a RecursionError."""
    for shape in ("list", "object", "mixed"):
        for text in (nest(depth, shape), '{"' + next(iter(model.model_fields)) + '": ' + nest(depth, shape) + "}"):
            with pytest.raises(ValidationError):
                model.model_validate_json(text)


@FUZZ
@given(when=hostile_dates(), where=st.sampled_from(("handoff", "start", "end")))
def test_extreme_dates_in_a_schedule_are_a_model_or_service_validation_error(when, where):
    """The schedule model takes times as strings (services/admin.py parses them, as 422): the model must accept or
    refuse them cleanly whatever they are; tests/fuzz/test_hostile_input.py sends them through the API."""
    body = {"time_zone": "UTC", "rotation": {"responders": ["r1"], "shift_hours": 24, "handoff": "2026-01-05T09:00:00"},
            "overrides": [{"responder": "r1", "start": "2026-01-05T09:00:00Z", "end": "2026-01-06T09:00:00Z"}]}
    if where == "handoff":
        body["rotation"]["handoff"] = when
    else:
        body["overrides"][0][where] = when
    _check_accept_or_reject(schemas.SchedulePut, body)


@FUZZ
@given(text=st.text(max_size=300) | st.binary(max_size=300).map(lambda b: b.decode("latin-1"))
       | st.builds(nest, st.sampled_from(DEPTHS), st.sampled_from(("list", "object", "mixed")))
       | st.builds(lambda depth: '{"originationNumber": "+15550100", "messageBody": ' + nest(depth, "object") + "}",
                   st.sampled_from(DEPTHS)))
def test_inbound_sms_parsing_of_any_text_only_raises_validation_errors(text):
    """The inbound-SMS Lambda validates raw SNS message text: only a ValidationError may come out (it is dropped)."""
    try:
        schemas.InboundSms.model_validate_json(text)
    except ValidationError:
        pass


def _body_operations() -> list[tuple[str, str, str]]:
    found = []
    for path, methods in DOCUMENT["paths"].items():
        for method, operation in methods.items():
            body = operation.get("requestBody")
            if body:
                ref = body["content"]["application/json"]["schema"]["$ref"]
                found.append((method.upper(), path, ref.rsplit("/", 1)[-1]))
    return found


@pytest.mark.parametrize("method, path, model_name", _body_operations(), ids=lambda v: str(v))
@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck), database=None)
@given(data=st.data())
def test_every_body_the_document_allows_is_accepted(method, path, model_name, data):
    operation = API[path][method]
    case = data.draw(operation.as_strategy(generation_mode=schemathesis.GenerationMode.POSITIVE))
    published = DOCUMENT["components"]["schemas"][model_name]
    for first, second in published.get("x-distinct", []):
        # Two fields the document says must differ (a rule JSON Schema cannot express): a client following the
        # document never sends them equal.
        assume(case.body.get(first) is None or case.body.get(first) != case.body.get(second))
    if model_name == "DispatchWebhook":  # not a pydantic model: the provider's event, parsed by the adapter
        from chalicelib.adapters.dispatch import InvalidWebhookBody, _parse_webhook_body

        try:
            _parse_webhook_body(json.dumps(case.body).encode())
        except InvalidWebhookBody as error:
            raise AssertionError(f"the webhook refuses an event its published schema allows: {case.body!r}: "
                                 f"{error}") from None
        return
    model = getattr(schemas, model_name)
    try:
        model.model_validate(case.body)
    except ValidationError as error:
        raise AssertionError(f"{model_name} refuses a body its published schema allows: {case.body!r}: "
                             f"{schemas.validation_details(error)}") from None


def test_every_request_model_is_documented():
    documented = {name for _, _, name in _body_operations()}
    top_level = {m.__name__ for m in MODELS} - {"Strict", "InboundSms", "Location"} - {
        "TargetRef", "TierPut", "RotationPut", "OverridePut"}
    assert top_level <= documented | {"Location"}, top_level - documented
    assert "Location" in documented  # POST .../locations
