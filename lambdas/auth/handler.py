"""Sign-in for the browser routes: Cognito's hosted UI, authorisation code with PKCE.

``GET /auth/login?next=PATH``
    A fresh PKCE verifier (S256) and ``state``, kept for ten minutes in an HttpOnly cookie
    scoped to ``/auth``, and a 302 to the hosted UI's ``/oauth2/authorize`` (straight to the
    company's identity provider when one is configured).
``GET /auth/callback?code=…&state=…``
    ``state`` must match the cookie's; the code is exchanged, with the verifier, at the pool's
    ``/oauth2/token`` (server to server: no token passes through the browser's JavaScript); the
    ID token goes into the ``ltv_session`` cookie (HttpOnly, Secure, SameSite=Lax) for as long as
    it is valid, and the browser returns to ``next``.
``GET /auth/logout``
    Clears the session cookie and signs out of the hosted UI, which returns to
    ``/auth/signed-out``, a page saying so.

These four are the only routes without an authoriser: they read nothing of the store and this
function's role may write its own logs and nothing else. Which person signed in is verified on
every later request by the authoriser (lambdas/authorizer), not here.

Environment: ``LTV_AUTH_DOMAIN`` (``https://<prefix>.auth.<region>.amazoncognito.com``),
``LTV_AUTH_CLIENT_ID``, ``LTV_AUTH_REDIRECT_URI`` (the registered callback),
``LTV_AUTH_LOGOUT_URI`` (the registered sign-out URL), ``LTV_AUTH_IDENTITY_PROVIDER``
(optional), ``LTV_AUTH_SESSION_SECONDS``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import html
import json
import os
import re
import secrets
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import urlencode

from aws_lambda_powertools import Logger

__all__ = ["LOGIN_COOKIE", "SESSION_COOKIE", "cookie", "handler", "pkce_challenge", "safe_next"]

logger = Logger(service="ltv-auth")

SESSION_COOKIE = "ltv_session"  # read by lambdas/authorizer
LOGIN_COOKIE = "ltv_login"
LOGIN_SECONDS = 600
SCOPES = "openid email profile"
_NEXT = re.compile(r"/(?![/\\])[A-Za-z0-9._~!$&'()*+,;=:@%/?-]{0,1000}")
_STATE = re.compile(r"[A-Za-z0-9_-]{16,128}")
_CSP = "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def pkce_challenge(verifier: str) -> str:
    """RFC 7636 S256: base64url(sha256(verifier)) without padding."""
    return _b64(hashlib.sha256(verifier.encode("ascii")).digest())


def _prefix(event: dict[str, Any]) -> str:
    """The stage in front of the routes (``/v1``), as ltvcore.api.http.prefix finds it."""
    full = str((event.get("requestContext") or {}).get("path") or "")
    path = str(event.get("path") or "/")
    if full and full != path and full.endswith(path):
        stage = full[: len(full) - len(path)].rstrip("/")
        return stage if re.fullmatch(r"(?:/[A-Za-z0-9._~-]+)*", stage) else ""
    return ""


def safe_next(value: str | None, default: str) -> str:
    """``value`` when it is a path on this site (never ``//host``, a scheme or a backslash)."""
    if value and _NEXT.fullmatch(value):
        return value
    return default


def cookie(event: dict[str, Any], name: str) -> str | None:
    """The value of cookie ``name`` (the first one) of the request's ``Cookie`` header(s)."""
    values = [str(v) for k, v in (event.get("headers") or {}).items() if str(k).lower() == "cookie" and v]
    for header in values:
        for pair in header.split(";"):
            key, sep, value = pair.strip().partition("=")
            if sep and key == name:
                return value.strip().strip('"')
    return None


def _set_cookie(name: str, value: str, *, path: str, max_age: int) -> str:
    return f"{name}={value}; Path={path}; Max-Age={max_age}; Secure; HttpOnly; SameSite=Lax"


def _response(status: int, *, location: str | None = None, body: str = "",
              cookies: list[str] | None = None) -> dict[str, Any]:
    headers = {"Cache-Control": "no-store", "Content-Type": "text/html; charset=utf-8",
               "Content-Security-Policy": _CSP, "X-Content-Type-Options": "nosniff",
               "Referrer-Policy": "no-referrer"}
    if location:
        headers["Location"] = location
    answer: dict[str, Any] = {"statusCode": status, "headers": headers, "body": body,
                              "isBase64Encoded": False}
    if cookies:
        answer["multiValueHeaders"] = {"Set-Cookie": cookies}
    return answer


def _page(status: int, title: str, message: str, link: str, link_text: str,
          cookies: list[str] | None = None) -> dict[str, Any]:
    body = (f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}'
            f' - LTV forecast</title></head><body style="font-family:system-ui,sans-serif;margin:3rem">'
            f"<h1>{html.escape(title)}</h1><p>{html.escape(message)}</p>"
            f'<p><a href="{html.escape(link)}">{html.escape(link_text)}</a></p></body></html>')
    return _response(status, body=body, cookies=cookies)


def _settings() -> dict[str, str]:
    return {name: os.environ.get(f"LTV_AUTH_{name.upper()}", "") for name in
            ("domain", "client_id", "redirect_uri", "logout_uri", "identity_provider", "session_seconds")}


def login(event: dict[str, Any], settings: dict[str, str]) -> dict[str, Any]:
    prefix = _prefix(event)
    query = event.get("queryStringParameters") or {}
    target = safe_next(query.get("next"), f"{prefix}/")
    verifier = _b64(secrets.token_bytes(48))  # 64 characters: RFC 7636 allows 43 to 128
    state = _b64(secrets.token_bytes(24))
    parameters = {"response_type": "code", "client_id": settings["client_id"],
                  "redirect_uri": settings["redirect_uri"], "scope": SCOPES, "state": state,
                  "code_challenge": pkce_challenge(verifier), "code_challenge_method": "S256"}
    if settings["identity_provider"]:
        parameters["identity_provider"] = settings["identity_provider"]
    pending = ".".join((state, verifier, _b64(target.encode("utf-8"))))
    return _response(302, location=f"{settings['domain']}/oauth2/authorize?{urlencode(parameters)}",
                     cookies=[_set_cookie(LOGIN_COOKIE, pending, path=f"{prefix}/auth",
                                          max_age=LOGIN_SECONDS)])


def _exchange(settings: dict[str, str], code: str, verifier: str) -> dict[str, Any]:
    """The token endpoint's answer to the code and its verifier (RFC 6749 4.1.3, RFC 7636 4.5)."""
    data = urlencode({"grant_type": "authorization_code", "client_id": settings["client_id"],
                      "code": code, "redirect_uri": settings["redirect_uri"],
                      "code_verifier": verifier}).encode("ascii")
    request = urllib.request.Request(f"{settings['domain']}/oauth2/token", data=data, method="POST",
                                     headers={"Content-Type": "application/x-www-form-urlencoded",
                                              "Accept": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310 - the pool's https domain
        return json.loads(answer.read(1_000_000))


def callback(event: dict[str, Any], settings: dict[str, str]) -> dict[str, Any]:
    prefix = _prefix(event)
    again = f"{prefix}/auth/login"
    clear_login = _set_cookie(LOGIN_COOKIE, "", path=f"{prefix}/auth", max_age=0)
    query = event.get("queryStringParameters") or {}
    if query.get("error"):
        logger.info("sign-in refused by the identity provider", extra={"error": query.get("error")})
        return _page(403, "Sign-in refused", "The sign-in did not complete "
                     f"({str(query.get('error'))[:80]}). Ask the team for access if you need it.",
                     again, "Try again", [clear_login])
    pending = cookie(event, LOGIN_COOKIE)
    parts = pending.split(".") if pending else []
    code, state = str(query.get("code") or ""), str(query.get("state") or "")
    if len(parts) != 3 or not _STATE.fullmatch(state) or not code \
            or not hmac.compare_digest(parts[0].encode(), state.encode()):
        return _page(400, "Sign-in expired", "This sign-in link is no longer valid (it is used "
                     "once, within ten minutes, in the browser that started it).", again,
                     "Sign in again", [clear_login])
    try:
        target = safe_next(base64.urlsafe_b64decode(parts[2] + "=" * (-len(parts[2]) % 4)).decode("utf-8"),
                           f"{prefix}/")
    except (ValueError, UnicodeDecodeError):
        target = f"{prefix}/"
    try:
        tokens = _exchange(settings, code, parts[1])
    except urllib.error.HTTPError as error:
        # invalid_grant: the code was used already, expired, or the verifier does not match
        logger.warning("code exchange refused", extra={"status": error.code})
        return _page(400, "Sign-in expired", "The sign-in could not be completed; please sign in "
                     "again.", again, "Sign in again", [clear_login])
    except (urllib.error.URLError, TimeoutError, ValueError) as error:
        logger.error("token endpoint unreachable", extra={"error": str(error)})
        return _page(502, "Sign-in unavailable", "The sign-in service did not answer; please try "
                     "again in a minute.", again, "Try again", [clear_login])
    id_token = tokens.get("id_token") if isinstance(tokens, dict) else None
    if not isinstance(id_token, str) or not re.fullmatch(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+",
                                                         id_token):
        logger.error("token endpoint answered without an ID token")
        return _page(502, "Sign-in unavailable", "The sign-in service answered without an identity; "
                     "please try again.", again, "Try again", [clear_login])
    lifetime = min(int(tokens.get("expires_in") or 3600), int(settings["session_seconds"] or 3600))
    session = _set_cookie(SESSION_COOKIE, id_token, path=prefix or "/",
                          max_age=max(lifetime - 60, 60))
    return _response(302, location=target, cookies=[session, clear_login])


def logout(event: dict[str, Any], settings: dict[str, str]) -> dict[str, Any]:
    prefix = _prefix(event)
    clear = _set_cookie(SESSION_COOKIE, "", path=prefix or "/", max_age=0)
    query = urlencode({"client_id": settings["client_id"], "logout_uri": settings["logout_uri"]})
    return _response(302, location=f"{settings['domain']}/logout?{query}", cookies=[clear])


def signed_out(event: dict[str, Any], settings: dict[str, str]) -> dict[str, Any]:
    prefix = _prefix(event)
    return _page(200, "Signed out", "You are signed out of the LTV forecast.",
                 f"{prefix}/auth/login", "Sign in again")


ROUTES = {"/auth/login": login, "/auth/callback": callback, "/auth/logout": logout,
          "/auth/signed-out": signed_out}


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    route = ROUTES.get(str(event.get("resource") or ""))
    if route is None or str(event.get("httpMethod") or "").upper() != "GET":
        return _page(404, "Not found", "There is no such page.", f"{_prefix(event)}/", "The form")
    return route(event, _settings())
