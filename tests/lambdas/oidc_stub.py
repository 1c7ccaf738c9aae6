"""A local stand-in for the Cognito user pool's OAuth endpoints (127.0.0.1 only).

``/.well-known/jwks.json`` serves the public half of an RSA key generated per test;
``/oauth2/token`` redeems an authorisation code for tokens, as Cognito does for a public client
with PKCE: the code must be one ``authorize()`` issued, for this client and redirect URI, and the
``code_verifier`` must hash (S256) to the challenge the code was issued against; a code is
redeemed once. ``mint()`` signs tokens with the same key (or another), for the authoriser tests.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

REGION = "us-east-1"
POOL_ID = f"{REGION}_TeStPoOl1"
ISSUER = f"https://cognito-idp.{REGION}.amazonaws.com/{POOL_ID}"
CLIENT_ID = "4f1testclient0000000000000"


def new_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


class OidcStub:
    def __init__(self, *, client_id: str = CLIENT_ID, redirect_uri: str = "", issuer: str = ISSUER) -> None:
        self.key = new_key()
        self.kid = "key-1"
        self.client_id, self.redirect_uri, self.issuer = client_id, redirect_uri, issuer
        self.codes: dict[str, dict[str, Any]] = {}
        self.token_requests: list[dict[str, str]] = []
        self.jwks_requests = 0
        self.extra_keys: list[tuple[str, rsa.RSAPrivateKey]] = []
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def _send(self, status: int, payload: dict) -> None:
                body = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                if self.path != "/.well-known/jwks.json":
                    return self._send(404, {"error": "not_found"})
                stub.jwks_requests += 1
                return self._send(200, stub.jwks())

            def do_POST(self) -> None:  # noqa: N802
                if self.path != "/oauth2/token":
                    return self._send(404, {"error": "not_found"})
                length = int(self.headers.get("Content-Length", 0))
                form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
                stub.token_requests.append(form)
                if self.headers.get("Content-Type") != "application/x-www-form-urlencoded":
                    return self._send(400, {"error": "invalid_request"})
                return self._send(*stub.redeem(form))

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.02},
                                       daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}"

    @property
    def jwks_url(self) -> str:
        return f"{self.url}/.well-known/jwks.json"

    def jwks(self) -> dict:
        keys = []
        for kid, key in [(self.kid, self.key), *self.extra_keys]:
            jwk = jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key(), as_dict=True)
            keys.append({**jwk, "kid": kid, "alg": "RS256", "use": "sig"})
        return {"keys": keys}

    def claims(self, **overrides: Any) -> dict[str, Any]:
        now = int(time.time())
        claims = {"sub": "5b1c-ana", "aud": self.client_id, "iss": self.issuer, "token_use": "id",
                  "auth_time": now, "iat": now, "exp": now + 3600, "email": "ana@example.com",
                  "email_verified": True, "cognito:username": "okta_ana@example.com"}
        claims.update(overrides)
        return {k: v for k, v in claims.items() if v is not None}

    def mint(self, *, key: rsa.RSAPrivateKey | None = None, kid: str | None = None, **overrides: Any) -> str:
        return jwt.encode(self.claims(**overrides), key or self.key, algorithm="RS256",
                          headers={"kid": kid or self.kid})

    def authorize(self, *, client_id: str, redirect_uri: str, code_challenge: str,
                  code_challenge_method: str, **claims: Any) -> str:
        """What the hosted UI does once the person signed in: a one-time code bound to the challenge."""
        assert code_challenge_method == "S256"
        code = secrets.token_urlsafe(16)
        self.codes[code] = {"client_id": client_id, "redirect_uri": redirect_uri,
                            "challenge": code_challenge, "claims": claims}
        return code

    def redeem(self, form: dict[str, str]) -> tuple[int, dict]:
        issued = self.codes.pop(form.get("code", ""), None)
        if form.get("grant_type") != "authorization_code" or issued is None:
            return 400, {"error": "invalid_grant"}
        if form.get("client_id") != issued["client_id"] or form.get("redirect_uri") != issued["redirect_uri"]:
            return 400, {"error": "invalid_grant"}
        verifier = form.get("code_verifier", "")
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
        if not verifier or challenge != issued["challenge"]:
            return 400, {"error": "invalid_grant"}
        return 200, {"id_token": self.mint(**issued["claims"]), "access_token": self.mint(token_use="access"),
                     "refresh_token": "opaque-refresh", "token_type": "Bearer", "expires_in": 3600}

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
