"""Fixtures for the HTTP API tests: sample datasets, real API Gateway events, services."""

from __future__ import annotations

import base64
import http.client
import json
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from ltvcore.api import ForecastService, LocalLauncher, create_app
from ltvcore.api.datasets import LocalDatasets
from ltvcore.runs.store import open_store
from ltvcore.sample import write_sample
from tests import browser as browser_module

ACCOUNT = "123456789012"
API_ID = "a1b2c3d4e5"
STAGE = "prod"
ALICE_ARN = f"arn:aws:sts::{ACCOUNT}:assumed-role/MarketingAnalyst/alice@example.com"




@pytest.fixture(scope="session")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``demo`` (CSV, with installs and spend) and ``bad`` (a negative revenue) datasets."""
    root = tmp_path_factory.mktemp("datasets")
    write_sample(root / "demo", install_days=5, observed_days=7, n_campaigns=3,
                 users_per_day=40)
    (root / "demo" / "truth.csv").unlink()
    bad = root / "bad"
    bad.mkdir()
    lines = (root / "demo" / "events.csv").read_text().splitlines()
    user, date, _ = lines[1].split(",")
    (bad / "events.csv").write_text("\n".join([lines[0], f"{user},{date},-5.00", *lines[2:]])
                                    + "\n")
    (root / "empty").mkdir()  # not a dataset: no events file
    return root


def rest_event(method: str, path: str, *, body: Any = None, headers: dict[str, str] | None = None,
               query: dict[str, str] | None = None, user_arn: str | None = ALICE_ARN,
               resource: str | None = None, raw_body: str | None = None) -> dict[str, Any]:
    """An API Gateway REST API proxy event (payload 1.0) as API Gateway sends it with IAM auth."""
    headers = {"Accept": "application/json",
               "Host": f"{API_ID}.execute-api.eu-west-1.amazonaws.com",
               "User-Agent": "python-requests/2.32", "X-Forwarded-Proto": "https",
               "X-Forwarded-Port": "443", "X-Amzn-Trace-Id": "Root=1-65f0a1b2-0123456789abcdef",
               **(headers or {})}
    if body is not None or raw_body is not None:
        headers.setdefault("Content-Type", "application/json")
    text = raw_body if raw_body is not None else (json.dumps(body) if body is not None else None)
    return {
        "resource": resource or path,
        "path": path,
        "httpMethod": method,
        "headers": headers,
        "multiValueHeaders": {k: [v] for k, v in headers.items()},
        "queryStringParameters": query,
        "multiValueQueryStringParameters": {k: [v] for k, v in query.items()} if query else None,
        "pathParameters": None,
        "stageVariables": None,
        "requestContext": {
            "accountId": ACCOUNT, "apiId": API_ID, "resourceId": "abc123",
            "resourcePath": resource or path, "httpMethod": method, "stage": STAGE,
            "path": f"/{STAGE}{path}", "protocol": "HTTP/1.1",
            "domainName": f"{API_ID}.execute-api.eu-west-1.amazonaws.com",
            "domainPrefix": API_ID, "requestId": str(uuid.uuid4()),
            "extendedRequestId": "Xy1AbFakeId=", "requestTime": "09/Apr/2026:12:34:56 +0000",
            "requestTimeEpoch": 1775738096000,
            "identity": {"accountId": ACCOUNT, "caller": "AROAEXAMPLEID:alice@example.com",
                         "user": "AROAEXAMPLEID:alice@example.com", "userArn": user_arn,
                         "accessKey": "ASIAEXAMPLE", "sourceIp": "203.0.113.7",
                         "userAgent": "python-requests/2.32", "cognitoIdentityId": None,
                         "cognitoIdentityPoolId": None, "principalOrgId": None}
            if user_arn else {"sourceIp": "203.0.113.7", "userAgent": "curl/8.5"},
        },
        "body": text,
        "isBase64Encoded": False,
    }


def reply(response: dict[str, Any]) -> tuple[int, Any, dict[str, str]]:
    """(status, parsed JSON body or text, headers) of a proxy response."""
    body = response.get("body") or ""
    if response.get("isBase64Encoded"):
        body = base64.b64decode(body).decode()
    headers = {k.lower(): v for k, v in (response.get("headers") or {}).items()}
    for k, values in (response.get("multiValueHeaders") or {}).items():
        headers[k.lower()] = values[-1]
    if headers.get("content-type", "").startswith("application/json"):
        body = json.loads(body)
    return response["statusCode"], body, headers


class Recorder:
    """Counts computations and records notifications (and can slow computations down)."""

    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay
        self.calls: list[str] = []
        self.notified: list[tuple[str, str | None]] = []
        self._lock = threading.Lock()

    def compute(self, request, **kwargs):
        from ltvcore.workflow.run import forecast_to_store

        with self._lock:
            self.calls.append(repr(request))
        if self.delay:
            threading.Event().wait(self.delay)
        return forecast_to_store(request, **kwargs)

    def notify(self, job, store, error) -> None:
        with self._lock:
            self.notified.append((job.run_id, error))


class Api:
    """A service plus its Powertools app, called with API Gateway events."""

    def __init__(self, service: ForecastService, recorder: Recorder) -> None:
        self.service = service
        self.launcher: LocalLauncher = service.launcher  # type: ignore[assignment]
        self.recorder = recorder
        self.app = create_app(service)
        self._lock = threading.Lock()

    def call(self, method: str, path: str, **kwargs: Any) -> tuple[int, Any, dict[str, str]]:
        with self._lock:  # one event at a time per resolver, as in Lambda and ltv serve
            return reply(self.app.resolve(rest_event(method, path, **kwargs), None))

    def submit(self, body: dict[str, Any], **kwargs: Any) -> tuple[int, Any, dict[str, str]]:
        return self.call("POST", "/forecasts", body=body, **kwargs)

    def wait(self, timeout: float = 60.0) -> None:
        assert self.launcher.wait_idle(timeout), "forecasts did not finish in time"


@pytest.fixture
def make_api(tmp_path: Path, data_dir: Path) -> Iterator[Callable[..., Api]]:
    made: list[Api] = []

    def make(*, local: bool = False, delay: float = 0.0, workers: int = 2,
             datasets: Any = None, store_dir: Path | None = None, max_pending: int = 256) -> Api:
        store = open_store(store_dir or tmp_path / f"store{len(made)}")
        recorder = Recorder(delay)
        launcher = LocalLauncher(store, workers=workers, compute=recorder.compute,
                                 notifier=recorder.notify, max_pending=max_pending)
        service = ForecastService(store=store, datasets=datasets or LocalDatasets(data_dir),
                                  launcher=launcher, local=local)
        api = Api(service, recorder)
        made.append(api)
        return api

    yield make
    for api in made:
        api.launcher.wait_idle(60)
        api.launcher.shutdown()


@pytest.fixture
def api(make_api: Callable[..., Api]) -> Api:
    return make_api()


@pytest.fixture
def rest() -> Callable[..., dict[str, Any]]:
    """Builder of API Gateway REST proxy events (see :func:`rest_event`)."""
    return rest_event


@pytest.fixture
def parse() -> Callable[[dict[str, Any]], tuple[int, Any, dict[str, str]]]:
    """(status, body, lower-cased headers) of a proxy response."""
    return reply


def http_request(port: int, method: str, path: str, body: bytes | None = None,
                 headers: dict[str, str] | list[tuple[str, str]] | None = None, *,
                 skip_host: bool = False) -> tuple[int, dict[str, str], bytes]:
    """One request over a fresh connection: (status, lower-cased headers, body bytes).

    With ``skip_host`` the headers are sent as given (a list may repeat one, or omit Host).
    """
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        if skip_host:
            connection.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
            pairs = headers.items() if isinstance(headers, dict) else headers or []
            for name, value in pairs:
                connection.putheader(name, value)
            if body:
                connection.putheader("Content-Length", str(len(body)))
            connection.endheaders(body)
        else:
            connection.request(method, path, body=body, headers=dict(headers or {}))
        response = connection.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        connection.close()


@pytest.fixture
def serve() -> Iterator[Callable[[Any], int]]:
    """``serve(api)``: the app behind ``ltv serve``'s HTTP server on a free port; the port."""
    from ltvcore.cli.serve import make_server

    servers = []

    def start(api: Api) -> int:
        server = make_server(api.app, port=0, quiet=True)
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                         daemon=True).start()
        servers.append(server)
        return server.server_address[1]

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.fixture
def browser_cls():
    if browser_module.CHROMIUM is None:
        pytest.skip("Chromium is not installed (run scripts/ensure-chromium.sh as root)")
    return browser_module.Browser
