"""Requests that used to be a 500 are a 400 naming the problem; links come from checked parts.

Each kind of body is sent both as API Gateway sends it (text, or base64 with
``isBase64Encoded``) and over a real ``ltv serve`` socket; nothing refused records a run.
"""

from __future__ import annotations

import base64
import json
import socket
from urllib.parse import urlsplit

import pytest

from tests.api.conftest import http_request

DEEP_LIST = "[" * 5000 + "]" * 5000
DEEP_OBJECT = '{"a":' * 5000 + "1" + "}" * 5000
BIG = "9" * 4301

# (raw JSON text, what the error says): all JSON syntax Python accepts, none a usable body
BAD_JSON = [
    ('{"dataset":"\\ud800"}', "surrogate"),
    ('{"dataset":"demo","by":["\\udfff"]}', "surrogate"),
    ('{"\\udbff":1,"dataset":"demo"}', "surrogate"),
    ('{"dataset":"demo","notify":["a\\ud83d"]}', "surrogate"),
    (DEEP_LIST, "levels deep"),
    (DEEP_OBJECT, "levels deep"),
    ('{"dataset":"demo","horizons":' + "[" * 40 + "]" * 40 + "}", "levels deep"),
    ("[" * 5000, "levels deep"),  # truncated as well as deep
    ('{"dataset":"demo","observe_days":' + BIG + "}", "digits"),
    ('{"dataset":"demo","horizons":[-' + BIG + "]}", "digits"),
    ('{"dataset":"demo","confidence":' + "1" * 5000 + ".5}", "out of range"),
    ('{"dataset":"demo","confidence":1e999}', "out of range"),
    ('{"dataset":"demo","confidence":NaN}', "not valid JSON"),
    ('{"dataset":"demo","confidence":-Infinity}', "not valid JSON"),
]


def _refused(answer, status, headers, says, field="body") -> None:
    assert status == 400, answer
    assert headers["content-type"].startswith("application/json")
    assert answer["field"] == field, answer
    assert says in answer["error"], answer["error"]
    assert "Traceback" not in answer["error"]


@pytest.mark.parametrize(("raw", "says"), BAD_JSON, ids=[f"json-{i}" for i in range(len(BAD_JSON))])
def test_json_python_accepts_but_no_field_can_hold_is_a_400(api, raw, says) -> None:
    status, answer, headers = api.call("POST", "/forecasts", raw_body=raw)
    _refused(answer, status, headers, says)
    assert not api.service.runs() and not api.recorder.calls


@pytest.mark.parametrize("data", [b'{"dataset":"d\xffemo"}', b"\xff\xfe{}", b"\x80",
                                  '{"dataset":"démo"}'.encode("latin-1"),
                                  '{"dataset":"demo"}'.encode("utf-16")])
@pytest.mark.parametrize("content_type", [None, "application/json"])
def test_a_body_that_is_not_utf8_is_a_400(api, data, content_type) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    event_headers = {"Content-Type": content_type or ""}
    for event in (api.app, ):
        rest = _base64_event(data, event_headers)
        status, answer, response_headers = _resolve(api, rest)
        _refused(answer, status, response_headers, "not UTF-8")
    assert headers is not None
    assert not api.service.runs()


def _base64_event(data: bytes, headers: dict[str, str]) -> dict:
    from tests.api.conftest import rest_event

    event = rest_event("POST", "/forecasts", raw_body="x", headers=headers)
    if not headers.get("Content-Type"):
        del event["headers"]["Content-Type"]
        del event["multiValueHeaders"]["Content-Type"]
    event["body"] = base64.b64encode(data).decode()
    event["isBase64Encoded"] = True
    return event


def _resolve(api, event):
    from tests.api.conftest import reply

    with api._lock:
        return reply(api.app.resolve(event, None))


def test_a_lone_surrogate_character_in_an_event_body_is_a_400(api) -> None:
    # not the escape: the character itself, as a JSON event could carry it to the Lambda
    status, answer, headers = api.call("POST", "/forecasts", raw_body='{"dataset":"\ud800"}')
    _refused(answer, status, headers, "not UTF-8")


@pytest.mark.parametrize("limit", ["\u00b2", "1\u00b2", "\u0661", "\uff15", "+5", " 5", "5 ",
                                   "5.0", "1e2", "0x10", "-1", "1_0", "9" * 5000, "0", "1001"])
def test_limit_is_ascii_digits_in_range(api, limit) -> None:
    status, answer, headers = api.call("GET", "/forecasts", query={"limit": limit})
    _refused(answer, status, headers, "whole number", field="limit")
    assert api.call("GET", "/forecasts", query={"limit": "0010"})[0] == 200


# --------------------------------------------------------------------------- over a socket


@pytest.mark.parametrize("body", [b'{"dataset":"\\ud800"}', DEEP_LIST.encode(),
                                  DEEP_OBJECT.encode(),
                                  b'{"dataset":"demo","observe_days":' + BIG.encode() + b"}",
                                  b'{"dataset":"d\xffemo"}', b"\xc3\x28"])
@pytest.mark.parametrize("content_type", [None, "application/json", "text/plain; charset=utf-8"])
def test_ltv_serve_refuses_the_same_bodies(make_api, serve, body, content_type) -> None:
    api = make_api(local=True)
    port = serve(api)
    headers = {"Content-Type": content_type} if content_type else {}
    status, response_headers, raw = http_request(port, "POST", "/forecasts", body, headers)
    assert status == 400, raw
    answer = json.loads(raw)
    assert answer["field"] == "body" and answer["error"] and b"Traceback" not in raw
    if content_type and content_type.startswith("text/plain"):
        assert "as JSON" in answer["error"]
    assert not api.service.runs()
    status, _, raw = http_request(port, "GET", "/forecasts?limit=%C2%B2")
    assert status == 400 and json.loads(raw)["field"] == "limit"


# --------------------------------------------------------------------------- Host and links


def _raw_request(port: int, head: bytes) -> int:
    """Send ``head`` (request line and headers) as is; the response's status."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
        connection.sendall(head)
        answer = b""
        while b"\r\n" not in answer:
            chunk = connection.recv(4096)
            if not chunk:
                break
            answer += chunk
    return int(answer.split(b" ", 2)[1])


@pytest.mark.parametrize("host", [
    "localhost:{port}@evil.example", "localhost:{port}, evil.com", "127.0.0.1:{port}@evil.example",
    "[::1]:{port}@evil.example", "localhost.evil.example", "localhost:{port}/evil",
    "localhost:{port}:80", "localhost:http", "evil.example:{port}", "127.0.0.1.nip.io:{port}",
    "localhost :{port}", "localhost:{port} evil", "127.0.0.2:{port}", "[::2]:{port}",
    "localhost:", "", "localhoſt:{port}".encode().decode("latin-1"), "user@localhost:{port}"])
def test_ltv_serve_accepts_only_exact_loopback_hosts(make_api, serve, host) -> None:
    api = make_api(local=True)
    port = serve(api)
    body = json.dumps({"dataset": "demo"}).encode()
    status, _, raw = http_request(port, "POST", "/forecasts", body,
                                  [("Host", host.format(port=port)),
                                   ("Content-Type", "application/json")], skip_host=True)
    assert status == 403, (host, raw)
    assert "error" in json.loads(raw)
    assert not api.service.runs()


def test_duplicate_or_missing_host_headers_are_refused(make_api, serve) -> None:
    api = make_api(local=True)
    port = serve(api)
    twice = [("Host", f"127.0.0.1:{port}"), ("Host", "evil.example")]
    assert http_request(port, "GET", "/forecasts", None, twice, skip_host=True)[0] == 403
    same_twice = [("Host", f"127.0.0.1:{port}"), ("Host", f"127.0.0.1:{port}")]
    assert http_request(port, "GET", "/forecasts", None, same_twice, skip_host=True)[0] == 403
    assert _raw_request(port, b"GET /forecasts HTTP/1.0\r\n\r\n") == 403
    for good in (f"127.0.0.1:{port}", f"localhost:{port}", f"LOCALHOST:{port}", "localhost",
                 f"[::1]:{port}"):
        status, _, raw = http_request(port, "GET", "/forecasts", None, [("Host", good)],
                                      skip_host=True)
        assert status == 200, (good, raw)


@pytest.mark.parametrize(("proto", "scheme"), [
    ("https", "https"), ("HTTP", "http"), ("javascript", "http"), ("https://evil.example", "http"),
    ("ftp", "http"), ("http\tx", "http"), ("", "http")])
def test_links_use_only_a_valid_forwarded_proto(make_api, serve, proto, scheme) -> None:
    api = make_api(local=True)
    links: list[str] = []
    api.launcher._notifier = lambda job, store, error: links.append(job.status_url)
    port = serve(api)
    body = json.dumps({"dataset": "demo", "horizons": [30]}).encode()
    status, headers, raw = http_request(port, "POST", "/forecasts", body,
                                        {"Content-Type": "application/json",
                                         "X-Forwarded-Proto": proto})
    assert status == 202, raw
    answer = json.loads(raw)
    expected = f"{scheme}://127.0.0.1:{port}/forecasts/{answer['run_id']}"
    assert answer["status_url"] == headers["location"] == expected
    api.wait()
    assert links == [expected]  # the Slack link


@pytest.mark.parametrize("host", [
    "api.example.com:443@evil.example", "api.example.com, evil.example", "api.example.com evil",
    "api.example.com/evil", "evil.example\\@api", "api.example.com:", "api.example.com:x",
    "-bad.example.com", "bad..example", "\u00e9vil.example", "api.example.com\r\nX-A: b",
    "a" * 64 + ".example"])
def test_the_app_refuses_a_host_no_link_may_be_built_from(api, host) -> None:
    status, answer, headers = api.submit({"dataset": "demo"}, headers={"Host": host})
    _refused(answer, status, headers, "Host", field="Host")
    assert not api.service.runs() and not api.recorder.calls
    status, answer, _ = api.call("GET", "/forecasts", headers={"Host": host})
    assert status == 400 and answer["field"] == "Host"


def test_the_app_accepts_normal_host_names_and_ignores_odd_protos(api) -> None:
    for host, proto, origin in [
            ("a1b2c3d4e5.execute-api.eu-west-1.amazonaws.com", "https",
             "https://a1b2c3d4e5.execute-api.eu-west-1.amazonaws.com"),
            ("ltv.example.com:8443", "https, http", "https://ltv.example.com:8443"),
            ("10.0.0.7:8000", "gopher", "http://10.0.0.7:8000"),
            ("[2001:db8::1]:8000", "HTTPS", "https://[2001:db8::1]:8000")]:
        status, answer, headers = api.submit({"dataset": "demo", "horizons": [30]},
                                             headers={"Host": host, "X-Forwarded-Proto": proto})
        assert status == 202, answer
        assert urlsplit(answer["status_url"])._replace(path="").geturl() == origin + "/prod"[:0]
        assert answer["status_url"].startswith(f"{origin}/prod/forecasts/")
        assert headers["location"] == answer["status_url"]


def test_two_host_headers_in_an_event_are_refused(api, rest, parse) -> None:
    event = rest("POST", "/forecasts", body={"dataset": "demo"})
    event["multiValueHeaders"]["Host"] = ["api.example.com", "evil.example"]
    with api._lock:
        status, answer, _ = parse(api.app.resolve(event, None))
    assert status == 400 and answer["field"] == "Host"
    assert not api.service.runs()


@pytest.mark.parametrize(("head", "status"), [
    (b"Content-Length: +2\r\n", 400), (b"Content-Length: 1_0\r\n", 400),
    (b"Content-Length: -1\r\n", 400), (b"Content-Length: \xd9\xa5\r\n", 400),
    (b"Content-Length: 2\r\nContent-Length: 3\r\n", 400),
    (b"Transfer-Encoding: chunked\r\n", 411)])
def test_ltv_serve_refuses_odd_body_framing(make_api, serve, head, status) -> None:
    api = make_api(local=True)
    port = serve(api)
    request = (b"POST /forecasts HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n" % port + head
               + b"Content-Type: application/json\r\n\r\n{}")
    assert _raw_request(port, request) == status
    assert not api.service.runs()


def test_an_unknown_method_is_a_json_405(make_api, serve) -> None:
    port = serve(make_api(local=True))
    for method in ("FOO", "PROPFIND", "get"):
        status, headers, raw = http_request(port, method, "/forecasts")
        assert status == 405 and headers["content-type"] == "application/json", raw
        assert "not allowed" in json.loads(raw)["error"]
