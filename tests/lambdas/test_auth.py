"""The sign-in (lambdas/auth) and the authoriser (lambdas/authorizer) against a local stand-in
for the user pool (tests/lambdas/oidc_stub.py): PKCE login, the code exchange, the session
cookie, token verification, and the verified e-mail recorded as ``requested_by``."""

from __future__ import annotations

import base64
import hashlib
import time
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.infra.support import lambda_context, load_handler
from tests.lambdas.oidc_stub import CLIENT_ID, ISSUER, OidcStub, new_key

HOST = "abc123.execute-api.us-east-1.amazonaws.com"
BASE = f"https://{HOST}/v1"
DOMAIN = "https://ltvforecast-123456789012.auth.us-east-1.amazoncognito.com"
METHOD_ARN = "arn:aws:execute-api:us-east-1:123456789012:abc123/v1/{}/{}"


@pytest.fixture
def stub():
    server = OidcStub(redirect_uri=f"{BASE}/auth/callback")
    yield server
    server.close()


@pytest.fixture
def auth(stub, monkeypatch):
    """The sign-in Lambda, its token endpoint the stand-in's."""
    for name, value in {"DOMAIN": stub.url, "CLIENT_ID": CLIENT_ID, "REDIRECT_URI": f"{BASE}/auth/callback",
                        "LOGOUT_URI": f"{BASE}/auth/signed-out", "IDENTITY_PROVIDER": "",
                        "SESSION_SECONDS": str(8 * 3600)}.items():
        monkeypatch.setenv(f"LTV_AUTH_{name}", value)
    return load_handler("auth")


@pytest.fixture
def authorizer(stub, monkeypatch):
    monkeypatch.setenv("LTV_AUTH_ISSUER", ISSUER)
    monkeypatch.setenv("LTV_AUTH_CLIENT_ID", CLIENT_ID)
    monkeypatch.setenv("LTV_AUTH_JWKS_URL", stub.jwks_url)
    return load_handler("authorizer")


def proxy(path: str, query: dict | None = None, cookie: str | None = None) -> dict:
    headers = {"Host": HOST, "Accept": "text/html"}
    if cookie:
        headers["Cookie"] = cookie
    return {"resource": path, "path": path, "httpMethod": "GET", "headers": headers,
            "queryStringParameters": query, "requestContext": {"path": f"/v1{path}", "stage": "v1"}}


def request_event(method: str = "GET", path: str = "/forecasts", **headers: str) -> dict:
    """A REQUEST authoriser event as API Gateway sends it (REST API)."""
    return {"type": "REQUEST", "methodArn": METHOD_ARN.format(method, path.lstrip("/")),
            "resource": path, "path": path, "httpMethod": method,
            "headers": {"Host": HOST, **{k.replace("_", "-"): v for k, v in headers.items()}},
            "queryStringParameters": {}, "requestContext": {"path": f"/v1{path}", "stage": "v1",
                                                            "domainName": HOST}}


def cookies_of(response: dict) -> dict[str, str]:
    """name → the whole Set-Cookie line, from the proxy response."""
    lines = (response.get("multiValueHeaders") or {}).get("Set-Cookie", [])
    return {line.split("=", 1)[0]: line for line in lines}


def cookie_value(line: str) -> str:
    return line.split(";", 1)[0].split("=", 1)[1]


def sign_in(auth, stub, next_path: str = "/v1/forecasts/abc", **claims) -> tuple[dict, dict]:
    """login → the hosted UI (the stand-in issues a code) → callback; (login, callback) responses."""
    started = auth.handler(proxy("/auth/login", {"next": next_path}), lambda_context("auth"))
    query = {k: v[0] for k, v in parse_qs(urlsplit(started["headers"]["Location"]).query).items()}
    code = stub.authorize(client_id=query["client_id"], redirect_uri=query["redirect_uri"],
                          code_challenge=query["code_challenge"],
                          code_challenge_method=query["code_challenge_method"], **claims)
    pending = cookie_value(cookies_of(started)["ltv_login"])
    finished = auth.handler(proxy("/auth/callback", {"code": code, "state": query["state"]},
                                  cookie=f"other=1; ltv_login={pending}"), lambda_context("auth"))
    return started, finished


# --------------------------------------------------------------------------- sign-in


def test_login_redirects_to_the_hosted_ui_with_a_pkce_challenge(auth, stub):
    response = auth.handler(proxy("/auth/login", {"next": "/v1/forecasts/abc"}), lambda_context("auth"))
    assert response["statusCode"] == 302 and response["headers"]["Cache-Control"] == "no-store"
    location = urlsplit(response["headers"]["Location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == f"{stub.url}/oauth2/authorize"
    query = {k: v[0] for k, v in parse_qs(location.query).items()}
    assert query["response_type"] == "code" and query["client_id"] == CLIENT_ID
    assert query["redirect_uri"] == f"{BASE}/auth/callback"
    assert query["scope"] == "openid email profile" and query["code_challenge_method"] == "S256"
    assert "identity_provider" not in query
    line = cookies_of(response)["ltv_login"]
    assert {"HttpOnly", "Secure", "SameSite=Lax", "Path=/v1/auth", "Max-Age=600"} <= {
        part.strip() for part in line.split(";")}
    state, verifier, _next = cookie_value(line).split(".")
    assert state == query["state"] and 43 <= len(verifier) <= 128
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    assert query["code_challenge"] == challenge  # the verifier never leaves the HttpOnly cookie
    assert verifier not in response["headers"]["Location"]


def test_login_goes_straight_to_the_federated_provider(auth, monkeypatch):
    monkeypatch.setenv("LTV_AUTH_IDENTITY_PROVIDER", "CompanyOkta")
    response = auth.handler(proxy("/auth/login"), lambda_context("auth"))
    assert parse_qs(urlsplit(response["headers"]["Location"]).query)["identity_provider"] == ["CompanyOkta"]


def test_callback_exchanges_the_code_with_its_verifier_and_sets_the_session(auth, stub):
    started, finished = sign_in(auth, stub)
    assert finished["statusCode"] == 302
    assert finished["headers"]["Location"] == "/v1/forecasts/abc"  # back where the person was
    (exchange,) = stub.token_requests
    assert exchange["grant_type"] == "authorization_code" and exchange["client_id"] == CLIENT_ID
    assert exchange["redirect_uri"] == f"{BASE}/auth/callback"
    assert exchange["code_verifier"] == cookie_value(cookies_of(started)["ltv_login"]).split(".")[1]
    cookies = cookies_of(finished)
    session = cookies["ltv_session"]
    assert {"HttpOnly", "Secure", "SameSite=Lax", "Path=/v1"} <= {p.strip() for p in session.split(";")}
    assert 3000 <= int(session.split("Max-Age=")[1].split(";")[0]) <= 3600  # the token's lifetime
    assert "Max-Age=0" in cookies["ltv_login"]  # the verifier is used once
    assert "opaque-refresh" not in str(finished)  # no refresh token is kept anywhere


@pytest.mark.parametrize("case", ["wrong state", "no login cookie", "replayed code", "wrong verifier"])
def test_a_callback_that_does_not_match_its_login_sets_no_session(auth, stub, case):
    started = auth.handler(proxy("/auth/login"), lambda_context("auth"))
    query = {k: v[0] for k, v in parse_qs(urlsplit(started["headers"]["Location"]).query).items()}
    code = stub.authorize(client_id=CLIENT_ID, redirect_uri=query["redirect_uri"],
                          code_challenge=query["code_challenge"], code_challenge_method="S256")
    state, verifier, target = cookie_value(cookies_of(started)["ltv_login"]).split(".")
    cookie = f"ltv_login={state}.{verifier}.{target}"
    if case == "wrong state":
        query["state"] = "A" * 32
    elif case == "no login cookie":
        cookie = None
    elif case == "replayed code":
        auth.handler(proxy("/auth/callback", {"code": code, "state": state}, cookie), lambda_context("auth"))
    elif case == "wrong verifier":
        cookie = f"ltv_login={state}.{'x' * 64}.{target}"
    response = auth.handler(proxy("/auth/callback", {"code": code, "state": query["state"]}, cookie),
                            lambda_context("auth"))
    assert response["statusCode"] == 400 and "Sign in again" in response["body"]
    assert "ltv_session" not in cookies_of(response)


def test_an_identity_provider_refusal_is_a_page_not_a_session(auth):
    response = auth.handler(proxy("/auth/callback", {"error": "access_denied"}), lambda_context("auth"))
    assert response["statusCode"] == 403 and "access_denied" in response["body"]
    assert "ltv_session" not in cookies_of(response)


def test_an_unreachable_token_endpoint_is_a_502(auth, stub, monkeypatch):
    started = auth.handler(proxy("/auth/login"), lambda_context("auth"))
    state = cookie_value(cookies_of(started)["ltv_login"]).split(".")[0]
    stub.close()
    response = auth.handler(proxy("/auth/callback", {"code": "c0de", "state": state},
                                  cookie=f"ltv_login={cookie_value(cookies_of(started)['ltv_login'])}"),
                            lambda_context("auth"))
    assert response["statusCode"] == 502 and "ltv_session" not in cookies_of(response)


@pytest.mark.parametrize(("given", "kept"), [
    ("/v1/forecasts/abc?format=html", True), ("//evil.example/x", False), ("https://evil.example/", False),
    ("/\\evil.example", False), ("javascript:alert(1)", False), (None, False),
])
def test_next_is_a_path_of_this_site_only(auth, given, kept):
    assert auth.safe_next(given, "/v1/") == (given if kept else "/v1/")


def test_logout_clears_the_session_and_signs_out_of_the_hosted_ui(auth, stub):
    response = auth.handler(proxy("/auth/logout", cookie="ltv_session=x.y.z"), lambda_context("auth"))
    assert response["statusCode"] == 302
    location = urlsplit(response["headers"]["Location"])
    assert location.path == "/logout"
    assert parse_qs(location.query) == {"client_id": [CLIENT_ID], "logout_uri": [f"{BASE}/auth/signed-out"]}
    assert "Max-Age=0" in cookies_of(response)["ltv_session"]
    page = auth.handler(proxy("/auth/signed-out"), lambda_context("auth"))
    assert page["statusCode"] == 200 and 'href="/v1/auth/login"' in page["body"]


# --------------------------------------------------------------------------- the authoriser


def test_both_lambdas_name_the_same_session_cookie(auth, authorizer):
    assert auth.SESSION_COOKIE == authorizer.SESSION_COOKIE == "ltv_session"


def test_a_signed_in_cookie_is_allowed_with_the_verified_identity(auth, authorizer, stub):
    _started, finished = sign_in(auth, stub)
    token = cookie_value(cookies_of(finished)["ltv_session"])
    answer = authorizer.handler(request_event(Cookie=f"theme=dark; ltv_session={token}"), lambda_context())
    (statement,) = answer["policyDocument"]["Statement"]
    assert statement == {"Action": "execute-api:Invoke", "Effect": "Allow",
                         "Resource": METHOD_ARN.format("GET", "forecasts")}
    assert answer["principalId"] == "okta_ana@example.com"
    assert answer["context"] == {"email": "ana@example.com", "username": "okta_ana@example.com",
                                 "sub": "5b1c-ana"}


def test_a_bearer_token_is_allowed_too(authorizer, stub):
    answer = authorizer.handler(request_event("POST", Authorization=f"Bearer {stub.mint()}"), lambda_context())
    assert answer["policyDocument"]["Statement"][0]["Effect"] == "Allow"  # no Origin needed: no cookie


def _tampered(token: str) -> str:
    header, payload, signature = token.split(".")
    body = base64.urlsafe_b64decode(payload + "==").replace(b"ana@example.com", b"eve@example.com")
    return ".".join((header, base64.urlsafe_b64encode(body).rstrip(b"=").decode(), signature))


@pytest.mark.parametrize("case", ["missing", "garbage", "expired", "wrong audience", "wrong issuer",
                                  "tampered", "foreign key", "access token", "no expiry", "hs256"])
def test_bad_tokens_are_unauthorized(authorizer, stub, case):
    import jwt

    tokens = {
        "missing": None, "garbage": "not.a.token",
        "expired": stub.mint(exp=int(time.time()) - 120, iat=int(time.time()) - 3720),
        "wrong audience": stub.mint(aud="another-client"),
        "wrong issuer": stub.mint(iss="https://cognito-idp.us-east-1.amazonaws.com/us-east-1_Other"),
        "tampered": _tampered(stub.mint()),
        "foreign key": stub.mint(key=new_key()),
        "access token": stub.mint(token_use="access"),
        "no expiry": stub.mint(exp=None),
        # the public key used as an HMAC secret: refused, only RS256 is accepted
        "hs256": jwt.encode(stub.claims(), "s" * 32, algorithm="HS256", headers={"kid": stub.kid}),
    }
    token = tokens[case]
    event = request_event(Cookie=f"ltv_session={token}") if token else request_event()
    with pytest.raises(Exception, match="^Unauthorized$"):
        authorizer.handler(event, lambda_context())


def test_a_rotated_key_is_fetched_when_first_seen(authorizer, stub):
    assert authorizer.handler(request_event(Authorization=f"Bearer {stub.mint()}"), lambda_context())
    fetched = stub.jwks_requests
    authorizer.handler(request_event(Authorization=f"Bearer {stub.mint()}"), lambda_context())
    assert stub.jwks_requests == fetched  # cached between requests
    rotated = new_key()
    stub.extra_keys.append(("key-2", rotated))
    # PyJWT refetches for an unknown key id at most every 30 s (a flood of made-up ids must not
    # become a flood of fetches): let that time pass
    authorizer._jwks(stub.jwks_url)._last_successful_fetch -= 60
    answer = authorizer.handler(request_event(Authorization=f"Bearer {stub.mint(key=rotated, kid='key-2')}"),
                                lambda_context())
    assert answer["policyDocument"]["Statement"][0]["Effect"] == "Allow"
    assert stub.jwks_requests == fetched + 1


@pytest.mark.parametrize(("origin", "effect"), [
    (f"https://{HOST}", "Allow"), ("https://evil.example", "Deny"), (None, "Deny"), ("null", "Deny"),
    (f"http://{HOST}", "Deny"),
])
def test_a_state_changing_request_by_cookie_must_come_from_this_site(authorizer, stub, origin, effect):
    headers = {"Cookie": f"ltv_session={stub.mint()}"}
    if origin:
        headers["Origin"] = origin
    answer = authorizer.handler(request_event("POST", **headers), lambda_context())
    assert answer["policyDocument"]["Statement"][0]["Effect"] == effect


def test_the_verified_email_becomes_requested_by(auth, authorizer, stub):
    """What the authoriser allows with is what API Gateway passes on as requestContext.authorizer,
    and what the API records; a header naming someone else changes nothing."""
    from ltvcore.api.http import requester

    _started, finished = sign_in(auth, stub, email="marketer@example.com")
    token = cookie_value(cookies_of(finished)["ltv_session"])
    allowed = authorizer.handler(request_event("POST", Cookie=f"ltv_session={token}", Origin=f"https://{HOST}"),
                                 lambda_context())
    event = {"requestContext": {"authorizer": {**allowed["context"], "principalId": allowed["principalId"]},
                                "identity": {"sourceIp": "10.1.2.3"}}}
    assert requester(event, "mallory", local=False) == "marketer@example.com"
    without_email = {"requestContext": {"authorizer": {"username": "okta_bob", "principalId": "okta_bob"}}}
    assert requester(without_email, "mallory", local=False) == "okta_bob"
