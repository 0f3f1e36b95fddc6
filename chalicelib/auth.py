"""Bearer tokens: who is calling and in which role.

On AWS the platform's identity provider signs tokens (RS256 or ES256) and TOKEN_JWKS_URL points at its key set. Only
the embedded local stack, which sets LOCAL_STACK=1 (local/stack.py; the deployment template never does), accepts
tokens HS256-signed with the shared TOKEN_SECRET that its dev server mints (local/tokens.py). Anywhere else, without
TOKEN_JWKS_URL, no token is accepted: a misconfigured deployment refuses every request (503) rather than trusting a
shared secret.

The key set is fetched with a short timeout (API Gateway gives up after 29 s; a shopper in danger is waiting) and
cached for KEYS_LIFESPAN_S; a token naming a key the cached set lacks triggers at most one re-fetch per
REFRESH_COOLDOWN_S (a rotated key), so unknown key ids cannot make every request call the identity provider. An
identity provider that cannot be reached, answers an error, or serves an unusable key set is an outage: 503
(`Unavailable`, retry), never 401, which clients treat as "log in again".
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from chalicelib.config import settings
from chalicelib.domain.errors import Forbidden, Unauthenticated, Unavailable

ROLES = ("shopper", "responder", "reviewer", "admin")
# What the identity provider may sign with. Each key verifies only the algorithm of its own type (RSA: RS256, EC
# P-256: ES256), whatever the token's header claims.
ASYMMETRIC_ALGORITHMS = ("RS256", "ES256")
FETCH_TIMEOUT_S = 3
KEYS_LIFESPAN_S = 300
REFRESH_COOLDOWN_S = 10
LOCAL_STACK_ENV = "LOCAL_STACK"

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Principal:
    role: str
    sub: str


def on_local_stack() -> bool:
    """True only in the embedded local stack (local/stack.py sets LOCAL_STACK=1; no deployment does)."""
    return os.environ.get(LOCAL_STACK_ENV) == "1"


class KeySet:
    """The identity provider's signing keys, fetched from its JWKS URL and cached for a bounded time."""

    def __init__(self, url: str, timeout_s: float | None = None, lifespan_s: float | None = None,
                 refresh_cooldown_s: float | None = None):
        import jwt

        timeout_s = FETCH_TIMEOUT_S if timeout_s is None else timeout_s
        lifespan_s = KEYS_LIFESPAN_S if lifespan_s is None else lifespan_s

        class Client(jwt.PyJWKClient):
            def fetch_data(inner) -> Any:  # noqa: N805 - records when the identity provider was last asked
                data = super().fetch_data()
                self._last_fetch = time.monotonic()
                return data

        # cache_keys=False: PyJWT's per-kid cache never expires, so a revoked key would stay trusted in a warm Lambda.
        # The whole key set is cached instead, for lifespan_s. Re-fetches for unknown kids are rate-limited below.
        self._client = Client(url, cache_keys=False, cache_jwk_set=True, lifespan=lifespan_s, timeout=timeout_s,
                              cooldown_duration=0)
        self._refresh_cooldown_s = REFRESH_COOLDOWN_S if refresh_cooldown_s is None else refresh_cooldown_s
        self._last_fetch: float | None = None
        self._lock = threading.Lock()

    def key_for(self, kid: Any) -> Any:
        """The PyJWK with this kid. Unavailable if the key set cannot be had; Unauthenticated if it lacks the kid."""
        keys = self._signing_keys(refresh=False)
        key = self._match(keys, kid)
        if key is None and self._may_refresh():
            key = self._match(self._signing_keys(refresh=True), kid)
        if key is None:
            raise Unauthenticated("token signed with an unknown key")
        return key

    @staticmethod
    def _match(keys: list[Any], kid: Any) -> Any:
        return next((key for key in keys if kid is not None and key.key_id == kid), None)

    def _may_refresh(self) -> bool:
        """At most one fetch per cooldown for unknown kids: counting every fetch (first, expiry, refresh)."""
        with self._lock:
            now = time.monotonic()
            if self._last_fetch is not None and now - self._last_fetch < self._refresh_cooldown_s:
                return False
            self._last_fetch = now
            return True

    def _signing_keys(self, refresh: bool) -> list[Any]:
        import jwt

        try:
            return self._client.get_signing_keys(refresh=refresh)
        except jwt.PyJWKClientConnectionError as exc:  # unreachable, timed out, or an HTTP error status
            log.warning("identity provider key fetch failed", extra={"error": str(exc)})
            raise Unavailable("the identity provider's keys could not be fetched; retry") from exc
        except (jwt.PyJWTError, ValueError) as exc:  # not JSON, no usable signing keys
            log.warning("identity provider served an unusable key set", extra={"error": str(exc)})
            raise Unavailable("the identity provider's key set is unusable; retry") from exc


@lru_cache(maxsize=4)
def key_set(url: str) -> KeySet:
    """One per process and URL, so a warm Lambda reuses the cached keys."""
    return KeySet(url)


def _claims_from_identity_provider(token: str, url: str, audience: str, issuer: str) -> dict[str, Any]:
    import jwt

    header = jwt.get_unverified_header(token)  # DecodeError: not a JWT -> 401 below
    algorithm = header.get("alg")
    if algorithm not in ASYMMETRIC_ALGORITHMS:
        raise Unauthenticated("token algorithm not accepted")
    key = key_set(url).key_for(header.get("kid"))
    if key.algorithm_name != algorithm:
        # An ES256 header on an RSA key's kid (or the reverse): PyJWT would raise TypeError deep in the key code.
        raise Unauthenticated("token algorithm does not match its key")
    return jwt.decode(token, key.key, algorithms=[algorithm], audience=audience, issuer=issuer,
                      options={"require": ["exp", "sub", "role"]})


def _claims_from_shared_secret(token: str, secret: str, audience: str, issuer: str) -> dict[str, Any]:
    import jwt

    return jwt.decode(token, secret, algorithms=["HS256"], audience=audience, issuer=issuer,
                      options={"require": ["exp", "sub", "role"]})


def verify_token(authorization: str | None) -> Principal:
    if not authorization or not authorization.startswith("Bearer "):
        raise Unauthenticated("missing bearer token")
    import jwt  # deferred (~45 ms with cryptography): the event-driven Lambdas never verify tokens

    token = authorization.removeprefix("Bearer ").strip()
    cfg = settings()
    try:
        if cfg.token_jwks_url:
            claims = _claims_from_identity_provider(token, cfg.token_jwks_url, cfg.token_audience, cfg.token_issuer)
        elif cfg.token_secret and on_local_stack():
            claims = _claims_from_shared_secret(token, cfg.token_secret, cfg.token_audience, cfg.token_issuer)
        else:
            log.error("no token verifier: TOKEN_JWKS_URL is unset (a shared TOKEN_SECRET is accepted only with "
                      "LOCAL_STACK=1, on the local stack)")
            raise Unavailable("token verification is not configured")
    except jwt.ExpiredSignatureError as exc:
        raise Unauthenticated("token expired") from exc
    except (jwt.PyJWTError, TypeError, ValueError) as exc:  # any malformed token or key mismatch: never a 500
        raise Unauthenticated("invalid token") from exc
    if claims.get("role") not in ROLES or not isinstance(claims.get("sub"), str) or not claims["sub"]:
        raise Unauthenticated("token has no valid role or subject")
    return Principal(role=claims["role"], sub=claims["sub"])


def require_role(principal: Principal, *roles: str) -> None:
    if principal.role not in roles:
        raise Forbidden(f"role {principal.role} may not do this", extra={"allowed_roles": list(roles)})
