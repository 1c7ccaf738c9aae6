"""Seeded HTTP fuzzing of the API: nothing a client sends is a 500, a traceback or a stray run.

Cases are drawn from ``random.Random(SEED)``: mutations of a valid ``POST /forecasts`` body
(wrong types per field, huge and negative numbers, unicode, surrogate escapes, deep nesting,
huge integer literals, truncated JSON, random bytes, other encodings) and of requests (methods,
paths, query strings, Content-Type, Accept, Host, X-Forwarded-Proto, X-Ltv-User). Most go to
the app as proxy events, half as API Gateway sends them and half as ``ltv serve`` builds them;
a sample goes through a real ``ltv serve`` socket. Every case checks: status < 500; a 4xx is
JSON with ``error`` (or the HTML page that was asked for); no traceback text; no run recorded
unless the answer was 202. Forecasts themselves are not computed (a stub fails them at once).
"""

from __future__ import annotations

import base64
import json
import os
import random
import re
from collections import Counter
from typing import Any
from urllib.parse import quote, urlsplit

import pytest

from ltvcore.api.app import wants_html
from ltvcore.cli.serve import to_event
from ltvcore.errors import InputError
from tests.api.conftest import http_request, rest_event

SEED = 20260409
APP_CASES = 2000
SOCKET_CASES = 400

VALID = {"dataset": "demo", "by": ["campaign"], "horizons": [30, 90], "observe_days": 7,
         "confidence": 0.8, "model": "auto", "retention": "auto", "notify": ["growth"]}
FIELDS = [*VALID, "as_of", "window_days"]
NASTY_STRINGS = ["", " ", "demo ", "DEMO", "../demo", "demo/../x", "/etc/passwd", "a\\b", ".x",
                 "\u00b2", "\u0661", "d\u00e9mo", "\U0001f600", "\u202ename", "a\u0000b",
                 "\ufeffdemo", "x" * 5000, "<script>alert(1)</script>", "%00", "\r\nX-A: b",
                 "demo\n", "null", "2026-02-30", "2026-01-01T00:00:00", "0" * 400]
HOSTS_OK = ["a1b2c3d4e5.execute-api.eu-west-1.amazonaws.com", "localhost:8000", "127.0.0.1",
            "[::1]:9000", "ltv.example.com:8443"]
HOSTS_BAD = ["localhost:1@evil.example", "localhost:1, evil.com", "evil example", "x/y",
             "a@b", "", "\u00e9vil", "localhost:", "-x.example", ":80", "[zz]"]
ACCEPTS = [None, "application/json", "text/html", "*/*", "text/*", "text/html;q=0.5, */*",
           "text/html;q=abc", "text/html;q=nan", "text/html;q=1e999", "application/xml",
           "image/png", ",,,;;;", "text/html;" * 200, "\u00e9/\u00e9", "*/*;q=-1"]
CONTENT_TYPES = [None, "application/json", "application/json; charset=utf-8",
                 "APPLICATION/JSON", "text/plain", "application/x-www-form-urlencoded",
                 "multipart/form-data; boundary=x", "multipart/form-data",
                 "application/octet-stream",
                 "application/json; charset=latin-1", "application/jsonx", ";", "\u00e9",
                 "application/vnd.api+json", "text/html"]
METHODS = ["GET", "GET", "POST", "POST", "POST", "HEAD", "PUT", "DELETE", "PATCH", "OPTIONS",
           "TRACE", "FOO", "get", "PROPFIND"]
RUN_ID = "0123456789abcdef0123"
PATHS = ["/", "/forecasts", "/forecasts/", "//forecasts", f"/forecasts/{RUN_ID}",
         f"/forecasts/{RUN_ID}/files/report.html", f"/forecasts/{RUN_ID}/files/forecast.csv",
         f"/forecasts/{RUN_ID}/files/../../etc/passwd", "/forecasts/../etc/passwd",
         "/forecasts/bad.id", "/forecasts/\u00e9t\u00e9", "/forecasts/" + "a" * 300,
         "/forecasts/%00", "/forecasts/a%2Fb", "/nowhere", "/forecasts/x/files/",
         "/FORECASTS", "/forecasts?", "/forecasts/\U0001f600/files/x"]
QUERY_KEYS = ["limit", "format", "limit", "x", "", "\u00e9", "format"]
LIMITS = ["1", "50", "1000", "0", "-1", "1001", "\u00b2", "1\u00b2", "\u0661", "+5", " 5",
          "5.0", "1e3", "0x10", "", "9" * 5000, "abc", "1_0"]
FORMATS = ["html", "json", "xml", "", "HTML", "\u00e9"]
USERS = [None, "dave", "", "\u00e9\u00e8", "x" * 500, "<b>", "a\tb", "\U0001f600", "\u202e"]
PROTOS = [None, "https", "http", "ftp", "javascript", "https, http", "", "HTTPS", "x://y"]

TRACEBACK = re.compile(r"Traceback|File \"|\bline \d+, in\b")


# --------------------------------------------------------------------------- generators


def _value(rng: random.Random, depth: int = 0) -> Any:
    """A JSON value of any type, often a nasty one."""
    kind = rng.randrange(12 if depth < 3 else 8)
    if kind == 0:
        return None
    if kind == 1:
        return rng.choice([True, False])
    if kind == 2:
        return rng.choice([0, -1, 1, 7, 30, 2**31, -(2**63), 10**50, -(10**99), 99999])
    if kind == 3:
        return rng.choice([0.5, -0.0, 1e-300, 1.5, 1e308, -1e308, 0.95, 3.0])
    if kind in (4, 5):
        return rng.choice(NASTY_STRINGS)
    if kind == 6:
        return "".join(chr(rng.randrange(0x20, 0x2FFFF)) for _ in range(rng.randrange(1, 12)))
    if kind == 7:
        return rng.choice(["demo", "campaign", "os", "30", "growth", "bayes"])
    if kind in (8, 9):
        return [_value(rng, depth + 1) for _ in range(rng.randrange(0, 4))]
    return {rng.choice(FIELDS + ["", "x"]): _value(rng, depth + 1)
            for _ in range(rng.randrange(0, 3))}


def _mutated_json(rng: random.Random) -> str:
    body = dict(VALID)
    for _ in range(rng.randrange(1, 4)):
        action = rng.randrange(4)
        field = rng.choice(FIELDS)
        if action == 0:
            body[field] = _value(rng)
        elif action == 1:
            body.pop(field, None)
        elif action == 2:
            body[rng.choice(["extra", "Dataset", "dataset ", "\u00e9"])] = _value(rng)
        else:
            body = {"dataset": "demo", field: _value(rng)}
    return json.dumps(body, ensure_ascii=rng.random() < 0.5)


def _nasty_json(rng: random.Random) -> str:
    """JSON text that Python's json.loads accepts (or nearly) but no field can hold."""
    kind = rng.randrange(9)
    depth = rng.choice([20, 33, 100, 1000, 5000])
    if kind == 0:
        return '{"dataset":"' + rng.choice(["\\ud800", "\\udfff", "a\\udbff", "\\ud83d"]) + '"}'
    if kind == 1:
        key = rng.choice(["by", "notify", "horizons"])
        return '{"dataset":"demo","' + key + '":["\\udc00"]}'
    if kind == 2:
        return "[" * depth + "]" * depth
    if kind == 3:
        return '{"a":' * depth + "1" + "}" * depth
    if kind == 4:
        digits = "9" * rng.choice([101, 4300, 4301, 6000])
        sign = rng.choice(["", "-"])
        return '{"dataset":"demo","observe_days":' + sign + digits + "}"
    if kind == 5:
        return '{"dataset":"demo","confidence":' + rng.choice(
            ["NaN", "Infinity", "-Infinity", "1e999", "1" * 3000 + ".0", "-0"]) + "}"
    if kind == 6:
        text = json.dumps(VALID)
        return text[: rng.randrange(len(text))]  # truncated
    if kind == 7:
        return '{"dataset":"demo","dataset":"nope"}'  # duplicate keys
    return rng.choice(["", "null", "true", "0", '"demo"', "[]", "{}", " ", "\ufeff{}",
                       '{"dataset":"demo"}garbage', "{'dataset':'demo'}"])


def _body(rng: random.Random) -> bytes:
    kind = rng.randrange(10)
    if kind < 4:
        return _mutated_json(rng).encode("utf-8", "surrogatepass")  # raw surrogates: bad UTF-8
    if kind < 7:
        return _nasty_json(rng).encode("utf-8")
    if kind == 7:
        return rng.randbytes(rng.randrange(1, 64))
    if kind == 8:
        return _mutated_json(rng).encode(rng.choice(["utf-16", "utf-32", "latin-1", "cp1252"]),
                                         errors="replace")
    return json.dumps(VALID).encode()  # valid: some cases must reach a 202


def _valid(rng: random.Random) -> dict[str, Any]:
    """A submission the API accepts (a 202), with its own horizons: a run of its own."""
    body = {"dataset": "demo", "horizons": sorted(rng.sample(range(1, 731), rng.randrange(1, 4)))}
    if rng.random() < 0.5:
        body["by"] = rng.choice([["campaign"], ["os"], ["campaign", "os"]])
    headers = {"Content-Type": rng.choice(["application/json", "application/json; charset=utf-8"])}
    if rng.random() < 0.5:
        headers["X-Forwarded-Proto"] = rng.choice(PROTOS[1:])
    return {"method": "POST", "path": "/forecasts", "query": [], "headers": headers,
            "body": json.dumps(body).encode(), "gateway": rng.random() < 0.5}


def _case(rng: random.Random, *, socket: bool) -> dict[str, Any]:
    """One request: a valid submission, a fuzzed submission, a fuzzed read, or anything."""
    pick = rng.random()
    if pick < 0.08:
        return _valid(rng)
    method, path = rng.choice(METHODS), rng.choice(PATHS)
    if pick < 0.55:  # where bodies are parsed: where the 500s were
        method, path = "POST", "/forecasts"
    elif pick < 0.75:
        method = rng.choice(["GET", "GET", "HEAD"])
        path = rng.choice(["/forecasts", "/forecasts", f"/forecasts/{RUN_ID}", "/"])
    query = [(rng.choice(QUERY_KEYS), rng.choice(LIMITS + FORMATS))
             for _ in range(rng.randrange(0, 3))]
    headers: dict[str, str] = {}
    for name, pool in (("Accept", ACCEPTS), ("Content-Type", CONTENT_TYPES),
                       ("X-Ltv-User", USERS), ("X-Forwarded-Proto", PROTOS)):
        value = rng.choice(pool)
        if value is not None:
            headers[name] = value
    if method == "POST" and rng.random() < 0.5:
        headers["Content-Type"] = "application/json"  # so most bodies are parsed
    body = b""
    if method in ("POST", "PUT", "PATCH") or rng.random() < 0.1:
        body = _body(rng)
    if rng.random() < 0.3:
        headers["Host"] = rng.choice(HOSTS_OK + HOSTS_BAD)
    if socket:  # a request line and header values http.client can send
        path = quote(path, safe="/%?=&")
        headers = {k: v.encode("utf-8").decode("latin-1").replace("\r", "").replace("\n", "")
                   for k, v in headers.items()}
        method = method.upper()
    return {"method": method, "path": path, "query": query, "headers": headers, "body": body,
            "gateway": rng.random() < 0.5}


def _event(case: dict[str, Any]) -> dict[str, Any]:
    target = case["path"] + ("?" + "&".join(f"{quote(k)}={quote(v)}" for k, v in case["query"])
                             if case["query"] else "")
    if not case["gateway"]:
        headers = {"Host": "127.0.0.1:8000", **case["headers"]}
        return to_event(case["method"], target, list(headers.items()), case["body"])
    data = case["body"]
    event = rest_event(case["method"], case["path"], headers=case["headers"],
                       query=dict(case["query"]) or None)
    if data:
        try:
            event["body"], event["isBase64Encoded"] = data.decode("utf-8"), False
        except UnicodeDecodeError:
            event["body"], event["isBase64Encoded"] = base64.b64encode(data).decode(), True
    return event


# --------------------------------------------------------------------------- checks


def _check(case: dict[str, Any], status: int, headers: dict[str, str], text: str,
           before: set[str], after: set[str]) -> None:
    where = {k: (v[:80] if isinstance(v, (str, bytes)) else v) for k, v in case.items()}
    assert status < 500, (status, text[:300], where)
    assert not TRACEBACK.search(text), (text[:300], where)
    if status != 202:
        assert after == before, ("a refused request recorded a run", status, where)
    else:
        answer = json.loads(text)
        assert answer["run_id"] in after, where
        link = urlsplit(answer["status_url"])
        assert link.scheme in ("http", "https") and "@" not in link.netloc, answer
        assert headers.get("location") == answer["status_url"], (headers, where)
    if 400 <= status < 500 and case["method"].upper() != "HEAD":
        if headers.get("content-type", "").startswith("text/html"):
            query = dict(case["query"])
            assert wants_html(case["headers"].get("Accept"), query.get("format")), where
        else:
            assert headers.get("content-type", "").startswith("application/json"), where
            answer = json.loads(text)
            assert isinstance(answer.get("error"), str) and answer["error"], (answer, where)


def _runs(store_dir) -> set[str]:
    runs = store_dir / "runs"
    if not runs.is_dir():
        return set()
    return {name for name in os.listdir(runs) if not name.startswith(".")}


@pytest.fixture
def fuzz_api(make_api, tmp_path):
    def fails_fast(request, **kwargs):
        raise InputError("not computed in the fuzz test")

    api = make_api(local=True, store_dir=tmp_path / "fuzz-store", max_pending=100_000)
    api.launcher._compute = fails_fast
    return api


def test_fuzzed_requests_through_the_app(fuzz_api, tmp_path) -> None:
    rng = random.Random(SEED)
    store_dir = tmp_path / "fuzz-store"
    statuses: Counter[int] = Counter()
    for _ in range(APP_CASES):
        case = _case(rng, socket=False)
        before = _runs(store_dir)
        with fuzz_api._lock:
            response = fuzz_api.app.resolve(_event(case), None)
        body = response.get("body") or ""
        text = (base64.b64decode(body).decode("utf-8", "replace")
                if response.get("isBase64Encoded") else body)
        headers = {k.lower(): v for k, v in (response.get("headers") or {}).items()}
        for k, values in (response.get("multiValueHeaders") or {}).items():
            headers[k.lower()] = values[-1]
        _check(case, response["statusCode"], headers, text, before, _runs(store_dir))
        statuses[response["statusCode"]] += 1
    fuzz_api.wait()
    print(f"\napp: {APP_CASES} fuzzed requests, statuses {dict(sorted(statuses.items()))}")
    assert statuses[202] and statuses[400] and statuses[404] and statuses[200]


def test_fuzzed_requests_through_ltv_serve(fuzz_api, serve, tmp_path) -> None:
    rng = random.Random(SEED + 1)
    store_dir = tmp_path / "fuzz-store"
    port = serve(fuzz_api)
    statuses: Counter[int] = Counter()
    for _ in range(SOCKET_CASES):
        case = _case(rng, socket=True)
        headers = dict(case["headers"])
        if "Host" in headers and rng.random() < 0.5:
            headers["Host"] = f"127.0.0.1:{port}"  # else mostly refused (403)
        headers.setdefault("Host", f"127.0.0.1:{port}")
        target = case["path"] + ("?" + "&".join(f"{quote(k)}={quote(v)}"
                                                for k, v in case["query"])
                                 if case["query"] else "")
        before = _runs(store_dir)
        status, response_headers, raw = http_request(port, case["method"], target,
                                                     case["body"] or None, headers,
                                                     skip_host=True)
        text = raw.decode("utf-8", "replace")
        _check(case, status, response_headers, text, before, _runs(store_dir))
        statuses[status] += 1
    fuzz_api.wait()
    print(f"\nltv serve: {SOCKET_CASES} fuzzed requests, statuses "
          f"{dict(sorted(statuses.items()))}")
    assert statuses[403] and statuses[400] and statuses[202]
