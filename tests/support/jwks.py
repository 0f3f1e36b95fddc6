"""A local identity provider for tests: RSA and EC signing keys, a JWKS endpoint on a free port that can be made to
fail (HTTP 5xx, garbage, slowness, or gone), and a token minting function. Also used by the packaged-zip test."""

from __future__ import annotations

import json
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

ISSUER = "https://idp.test/"
AUDIENCE = "trust-safety-api"


def _rsa_key() -> Any:
    from cryptography.hazmat.primitives.asymmetric import rsa

    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _ec_key() -> Any:
    from cryptography.hazmat.primitives.asymmetric import ec

    return ec.generate_private_key(ec.SECP256R1())


@dataclass
class SigningKey:
    kid: str
    algorithm: str
    private_key: Any

    def public_jwk(self) -> dict:
        from jwt.algorithms import ECAlgorithm, RSAAlgorithm

        to_jwk = RSAAlgorithm.to_jwk if self.algorithm == "RS256" else ECAlgorithm.to_jwk
        jwk = to_jwk(self.private_key.public_key(), as_dict=True)
        return {**jwk, "kid": self.kid, "use": "sig", "alg": self.algorithm}


def new_key(algorithm: str = "RS256") -> SigningKey:
    private = _rsa_key() if algorithm == "RS256" else _ec_key()
    return SigningKey(kid=f"{algorithm.lower()}-{uuid.uuid4().hex[:8]}", algorithm=algorithm, private_key=private)


def mint(key: SigningKey, role: str = "shopper", sub: str = "s1", *, algorithm: str | None = None,
         kid: str | None = None, ttl_s: int = 600, **claims: Any) -> str:
    """A token signed by key; algorithm/kid override the header (to forge mismatches)."""
    import jwt

    now = int(time.time())
    body = {"sub": sub, "role": role, "iat": now, "exp": now + ttl_s, "iss": ISSUER, "aud": AUDIENCE, **claims}
    return jwt.encode(body, key.private_key, algorithm=algorithm or key.algorithm,
                      headers={"kid": kid if kid is not None else key.kid})


@dataclass
class JwksServer:
    """Serves {"keys": [...]} at http://127.0.0.1:PORT/jwks.json. `mode`: ok | error (503) | garbage | slow."""

    keys: list[SigningKey] = field(default_factory=list)
    mode: str = "ok"
    slow_s: float = 5.0
    fetches: int = 0

    def start(self) -> JwksServer:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_GET(self) -> None:
                server.fetches += 1
                if server.mode == "slow":
                    time.sleep(server.slow_s)
                if server.mode == "error":
                    self.send_response(503)
                    self.end_headers()
                    return
                body = (b"<html>maintenance</html>" if server.mode == "garbage"
                        else json.dumps({"keys": [k.public_jwk() for k in server.keys]}).encode())
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                try:
                    self.wfile.write(body)
                except OSError:  # the client gave up (timeout test)
                    pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/jwks.json"

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
