"""``ltv serve``: HTTP requests become API Gateway events for the same app."""

from __future__ import annotations

import base64
import http.client
import json
import threading

import pytest

from ltvcore.cli import build_parser
from ltvcore.cli.serve import make_server, to_event


def test_requests_become_rest_proxy_events() -> None:
    event = to_event("POST", "/forecasts/abc%20d?format=json&x=1&x=2",
                     [("Host", "127.0.0.1:8000"), ("Content-Type", "application/json"),
                      ("X-Ltv-User", "carol"), ("Accept", "a"), ("Accept", "b")],
                     b'{"dataset": "demo"}')
    assert event["httpMethod"] == "POST" and event["path"] == "/forecasts/abc d"
    assert event["queryStringParameters"] == {"format": "json", "x": "2"}
    assert event["multiValueQueryStringParameters"] == {"format": ["json"], "x": ["1", "2"]}
    assert event["headers"]["X-Ltv-User"] == "carol"
    assert event["multiValueHeaders"]["Accept"] == ["a", "b"]
    assert event["body"] == '{"dataset": "demo"}' and event["isBase64Encoded"] is False
    context = event["requestContext"]
    assert context["path"] == "/forecasts/abc d" and context["httpMethod"] == "POST"
    assert context["identity"]["sourceIp"] == "127.0.0.1" and context["identity"]["userArn"] is None
    binary = to_event("POST", "/x", [("Content-Type", "application/octet-stream")], b"\x00\xff")
    assert binary["isBase64Encoded"] and base64.b64decode(binary["body"]) == b"\x00\xff"
    bare = to_event("GET", "/", [], b"")
    assert bare["body"] is None and bare["queryStringParameters"] is None


def test_the_serve_subcommand_is_wired() -> None:
    args = build_parser().parse_args(["serve", "--port", "0", "--data-dir", "d", "--store", "s"])
    assert (args.port, args.data_dir, args.store, args.host) == (0, "d", "s", "127.0.0.1")


@pytest.fixture
def served(make_api):
    api = make_api(local=True)
    server = make_server(api.app, port=0, quiet=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield api, server.server_address[1]
    server.shutdown()
    server.server_close()


def request(port: int, method: str, path: str, body: bytes | None = None,
            headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        connection.close()


def test_served_api_round_trip(served) -> None:
    api, port = served
    body = json.dumps({"dataset": "demo", "horizons": [30]}).encode()
    status, headers, raw = request(port, "POST", "/forecasts", body,
                                   {"Content-Type": "application/json", "X-Ltv-User": "dave"})
    assert status == 202, raw
    answer = json.loads(raw)
    assert answer["status_url"] == f"http://127.0.0.1:{port}/forecasts/{answer['run_id']}"
    api.wait()
    status, headers, raw = request(port, "GET", f"/forecasts/{answer['run_id']}")
    run = json.loads(raw)
    assert status == 200 and run["status"] == "succeeded" and run["requested_by"] == "dave"
    status, headers, raw = request(port, "GET", "/", headers={"Accept": "text/html"})
    assert status == 200 and headers["content-type"].startswith("text/html")
    assert int(headers["content-length"]) == len(raw)
    status, headers, raw = request(port, "HEAD", f"/forecasts/{answer['run_id']}/files/curve.csv")
    assert status == 200 and raw == b"" and int(headers["content-length"]) > 0
    status, _, raw = request(port, "GET", "/forecasts/nope")
    assert status == 404 and json.loads(raw) == {"error": "no forecast run 'nope'"}


def test_other_hosts_and_sites_are_refused(served) -> None:
    _, port = served
    assert request(port, "GET", "/", headers={"Host": "attacker.example"})[0] == 403
    body = json.dumps({"dataset": "demo"}).encode()
    status, _, _ = request(port, "POST", "/forecasts", body,
                           {"Content-Type": "application/json",
                            "Origin": "https://attacker.example"})
    assert status == 403
    assert request(port, "GET", "/", headers={"Origin": "null"})[0] == 403
    assert request(port, "POST", "/forecasts", None, {"Content-Length": "x"})[0] == 400
    same = {"Content-Type": "application/json", "Origin": f"http://127.0.0.1:{port}",
            "Host": f"127.0.0.1:{port}"}
    assert request(port, "POST", "/forecasts", b"{}", same)[0] == 400  # reached the app
    # A body over the limit is refused from its Content-Length alone, before it is read (sending
    # the megabyte itself would race the refusal and break the client's pipe).
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.putrequest("POST", "/forecasts")
        connection.putheader("Content-Type", "application/json")
        connection.putheader("Content-Length", str((1 << 20) + 2))
        connection.endheaders()
        assert connection.getresponse().status == 413
    finally:
        connection.close()
