"""Bearer tokens: who is calling and in which role.

Locally tokens are HS256-signed with TOKEN_SECRET (minted by the dev server). In production the platform's identity
provider signs them (RS256) and TOKEN_JWKS_URL points at its key set; PyJWT's key client caches the keys between
invocations of a warm Lambda.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from chalicelib.config import settings
from chalicelib.domain.errors import Forbidden, Unauthenticated

ROLES = ("shopper", "responder", "reviewer", "admin")


@dataclass(frozen=True)
class Principal:
    role: str
    sub: str


def issue_token(role: str, sub: str, secret: str, ttl_s: int = 12 * 3600) -> str:
    import jwt  # deferred (~45 ms with cryptography): the event-driven Lambdas never verify tokens

    now = int(time.time())
    cfg = settings()
    claims = {"sub": sub, "role": role, "iat": now, "exp": now + ttl_s, "iss": cfg.token_issuer, "aud": cfg.token_audience}
    return jwt.encode(claims, secret, algorithm="HS256")


@lru_cache(maxsize=1)
def _jwks_client(url: str) -> Any:
    import jwt

    return jwt.PyJWKClient(url, cache_keys=True)


def verify_token(authorization: str | None) -> Principal:
    if not authorization or not authorization.startswith("Bearer "):
        raise Unauthenticated("missing bearer token")
    import jwt

    token = authorization.removeprefix("Bearer ").strip()
    cfg = settings()
    try:
        if cfg.token_jwks_url:
            key = _jwks_client(cfg.token_jwks_url).get_signing_key_from_jwt(token).key
            algorithms = ["RS256", "ES256"]
        elif cfg.token_secret:
            key, algorithms = cfg.token_secret, ["HS256"]
        else:
            raise Unauthenticated("no token verifier is configured")
        claims = jwt.decode(
            token, key, algorithms=algorithms, audience=cfg.token_audience, issuer=cfg.token_issuer,
            options={"require": ["exp", "sub", "role"]},
        )
    except jwt.ExpiredSignatureError as exc:
        raise Unauthenticated("token expired") from exc
    except jwt.PyJWTError as exc:
        raise Unauthenticated("invalid token") from exc
    if claims["role"] not in ROLES or not isinstance(claims["sub"], str) or not claims["sub"]:
        raise Unauthenticated("token has no valid role or subject")
    return Principal(role=claims["role"], sub=claims["sub"])


def require_role(principal: Principal, *roles: str) -> None:
    if principal.role not in roles:
        raise Forbidden(f"role {principal.role} may not do this", extra={"allowed_roles": list(roles)})
