"""Delivery to a local stand-in for Slack: fan-out, retries, failures recorded, no URL leaks."""

from __future__ import annotations

import io
import json
import logging
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from pydantic import SecretStr
from slack_sdk.http_retry import HttpRequest, HttpResponse, RateLimitErrorRetryHandler, RetryState

from ltvcore.notify import (
    WebhookConfig,
    deliver,
    dispatch,
    failure_message,
    print_message,
    select_channels,
)
from ltvcore.notify.delivery import SDK_LOGGER_NAME, _Attempts, _Counted, _retry_after_at_most, redact

PAYLOAD = failure_message(run_id="run-1", requested_by="maria", dataset="mobile_q3",
                          error="events.csv, column 'revenue', row 3: negative revenue",
                          where_to_look="https://example.com/runs/run-1")
FAST = dict(backoff_factor=0.02, timeout=5)


class FakeSlack:
    """Records every POST (path, arrival time, JSON body); answers from a per-path script."""

    def __init__(self) -> None:
        self.posts: list[tuple[str, float, dict]] = []
        self.scripts: dict[str, list[tuple[int, dict, str]]] = {}
        self.lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with fake.lock:
                    fake.posts.append((self.path, time.monotonic(), json.loads(body)))
                    script = fake.scripts.get(self.path, [])
                    status, headers, text = (script.pop(0) if len(script) > 1 else
                                             script[0] if script else (200, {}, "ok"))
                data = text.encode()
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):  # the stand-in must not print paths either
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever,
                                       kwargs={"poll_interval": 0.05}, daemon=True)

    def url(self, name: str) -> str:
        host, port = self.server.server_address
        return f"http://{host}:{port}/services/T0TEAM/B{name.upper()}/{name}SeCrEtToKeN"

    def script(self, name: str, *responses: tuple[int, dict, str]) -> str:
        url = self.url(name)
        self.scripts[url.split(f":{self.server.server_address[1]}", 1)[1]] = list(responses)
        return url

    def posts_for(self, name: str) -> list[tuple[str, float, dict]]:
        return [p for p in self.posts if p[0].endswith(f"/{name}SeCrEtToKeN")]


@pytest.fixture
def slack(monkeypatch):
    for var in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy"):
        monkeypatch.delenv(var, raising=False)
    fake = FakeSlack()
    fake.thread.start()
    yield fake
    fake.server.shutdown()
    fake.server.server_close()


def _closed_port_url() -> str:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens: connection refused
    return f"http://127.0.0.1:{port}/services/T0TEAM/BDEAD/deadSeCrEtToKeN"


def test_delivers_to_each_channel(slack):
    webhooks = {"team": slack.url("team"), "growth": slack.url("growth")}
    report = deliver(PAYLOAD, webhooks, **FAST)
    assert report.ok and report.delivered == ("team", "growth")
    assert [(r.status, r.attempts, r.error) for r in report.results] == [(200, 1, None)] * 2
    for name in ("team", "growth"):
        (post,) = slack.posts_for(name)
        assert post[2]["blocks"] == PAYLOAD["blocks"] and post[2]["text"] == PAYLOAD["text"]


def test_retries_429_honouring_retry_after(slack):
    url = slack.script("team", (429, {"Retry-After": "1"}, "rate_limited"), (200, {}, "ok"))
    report = deliver(PAYLOAD, {"team": url}, **FAST)
    (result,) = report.results
    assert result.ok and result.attempts == 2
    first, second = slack.posts_for("team")
    assert second[1] - first[1] >= 0.95


def test_retry_after_beyond_the_bound_is_not_waited_for(slack):
    url = slack.script("team", (429, {"Retry-After": "120"}, "rate_limited"))
    started = time.monotonic()
    (result,) = deliver(PAYLOAD, {"team": url}, max_retry_after=5, **FAST).results
    assert time.monotonic() - started < 5
    assert (result.ok, result.status, result.attempts) == (False, 429, 1)


def test_retries_500_then_succeeds(slack):
    url = slack.script("team", (500, {}, "oops"), (503, {}, "busy"), (200, {}, "ok"))
    (result,) = deliver(PAYLOAD, {"team": url}, **FAST).results
    assert (result.ok, result.status, result.attempts) == (True, 200, 3)
    assert len(slack.posts_for("team")) == 3


def test_secret_str_targets_are_posted_to(slack):
    report = deliver(PAYLOAD, {"team": SecretStr(slack.url("team"))}, **FAST)
    assert report.delivered == ("team",) and len(slack.posts_for("team")) == 1


def test_counted_handler_keeps_slack_sdks_decision_and_only_narrows_it():
    """Pins what the wrapper relies on: slack_sdk's public can_retry (429 only, shared budget)."""
    attempts = _Attempts()
    handler = _Counted(RateLimitErrorRetryHandler(max_retry_count=2), attempts,
                       allow=lambda response: _retry_after_at_most(response, 5))
    request = HttpRequest(method="POST", url="http://127.0.0.1/x", headers={})
    state = RetryState()

    def limited(wait: str, status: int = 429) -> HttpResponse:
        return HttpResponse(status_code=status, headers={"Retry-After": [wait]})

    assert handler.can_retry(state=state, request=request, response=limited("1"))
    assert not handler.can_retry(state=state, request=request, response=limited("1", status=500))
    assert not handler.can_retry(state=state, request=request, response=limited("120"))
    assert not handler.can_retry(state=state, request=request, response=limited("soon"))
    handler.prepare_for_next_attempt(state=state, request=request, response=limited("0"))
    assert (attempts.retries, state.current_attempt) == (1, 1)
    state.increment_current_attempt()  # another handler's retry spends the same budget
    assert not handler.can_retry(state=state, request=request, response=limited("1"))


def test_client_errors_are_not_retried(slack):
    url = slack.script("team", (404, {}, "no_service"))
    (result,) = deliver(PAYLOAD, {"team": url}, **FAST).results
    assert (result.ok, result.status, result.attempts) == (False, 404, 1)
    assert result.error == "HTTP 404: no_service"


def test_failing_channels_do_not_block_the_others_and_are_recorded(slack):
    sink: list[dict] = []
    webhooks = {
        "broken": slack.script("broken", (500, {}, "internal_error")),
        "dead": _closed_port_url(),
        "team": slack.url("team"),
    }
    report = deliver(PAYLOAD, webhooks, max_retries=2, log_sink=sink.append, **FAST)
    by_name = {r.channel: r for r in report.results}
    assert [r.channel for r in report.results] == ["broken", "dead", "team"]
    assert by_name["team"].ok and len(slack.posts_for("team")) == 1
    assert not report.ok and {r.channel for r in report.failed} == {"broken", "dead"}
    broken, dead = by_name["broken"], by_name["dead"]
    assert (broken.status, broken.attempts) == (500, 3) and len(slack.posts_for("broken")) == 3
    assert dead.status is None and dead.attempts == 3
    assert "Connection refused" in dead.error or "URLError" in dead.error
    assert [e["channel"] for e in sink] == ["broken", "dead", "team"]
    assert all(e["event"] == "slack_delivery" for e in sink)
    assert [e["ok"] for e in sink] == [False, False, True]
    json.dumps(sink)  # JSON-able


def test_unknown_requested_channel_is_a_failure_entry_not_an_exception(slack):
    config = WebhookConfig(webhooks={"team": slack.url("team"), "growth": slack.url("growth")},
                           default_channels=("team",), source="test")
    sink: list[dict] = []
    report = dispatch(PAYLOAD, config, ["#growth", "nope", "team"], log_sink=sink.append,
                      **FAST)
    assert [(r.channel, r.ok) for r in report.results] == [
        ("team", True), ("growth", True), ("nope", False)]
    assert report.results[2].attempts == 0 and "not configured" in report.results[2].error
    assert len(slack.posts_for("team")) == 1  # named in the request and a team channel: once
    assert sink[-1]["channel"] == "nope" and sink[-1]["ok"] is False


def test_select_channels_team_plus_requested():
    config = WebhookConfig(webhooks={"team": "https://a/1", "growth": "https://a/2",
                                     "brand": "https://a/3"},
                           default_channels=("team",), source="test")
    targets, unknown = select_channels(config, ["growth", "#growth", "ghost", ""])
    assert list(targets) == ["team", "growth"] and unknown == ["ghost"]
    assert select_channels(config, []) == ({"team": SecretStr("https://a/1")}, [])
    assert "https://a/1" not in repr(targets)  # the targets hold the URLs as SecretStr
    plain, _ = select_channels({"x": "https://a/x", "#y": "https://a/y"}, [])
    assert list(plain) == ["x", "y"]  # a plain mapping: every channel is a team channel
    only_requested, _ = select_channels({"x": "https://a/x"}, ["x"], defaults=[])
    assert list(only_requested) == ["x"]


def test_nothing_configured_prints_instead(slack):
    out = io.StringIO()
    report = dispatch(PAYLOAD, WebhookConfig(), ["growth"], stream=out)
    text = out.getvalue()
    assert report.printed and "LTV forecast failed · run run-1" in text
    assert "negative revenue" in text and "Open the details: https://example.com/runs/run-1" in text
    assert [(r.channel, r.ok) for r in report.results] == [("growth", False)]
    assert slack.posts == []


def test_dispatch_loads_config_from_env_and_never_raises_on_bad_config(slack, monkeypatch):
    for var in ("LTV_SLACK_SECRET_NAME", "LTV_SLACK_CONFIG", "LTV_SLACK_WEBHOOK_URLS"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("LTV_SLACK_WEBHOOK_URLS", f"team={slack.url('team')}")
    report = dispatch(PAYLOAD, requested=[], **FAST)
    assert report.delivered == ("team",) and len(slack.posts_for("team")) == 1

    monkeypatch.setenv("LTV_SLACK_WEBHOOK_URLS", "team=not a url")
    sink: list[dict] = []
    report = dispatch(PAYLOAD, log_sink=sink.append, **FAST)
    assert [(r.channel, r.ok) for r in report.results] == [("(config)", False)]
    assert "LTV_SLACK_WEBHOOK_URLS" in report.results[0].error
    assert sink[0]["channel"] == "(config)"

    monkeypatch.delenv("LTV_SLACK_WEBHOOK_URLS")
    out = io.StringIO()
    assert dispatch(PAYLOAD, stream=out).printed and "run-1" in out.getvalue()


def test_print_message_renders_plain_text():
    out = io.StringIO()
    print_message({"text": "t", "blocks": [
        {"type": "header", "text": {"type": "plain_text", "text": "Title"}},
        {"type": "section", "fields": [{"type": "mrkdwn", "text": "*Dataset*\na&amp;b"}]},
        {"type": "divider"},
        {"type": "section", "text": {"type": "mrkdwn", "text": "*Report*: <https://r/x|Open>"}},
    ]}, out)
    assert out.getvalue().splitlines() == [
        "Title", "=====", "Dataset: a&b", "-" * 40, "Report: Open: https://r/x"]


def test_bad_payload_and_bad_sink_never_raise(slack):
    report = deliver({"text": object()}, {"team": slack.url("team")}, **FAST)
    assert not report.ok and "JSON" in report.results[0].error and slack.posts == []

    def sink(_entry):
        raise RuntimeError("sink down")

    assert deliver(PAYLOAD, {"team": slack.url("team")}, log_sink=sink, **FAST).ok


def test_webhook_url_never_in_logs_report_or_sink(slack, caplog, capfd):
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="slack_sdk")
    # Force slack_sdk's DEBUG branch (it prints the URL there) so the scrubbing filter is tested.
    caplog.set_level(logging.DEBUG, logger=SDK_LOGGER_NAME)
    webhooks = {
        "limited": slack.script("limited", (429, {"Retry-After": "1"}, "rate_limited"),
                                (200, {}, "ok")),
        "broken": slack.script("broken", (500, {}, "err"), (404, {}, "no_service")),
        "dead": _closed_port_url(),
        "team": slack.url("team"),
    }
    sink: list[dict] = []
    report = deliver(PAYLOAD, webhooks, max_retries=1, log_sink=sink.append, **FAST)
    assert [r.ok for r in report.results] == [True, False, False, True]

    logged = caplog.text + "\n".join(r.getMessage() for r in caplog.records)
    assert "Sending a request - url: <url>" in logged  # the SDK did log, scrubbed
    assert "Slack delivery to dead failed" in logged
    captured = capfd.readouterr()
    outputs = [logged, captured.out, captured.err, repr(report), str(report), report.to_json(),
               json.dumps(sink)]
    for url in webhooks.values():
        secret = url.rsplit("/", 1)[1]
        for text in outputs:
            assert url not in text and secret not in text and "/services/" not in text


def test_sdk_logger_quiet_by_default_and_default_slack_sdk_logger_unused(slack, caplog):
    caplog.set_level(logging.DEBUG)
    logging.getLogger(SDK_LOGGER_NAME).setLevel(logging.NOTSET)
    deliver(PAYLOAD, {"team": slack.url("team")}, **FAST)
    assert not [r for r in caplog.records if r.name.startswith("slack_sdk")]
    assert "SeCrEtToKeN" not in caplog.text
    assert logging.getLogger(SDK_LOGGER_NAME).level == logging.INFO


def test_redact_scrubs_urls_and_webhook_paths():
    url = "https://hooks.slack.com/services/T1/B2/abc"
    assert redact(f"failed {url} x") == "failed <url> x"
    assert "abc" not in redact("POST /services/T1/B2/abc HTTP/1.1")
    assert redact(f"[{url}]", [url]) == "[<webhook>]"


def test_a_webhook_error_body_echoing_its_token_never_reaches_the_log(slack, caplog, capfd):
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger=SDK_LOGGER_NAME)  # the SDK logs response bodies there
    url = slack.url("echo")
    path = url.split("/services/", 1)[1]  # T0TEAM/BECHO/echoSeCrEtToKeN
    secret = path.rsplit("/", 1)[1]
    echoes = [f"invalid_token: {path}", f"no_service {url}", json.dumps({"url": url}),
              url.replace("/", "%2F"), f"token {secret} revoked",
              f"hooks.slack.com/services/{path}", path.replace("/", "\\/")]
    for text in echoes:
        slack.scripts.clear()
        webhooks = {"echo": slack.script("echo", (403, {}, text))}
        sink: list[dict] = []
        report = deliver(PAYLOAD, webhooks, max_retries=0, log_sink=sink.append, **FAST)
        assert not report.ok and report.results[0].status == 403
        captured = capfd.readouterr()
        logged = caplog.text + "\n".join(r.getMessage() for r in caplog.records)
        for output in (logged, captured.out, captured.err, report.to_json(), json.dumps(sink)):
            for leak in (secret, path, "SeCrEtToKeN", "T0TEAM/BECHO", "T0TEAM\\/BECHO"):
                assert leak not in output, (text, leak, output[-500:])
        assert "HTTP 403" in report.results[0].error
        caplog.clear()


@pytest.mark.parametrize("text", [
    "T000/B000/XXXXsecret", "invalid_token: T0TEAM/B0CHAN/abcDEF123xyz",
    "https:\\/\\/hooks.slack.com\\/services\\/T1\\/B2\\/abcdef", "services%2FT1%2FB2%2Fabcdef",
    "revoked xoxb-1234-5678-AbCdEf", "token AbC123dEf456GhI789jKl0 revoked",
    "XXXXXXXXXXXXXXXXXXXXXXXX is not valid", "hooks.slack.com/services/T1/B2/abcdef"])
def test_redact_scrubs_bare_token_like_strings(text):
    scrubbed = redact(text)
    for token in ("XXXXsecret", "abcDEF123xyz", "abcdef", "AbCdEf", "AbC123dEf456GhI789jKl0",
                  "XXXXXXXXXXXXXXXXXXXXXXXX", "T000/B000", "T0TEAM/B0CHAN", "B2"):
        assert token not in scrubbed, (text, scrubbed)


def test_redact_keeps_the_words_of_an_error():
    text = ("HTTP 404: no_service; ConnectionRefusedError: [Errno 111] HTTPSConnectionPool "
            "RemoteDisconnected channel_is_archived")
    assert redact(text) == text
