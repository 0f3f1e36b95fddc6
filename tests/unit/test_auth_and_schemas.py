"""Tokens and request validation: pure, no AWS."""

from __future__ import annotations

import time

import jwt
import pytest
from pydantic import ValidationError

from chalicelib import auth
from chalicelib.config import settings
from chalicelib.domain.errors import Forbidden, Unauthenticated
from chalicelib.schemas import (
    IncidentCreate,
    PolicyPut,
    RoutingPut,
    TargetRef,
    validation_details,
)
from infra.environment import RESOURCES
from local.tokens import issue_token


@pytest.fixture(autouse=True)
def token_env(monkeypatch):
    for name in RESOURCES:  # every resource setting, from the one mapping
        monkeypatch.setenv(name, "unused")
    monkeypatch.setenv("TOKEN_SECRET", "unit-secret-key-of-32-bytes-or-more")
    monkeypatch.setenv("LOCAL_STACK", "1")
    monkeypatch.delenv("TOKEN_JWKS_URL", raising=False)
    settings.cache_clear()
    yield
    settings.cache_clear()


def test_issued_tokens_verify_with_role_and_subject():
    token = issue_token("responder", "r1", "unit-secret-key-of-32-bytes-or-more")
    assert auth.verify_token(f"Bearer {token}") == auth.Principal("responder", "r1")


@pytest.mark.parametrize("header", [None, "", "Bearer ", "Token abc", "Bearer abc.def.ghi"])
def test_malformed_headers_are_unauthenticated(header):
    with pytest.raises(Unauthenticated):
        auth.verify_token(header)


def test_expired_wrong_key_wrong_audience_and_unknown_role_are_rejected():
    now = int(time.time())
    base = {"sub": "s", "role": "shopper", "iss": "trust-safety-local", "aud": "trust-safety-api", "iat": now}
    bad = [
        jwt.encode({**base, "exp": now - 1}, "unit-secret-key-of-32-bytes-or-more", algorithm="HS256"),
        jwt.encode({**base, "exp": now + 60}, "other-secret-key-of-32-bytes-or-more-xx", algorithm="HS256"),
        jwt.encode({**base, "exp": now + 60, "aud": "someone-else"}, "unit-secret-key-of-32-bytes-or-more", algorithm="HS256"),
        jwt.encode({**base, "exp": now + 60, "role": "root"}, "unit-secret-key-of-32-bytes-or-more", algorithm="HS256"),
        jwt.encode({**base, "exp": now + 60}, "unit-secret-key-of-32-bytes-or-more", algorithm="HS512"),
    ]
    for token in bad:
        with pytest.raises(Unauthenticated):
            auth.verify_token(f"Bearer {token}")


def test_role_check():
    auth.require_role(auth.Principal("admin", "a"), "admin")
    with pytest.raises(Forbidden):
        auth.require_role(auth.Principal("shopper", "a"), "admin", "reviewer")


def test_life_safety_kinds_need_a_location_others_do_not():
    with pytest.raises(ValidationError) as error:
        IncidentCreate(kind="medical")
    assert validation_details(error.value) == [{"field": "location", "problem": "is required for this kind"}]
    assert IncidentCreate(kind="fraud").location is None


def test_targets_name_exactly_one_of_responder_or_schedule():
    with pytest.raises(ValidationError):
        TargetRef()
    with pytest.raises(ValidationError):
        TargetRef(responder="a", schedule="b")
    with pytest.raises(ValidationError) as error:
        PolicyPut(tiers=[{"targets": [{"responder": "a"}], "timeout_s": 0}])
    assert validation_details(error.value)[0]["field"] == "tiers.0.timeout_s"


def test_routing_accepts_known_kinds_only():
    assert RoutingPut(default="p", panic="q").routes() == {"panic": "q", "default": "p"}
    with pytest.raises(ValidationError) as error:
        RoutingPut(default="p", teleport="q")
    assert validation_details(error.value) == [{"field": "teleport", "problem": "is not a known kind"}]
