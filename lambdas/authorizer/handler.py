"""API Gateway REQUEST authoriser of the browser routes: a signed-in person, or no entry.

A request is allowed when it carries a Cognito **ID token** of this deployment's user pool,
either in the ``ltv_session`` cookie (HttpOnly, set by ``/auth/callback``: page navigations,
links from Slack, the report iframe, the form's ``fetch``) or as ``Authorization: Bearer
<token>`` (a script holding a token of the same pool). The token is verified with PyJWT
against the pool's JWKS (cached per container for six hours, fetched again for an unknown key
id at most every 30 s, PyJWT's cooldown, so made-up key ids cannot flood the pool): signature
(RS256 only), ``iss`` = the pool, ``aud`` = the app client, ``token_use`` = ``id``, ``exp``
and ``iat`` present, 60 s clock leeway.

A state-changing request (not GET/HEAD) authenticated by the cookie must also come from a page
of this API: its ``Origin`` must be this host (the cookie is ``SameSite=Lax`` too), so another
site cannot submit a forecast in a signed-in person's name.

Allowed: a policy for exactly the method asked (results are not cached: a token that expires is
refused on the next request) and the context the API Lambda reads as the requester
(``requestContext.authorizer.email`` / ``username``). No token, or a bad one: ``Unauthorized``,
which API Gateway answers with 401 (the sign-in page, infra/api.py); a foreign origin: a Deny
policy (403).

Environment: ``LTV_AUTH_ISSUER`` (the pool's issuer URL), ``LTV_AUTH_CLIENT_ID``, optionally
``LTV_AUTH_JWKS_URL`` (default ``<issuer>/.well-known/jwks.json``).
"""

from __future__ import annotations

import os
import threading
from typing import Any
from urllib.parse import urlsplit

import jwt
from aws_lambda_powertools import Logger

__all__ = ["SESSION_COOKIE", "TokenRejected", "handler", "verify"]

logger = Logger(service="ltv-authorizer")

SESSION_COOKIE = "ltv_session"
LEEWAY_SECONDS = 60
MAX_TOKEN_CHARS = 8192
_SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
_clients: dict[str, jwt.PyJWKClient] = {}
_clients_lock = threading.Lock()


class TokenRejected(Exception):
    """The token is missing, malformed, expired, or not one of this pool's and client's."""


def _jwks(url: str) -> jwt.PyJWKClient:
    with _clients_lock:
        client = _clients.get(url)
        if client is None:  # one per container: the keys are cached between requests
            client = _clients[url] = jwt.PyJWKClient(url, cache_keys=True, lifespan=6 * 3600, timeout=5)
        return client


def verify(token: str, *, issuer: str, client_id: str, jwks_url: str | None = None) -> dict[str, Any]:
    """The claims of a valid ID token of ``issuer``'s pool for ``client_id``; else :class:`TokenRejected`."""
    if not token or len(token) > MAX_TOKEN_CHARS:
        raise TokenRejected("no token" if not token else "token too long")
    try:
        key = _jwks(jwks_url or f"{issuer.rstrip('/')}/.well-known/jwks.json").get_signing_key_from_jwt(token)
        claims = jwt.decode(token, key.key, algorithms=["RS256"], audience=client_id, issuer=issuer,
                            leeway=LEEWAY_SECONDS,
                            options={"require": ["exp", "iat", "iss", "aud", "token_use"]})
    except jwt.PyJWKClientConnectionError as error:
        # The pool's keys could not be fetched: nobody can be verified. Refused all the same
        # (never allowed unverified), and logged as an error for the alarm.
        logger.error("cannot fetch the user pool's keys", extra={"error": str(error)})
        raise TokenRejected("keys unavailable") from None
    except (jwt.PyJWTError, ValueError) as error:
        raise TokenRejected(type(error).__name__) from None
    if claims.get("token_use") != "id":
        raise TokenRejected("not an ID token")
    return claims


def _headers(event: dict[str, Any]) -> dict[str, str]:
    return {str(k).lower(): str(v) for k, v in (event.get("headers") or {}).items() if v is not None}


def _cookie(header: str | None, name: str) -> str | None:
    """The first cookie ``name`` of a ``Cookie`` header (a hand parser: SimpleCookie stops at
    the first cookie it cannot read, which another application on a shared domain may set)."""
    for pair in (header or "").split(";"):
        key, sep, value = pair.strip().partition("=")
        if sep and key == name:
            return value.strip().strip('"')
    return None


def _same_origin(headers: dict[str, str], event: dict[str, Any]) -> bool:
    origin = headers.get("origin")
    host = headers.get("host") or (event.get("requestContext") or {}).get("domainName")
    if not origin or not host or origin == "null":
        return False
    parts = urlsplit(origin)
    return parts.scheme == "https" and parts.netloc.lower() == host.lower()


def _policy(principal: str, effect: str, resource: str, context: dict[str, str] | None = None) -> dict:
    answer: dict[str, Any] = {
        "principalId": principal,
        "policyDocument": {"Version": "2012-10-17", "Statement": [
            {"Action": "execute-api:Invoke", "Effect": effect, "Resource": resource}]},
    }
    if context:
        answer["context"] = context
    return answer


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    headers = _headers(event)
    bearer = headers.get("authorization", "")
    from_cookie = not bearer.lower().startswith("bearer ")
    token = _cookie(headers.get("cookie"), SESSION_COOKIE) if from_cookie else bearer[7:].strip()
    try:
        claims = verify(token or "", issuer=os.environ["LTV_AUTH_ISSUER"],
                        client_id=os.environ["LTV_AUTH_CLIENT_ID"],
                        jwks_url=os.environ.get("LTV_AUTH_JWKS_URL") or None)
    except TokenRejected as error:
        logger.info("request refused", extra={"reason": str(error), "path": event.get("path")})
        raise Exception("Unauthorized") from None  # API Gateway's exact word for a 401
    username = str(claims.get("cognito:username") or claims.get("sub"))[:256]
    method = str(event.get("httpMethod") or "").upper()
    if from_cookie and method not in _SAFE_METHODS and not _same_origin(headers, event):
        logger.warning("cross-origin request refused", extra={"user": username, "method": method,
                                                              "origin": headers.get("origin")})
        return _policy(username, "Deny", event["methodArn"])
    identity = {"username": username, "sub": str(claims.get("sub", ""))[:64]}
    if claims.get("email"):
        identity["email"] = str(claims["email"])[:256]
    return _policy(username, "Allow", event["methodArn"], identity)
