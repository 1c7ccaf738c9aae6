"""``ltv serve``: the form and HTTP API on localhost, through the very handlers API Gateway calls.

Each HTTP request becomes an API Gateway REST proxy event (as API Gateway would send it for a
``{proxy+}`` resource) and goes to the app of :mod:`ltvcore.api`; the proxy response is
written back. Accepted forecasts run on background worker threads on the local store.

Binds to 127.0.0.1 by default. Since a web page in the same browser could otherwise reach
it, requests whose ``Host`` is not a loopback name, or whose ``Origin`` is another site, are
refused (403).
"""

from __future__ import annotations

import argparse
import base64
import sys
import threading
import time
import traceback
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

__all__ = ["add_parser", "make_server", "to_event"]

MAX_BODY = 1 << 20
_LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "[::1]")
_TEXT_TYPES = ("text/", "application/json", "application/javascript", "application/xml",
               "application/x-www-form-urlencoded")


def to_event(method: str, target: str, headers: list[tuple[str, str]], body: bytes, *,
             source_ip: str = "127.0.0.1") -> dict[str, Any]:
    """An API Gateway REST proxy event (payload 1.0) for one HTTP request."""
    split = urlsplit(target)
    path = unquote(split.path) or "/"
    single: dict[str, str] = {}
    multi: dict[str, list[str]] = {}
    for name, value in headers:
        single[name] = value
        multi.setdefault(name, []).append(value)
    query = parse_qsl(split.query, keep_blank_values=True)
    query_single = {k: v for k, v in query} or None
    query_multi: dict[str, list[str]] | None = {}
    for k, v in query:
        query_multi.setdefault(k, []).append(v)
    content_type = next((v for k, v in headers if k.lower() == "content-type"), "")
    is_text = not body or content_type.startswith(_TEXT_TYPES)
    now = time.time()
    return {
        "resource": "/{proxy+}",
        "path": path,
        "httpMethod": method,
        "headers": single or None,
        "multiValueHeaders": multi or None,
        "queryStringParameters": query_single,
        "multiValueQueryStringParameters": query_multi or None,
        "pathParameters": {"proxy": path.lstrip("/")},
        "stageVariables": None,
        "requestContext": {
            "resourceId": "local", "resourcePath": "/{proxy+}", "httpMethod": method,
            "extendedRequestId": uuid.uuid4().hex, "requestTime": time.strftime(
                "%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
            "path": path, "accountId": "000000000000", "protocol": "HTTP/1.1",
            "stage": "local", "domainPrefix": "localhost", "requestTimeEpoch": int(now * 1000),
            "requestId": str(uuid.uuid4()), "domainName": single.get("Host", "localhost"),
            "apiId": "local",
            "identity": {"sourceIp": source_ip, "userAgent": single.get("User-Agent"),
                         "caller": None, "user": None, "userArn": None, "accessKey": None,
                         "accountId": None, "cognitoIdentityId": None},
        },
        "body": (body.decode("utf-8", errors="replace") if is_text
                 else base64.b64encode(body).decode("ascii")) if body else None,
        "isBase64Encoded": bool(body) and not is_text,
    }


def _host_name(header: str | None) -> str:
    """``Host`` without its port (``[::1]:8000`` → ``[::1]``)."""
    text = (header or "").strip().lower()
    if text.startswith("["):
        return text.split("]")[0] + "]"
    return text.rsplit(":", 1)[0]


class _Handler(BaseHTTPRequestHandler):
    server_version = "ltv-serve"
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        self._handle()

    def do_POST(self) -> None:  # noqa: N802
        self._handle()

    def do_HEAD(self) -> None:  # noqa: N802
        self._handle(head=True)

    do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_POST

    def _refuse(self, status: int, message: str) -> None:
        body = ('{"error": "%s"}' % message).encode()
        self.close_connection = True  # an unread body must not be taken for the next request
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)

    def _handle(self, head: bool = False) -> None:
        server: Any = self.server
        if server.check_host and _host_name(self.headers.get("Host")) not in _LOOPBACK_HOSTS:
            return self._refuse(403, "ltv serve answers only requests addressed to localhost")
        origin = self.headers.get("Origin")
        if origin and urlsplit(origin).netloc != self.headers.get("Host"):
            return self._refuse(403, "cross-site requests are refused")
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            return self._refuse(400, "invalid Content-Length")
        if length > MAX_BODY or length < 0:
            return self._refuse(413, "request body too large")
        body = self.rfile.read(length) if length else b""
        event = to_event("GET" if head else self.command, self.path,
                         list(self.headers.items()), body, source_ip=self.client_address[0])
        try:
            response = server.resolve(event)
        except Exception:  # noqa: BLE001 - the app answers errors itself; this is a last resort
            traceback.print_exc()
            return self._refuse(500, "internal error")
        payload = response.get("body") or ""
        data = (base64.b64decode(payload) if response.get("isBase64Encoded")
                else payload.encode("utf-8"))
        self.send_response(int(response.get("statusCode", 500)))
        sent = set()
        for name, values in (response.get("multiValueHeaders") or {}).items():
            for value in values:
                self.send_header(name, value)
            sent.add(name.lower())
        for name, value in (response.get("headers") or {}).items():
            if name.lower() not in sent:
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if not head:
            self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        if getattr(self.server, "quiet", False):
            return
        sys.stderr.write(f"{self.address_string()} - {format % args}\n")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128


def make_server(app: Any, *, host: str = "127.0.0.1", port: int = 8000, quiet: bool = False,
                check_host: bool = True) -> ThreadingHTTPServer:
    """A threading HTTP server feeding ``app`` (a Powertools resolver) proxy events.

    The resolver keeps the current event on its class, so calls into it are serialised;
    the forecasts themselves run on the launcher's worker threads.
    """
    lock = threading.Lock()

    def resolve(event: dict[str, Any]) -> dict[str, Any]:
        with lock:
            return app.resolve(event, None)

    server = _Server((host, port), _Handler)
    server.resolve = resolve  # type: ignore[attr-defined]
    server.quiet = quiet  # type: ignore[attr-defined]
    server.check_host = check_host  # type: ignore[attr-defined]
    return server


def _serve(args: argparse.Namespace) -> int:
    from ltvcore.api import ForecastService, LocalLauncher, create_app
    from ltvcore.api.datasets import LocalDatasets
    from ltvcore.errors import InputError
    from ltvcore.runs.store import open_store

    data_dir = Path(args.data_dir)
    if not data_dir.is_dir():
        raise InputError(f"--data-dir {data_dir} is not a directory of datasets "
                         "(one folder per dataset holding events.csv|parquet)")
    if not 1 <= args.workers <= 64:
        raise InputError("--workers must be in [1, 64]")
    store = open_store(args.store)
    launcher = LocalLauncher(store, workers=args.workers)
    service = ForecastService(store=store, datasets=LocalDatasets(data_dir), launcher=launcher,
                              local=True)
    loopback = args.host in ("127.0.0.1", "localhost", "::1")
    server = make_server(create_app(service), host=args.host, port=args.port, quiet=args.quiet,
                         check_host=loopback)
    host, port = server.server_address[:2]
    if not loopback:
        print(f"warning: listening on {args.host}: anyone who can reach this address can start "
              "forecasts in any name", file=sys.stderr)
    print(f"ltv serve: http://{host}:{port}/  (data {data_dir}, store {store.uri}; Ctrl-C stops)",
          flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        launcher.shutdown(wait=False)
    return 0


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add ``ltv serve`` to the ``ltv`` command line."""
    parser = subparsers.add_parser(
        "serve", help="the form and HTTP API on localhost",
        description="Serve the internal form and the HTTP API (docs/interface.md) on this machine; "
                    "accepted forecasts run in the background on the local store.")
    parser.add_argument("--port", type=int, default=8000, help="port (default 8000; 0: any free)")
    parser.add_argument("--data-dir", default="data",
                        help="directory of datasets, one folder each (default ./data)")
    parser.add_argument("--store", default=None,
                        help="artifact store directory (default $LTV_STORE or ./ltv-runs)")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to bind (default 127.0.0.1: this machine only)")
    parser.add_argument("--workers", type=int, default=2, help="forecasts computed at once")
    parser.add_argument("--quiet", action="store_true", help="no access log")
    parser.set_defaults(func=_serve)
    return parser
