"""Token issuing for the local stack only: the dev server's `POST /dev/tokens` mints HS256 tokens signed with the
stack's TOKEN_SECRET. Production tokens come from the identity provider; the Lambdas only verify
(chalicelib/auth.py), and they accept these shared-secret tokens only where LOCAL_STACK=1."""

from __future__ import annotations

import time

from chalicelib.config import settings


def issue_token(role: str, sub: str, secret: str, ttl_s: int = 12 * 3600) -> str:
    import jwt

    now = int(time.time())
    cfg = settings()
    claims = {"sub": sub, "role": role, "iat": now, "exp": now + ttl_s, "iss": cfg.token_issuer, "aud": cfg.token_audience}
    return jwt.encode(claims, secret, algorithm="HS256")
