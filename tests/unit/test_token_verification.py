"""Production token verification (chalicelib/auth.py) against a local JWKS endpoint: RS256 and ES256, key/algorithm
mismatches, key fetch outages (503, not 401), timeouts, key expiry and bounded re-fetching, and shared-secret tokens
accepted only on the local stack."""

from __future__ import annotations

import socket
import time

import pytest

from chalicelib import auth
from chalicelib.config import settings
from chalicelib.domain.errors import Unauthenticated, Unavailable
from infra.environment import RESOURCES
from local.tokens import issue_token
from tests.support.jwks import AUDIENCE, ISSUER, JwksServer, mint, new_key

SECRET = "unit-secret-key-of-32-bytes-or-more"


@pytest.fixture
def base_env(monkeypatch):
    for name in RESOURCES:  # every resource setting, from the one mapping
        monkeypatch.setenv(name, "unused")
    monkeypatch.setenv("TOKEN_ISSUER", ISSUER)
    monkeypatch.setenv("TOKEN_AUDIENCE", AUDIENCE)
    for name in ("TOKEN_SECRET", "TOKEN_JWKS_URL", "LOCAL_STACK"):
        monkeypatch.delenv(name, raising=False)
    settings.cache_clear()
    auth.key_set.cache_clear()
    yield monkeypatch
    settings.cache_clear()
    auth.key_set.cache_clear()


@pytest.fixture
def idp(base_env):
    server = JwksServer(keys=[new_key("RS256"), new_key("ES256")]).start()
    base_env.setenv("TOKEN_JWKS_URL", server.url)
    settings.cache_clear()
    yield server
    server.stop()


def bearer(token: str) -> str:
    return f"Bearer {token}"


def test_rs256_and_es256_tokens_verify(idp):
    rsa, ec = idp.keys
    assert auth.verify_token(bearer(mint(rsa, "responder", "r1"))) == auth.Principal("responder", "r1")
    assert auth.verify_token(bearer(mint(ec, "admin", "a1"))) == auth.Principal("admin", "a1")
    assert idp.fetches == 1, "the key set is cached between requests"


def test_an_algorithm_that_does_not_match_the_key_is_401_not_500(idp):
    rsa, ec = idp.keys
    forged = [
        mint(ec, algorithm="ES256", kid=rsa.kid),  # ES256 header on the RSA key's kid (PyJWT: TypeError)
        mint(rsa, algorithm="RS256", kid=ec.kid),  # RS256 header on the EC key's kid
        mint(rsa, algorithm="PS256"),  # not an accepted algorithm
    ]
    # HS256 signed with the RSA public key as the secret: the classic algorithm confusion.
    from cryptography.hazmat.primitives import serialization

    pem = rsa.private_key.public_key().public_bytes(serialization.Encoding.PEM,
                                                    serialization.PublicFormat.SubjectPublicKeyInfo)
    claims = {"sub": "s", "role": "admin", "exp": int(time.time()) + 60, "iss": ISSUER, "aud": AUDIENCE}
    forged.append(_hs256_with_key_bytes(claims, pem, rsa.kid))
    for token in forged:
        with pytest.raises(Unauthenticated):
            auth.verify_token(bearer(token))


def _hs256_with_key_bytes(claims: dict, key: bytes, kid: str) -> str:
    """PyJWT refuses to HMAC-sign with a PEM key, so build the token by hand."""
    import base64
    import hashlib
    import hmac
    import json

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    signing_input = f"{b64(json.dumps({'alg': 'HS256', 'typ': 'JWT', 'kid': kid}).encode())}.{b64(json.dumps(claims).encode())}"
    return f"{signing_input}.{b64(hmac.new(key, signing_input.encode(), hashlib.sha256).digest())}"


def test_wrong_audience_issuer_expiry_and_unknown_role_are_401(idp):
    rsa = idp.keys[0]
    for token in (mint(rsa, aud="someone-else"), mint(rsa, iss="https://evil.test/"), mint(rsa, ttl_s=-10),
                  mint(rsa, role="root"), "abc.def.ghi"):
        with pytest.raises(Unauthenticated):
            auth.verify_token(bearer(token))


def test_unknown_kid_is_401_and_refetches_at_most_once_per_cooldown(idp, monkeypatch):
    monkeypatch.setattr(auth, "REFRESH_COOLDOWN_S", 0.2)
    rsa = idp.keys[0]
    auth.verify_token(bearer(mint(rsa)))
    with pytest.raises(Unauthenticated):  # right after a fetch: no re-fetch
        auth.verify_token(bearer(mint(rsa, kid="no-such-key")))
    assert idp.fetches == 1
    time.sleep(0.25)
    for _ in range(20):
        with pytest.raises(Unauthenticated):
            auth.verify_token(bearer(mint(rsa, kid="no-such-key")))
    assert idp.fetches == 2, "twenty unknown kids made one re-fetch, not twenty"


def test_a_rotated_key_is_picked_up_by_the_refetch(idp, monkeypatch):
    monkeypatch.setattr(auth, "REFRESH_COOLDOWN_S", 0.2)
    auth.verify_token(bearer(mint(idp.keys[0])))
    rotated = new_key("RS256")
    idp.keys.append(rotated)
    time.sleep(0.25)
    assert auth.verify_token(bearer(mint(rotated, "reviewer", "v1"))) == auth.Principal("reviewer", "v1")


def test_cached_keys_expire(idp, monkeypatch):
    monkeypatch.setattr(auth, "KEYS_LIFESPAN_S", 0.3)
    monkeypatch.setattr(auth, "REFRESH_COOLDOWN_S", 3600)  # only expiry may bring the change in
    auth.key_set.cache_clear()
    revoked = idp.keys[0]
    auth.verify_token(bearer(mint(revoked)))
    idp.keys.remove(revoked)
    auth.verify_token(bearer(mint(revoked)))  # still cached
    time.sleep(0.4)
    with pytest.raises(Unauthenticated):
        auth.verify_token(bearer(mint(revoked)))
    assert idp.fetches == 2


@pytest.mark.parametrize("mode", ["error", "garbage"])
def test_identity_provider_errors_are_503_not_401(idp, mode):
    idp.mode = mode
    with pytest.raises(Unavailable):
        auth.verify_token(bearer(mint(idp.keys[0])))


def test_identity_provider_unreachable_is_503(base_env):
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    base_env.setenv("TOKEN_JWKS_URL", f"http://127.0.0.1:{port}/jwks.json")
    settings.cache_clear()
    with pytest.raises(Unavailable):
        auth.verify_token(bearer(mint(new_key("RS256"))))


def test_key_fetch_times_out_quickly_with_503(idp, monkeypatch):
    assert auth.FETCH_TIMEOUT_S <= 5, "API Gateway answers 504 after 29 s; the key fetch must give up long before"
    monkeypatch.setattr(auth, "FETCH_TIMEOUT_S", 0.3)
    auth.key_set.cache_clear()
    idp.mode, idp.slow_s = "slow", 3
    started = time.monotonic()
    with pytest.raises(Unavailable):
        auth.verify_token(bearer(mint(idp.keys[0])))
    assert time.monotonic() - started < 2


def test_cached_keys_survive_a_later_outage(idp):
    rsa = idp.keys[0]
    auth.verify_token(bearer(mint(rsa)))
    idp.mode = "error"
    assert auth.verify_token(bearer(mint(rsa, sub="s2"))).sub == "s2"


def test_shared_secret_tokens_only_on_the_local_stack(base_env):
    base_env.setenv("TOKEN_SECRET", SECRET)
    settings.cache_clear()
    token = issue_token("shopper", "s1", SECRET)
    with pytest.raises(Unavailable):  # a deployment without TOKEN_JWKS_URL accepts nothing
        auth.verify_token(bearer(token))
    base_env.setenv("LOCAL_STACK", "1")
    assert auth.verify_token(bearer(token)) == auth.Principal("shopper", "s1")


def test_with_a_jwks_url_shared_secret_tokens_are_refused_even_locally(idp, base_env):
    base_env.setenv("TOKEN_SECRET", SECRET)
    base_env.setenv("LOCAL_STACK", "1")
    settings.cache_clear()
    with pytest.raises(Unauthenticated):
        auth.verify_token(bearer(issue_token("admin", "a", SECRET)))


def test_no_verifier_at_all_refuses_every_token(base_env):
    with pytest.raises(Unavailable):
        auth.verify_token(bearer(mint(new_key("RS256"))))


def test_token_issuing_is_not_part_of_the_deployed_code():
    assert not hasattr(auth, "issue_token")


def test_an_identity_provider_outage_answers_503_over_http(base_env):
    import json

    from chalice.test import Client

    import app as lambda_entry

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    base_env.setenv("TOKEN_JWKS_URL", f"http://127.0.0.1:{port}/jwks.json")
    settings.cache_clear()
    with Client(lambda_entry.app) as client:
        response = client.http.get("/v1/incidents/inc_1", headers={"Authorization": bearer(mint(new_key("ES256")))})
    assert response.status_code == 503
    assert json.loads(response.body)["error"]["code"] == "unavailable"
