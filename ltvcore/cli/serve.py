"""``ltv serve``: the form and HTTP API on localhost, through the very handlers API Gateway calls.

Each HTTP request becomes an API Gateway REST proxy event (as API Gateway would send it for a
``{proxy+}`` resource) and goes to the app of :mod:`ltvcore.api`; the proxy response is
written back. Accepted forecasts run on background worker threads on the local store.

Binds to 127.0.0.1 by default. Since a web page in the same browser could otherwise reach
it (DNS rebinding), requests whose ``Host`` is not exactly one loopback name (``127.0.0.1``,
``localhost``, ``[::1]``, each with an optional ``:port``), or whose ``Origin`` is another
site, are refused (403). Links the app builds come from that ``Host`` and from an
``X-Forwarded-Proto`` of ``http`` or ``https`` (any other is dropped).

On start the launcher marks the runs a killed server left queued or running as interrupted;
Ctrl-C (or SIGTERM) stops accepting, marks the queue interrupted and lets running forecasts
finish (a second Ctrl-C abandons them, marked interrupted too).
"""

from __future__ import annotations

import argparse
import base64
import faulthandler
import json
import os
import re
import signal
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
# Exactly a loopback name and an optional port: "localhost:1@evil.example" or
# "localhost:1, evil.example" would otherwise pass a check on the part before the last colon.
_LOOPBACK_HOST = re.compile(r"(?:127\.0\.0\.1|localhost|\[::1\])(?::[0-9]{1,5})?",
                            re.IGNORECASE | re.ASCII)
_ANY_HOST = re.compile(r"(?:[A-Za-z0-9](?:[A-Za-z0-9.-]{0,253}[A-Za-z0-9])?"
                       r"|\[[0-9A-Fa-f:.]{2,45}\])(?::[0-9]{1,5})?")
_CONTENT_LENGTH = re.compile(r"[0-9]{1,10}")  # int() would take "+5", " 5", "5_0" and "٥"
_PROTOS = ("http", "https")
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
    query_multi: dict[str, list[str]] = {}
    for k, v in query:
        query_multi.setdefault(k, []).append(v)
    content_type = next((v for k, v in headers if k.lower() == "content-type"), "")
    is_text = not body or content_type.lower().startswith(_TEXT_TYPES)
    text = ""
    if is_text and body:
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            # the app must see the bytes to refuse them; U+FFFD in their place would pass
            is_text = False
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
        "body": (text if is_text else base64.b64encode(body).decode("ascii")) if body else None,
        "isBase64Encoded": bool(body) and not is_text,
    }


def _forwarded_headers(headers: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """``headers`` without an ``X-Forwarded-Proto`` other than one ``http`` or ``https``."""
    protos = [v for k, v in headers if k.lower() == "x-forwarded-proto"]
    if len(protos) == 1 and protos[0].strip().lower() in _PROTOS:
        return headers
    return [(k, v) for k, v in headers if k.lower() != "x-forwarded-proto"]


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
        body = json.dumps({"error": message}).encode()
        self.close_connection = True  # an unread body must not be taken for the next request
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def send_error(self, code: int, message: str | None = None,
                   explain: str | None = None) -> None:
        """http.server's own refusals (bad request line, unknown method) as JSON, like the app's."""
        if code == 501:  # an unknown method: the client's mistake (4xx), not the server's
            code, message = 405, f"method {self.command} is not allowed (GET, HEAD, POST)"
        try:
            self._refuse(code, message or f"HTTP {code}")
        except OSError:
            pass

    def _host(self) -> str | None:
        """The one ``Host`` header, or None when it is missing, repeated or not a host."""
        hosts = self.headers.get_all("Host") or []
        host = hosts[0].strip(" \t") if len(hosts) == 1 else ""
        pattern = _LOOPBACK_HOST if getattr(self.server, "check_host", True) else _ANY_HOST
        return host if pattern.fullmatch(host) else None

    def _handle(self, head: bool = False) -> None:
        server: Any = self.server
        host = self._host()
        if host is None:
            if server.check_host:
                return self._refuse(403, "ltv serve answers only requests addressed to localhost")
            return self._refuse(400, "invalid Host header")
        origin = self.headers.get_all("Origin") or []
        if origin and (len(origin) > 1 or origin[0].lower() not in
                       {f"{proto}://{host.lower()}" for proto in _PROTOS}):
            return self._refuse(403, "cross-site requests are refused")
        if self.headers.get("Transfer-Encoding"):
            return self._refuse(411, "send the body with a Content-Length (no chunked encoding)")
        lengths = self.headers.get_all("Content-Length") or ["0"]
        if len(set(lengths)) > 1 or not _CONTENT_LENGTH.fullmatch(lengths[0].strip(" \t")):
            return self._refuse(400, "invalid Content-Length")
        length = int(lengths[0])
        if length > MAX_BODY:
            return self._refuse(413, "request body too large")
        body = self.rfile.read(length) if length else b""
        event = to_event("GET" if head else self.command, self.path,
                         _forwarded_headers(list(self.headers.items())), body,
                         source_ip=self.client_address[0])
        try:
            response = server.resolve(event)
            payload = response.get("body") or ""
            data = (base64.b64decode(payload) if response.get("isBase64Encoded")
                    else payload.encode("utf-8"))
            status = int(response.get("statusCode", 500))
        except Exception:  # noqa: BLE001 - the app answers errors itself; this is a last resort
            traceback.print_exc()
            return self._refuse(500, "internal error")
        self.send_response(status)
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
    host, port = str(server.server_address[0]), server.server_address[1]
    if not loopback:
        print(f"warning: listening on {args.host}: anyone who can reach this address can start "
              "forecasts in any name", file=sys.stderr)
    print(f"ltv serve: http://{host}:{port}/  (data {data_dir}, store {store.uri}; Ctrl-C stops)",
          flush=True)
    # SIGTERM (docker stop, systemd) stops as Ctrl-C does instead of killing mid-write
    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, signal.default_int_handler)
        if hasattr(signal, "SIGUSR1"):  # `kill -USR1 <pid>`: where every thread is, on stderr
            faulthandler.register(signal.SIGUSR1, all_threads=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        _stop(launcher)
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    return 0


def _stop(launcher: Any) -> None:
    """Stop the launcher before the interpreter does.

    Queued runs are marked interrupted; running ones finish, unless a second Ctrl-C abandons
    them (marked interrupted). Returning with forecasts still running is what must not happen:
    interpreter shutdown makes every thread pool (pyarrow's too) refuse work, and the forecast
    would fail with "cannot schedule new futures after interpreter shutdown".
    """
    running = launcher.running()
    if running:
        print(f"ltv serve: stopping; waiting for {running} running forecast(s) "
              "(Ctrl-C again abandons them)", file=sys.stderr, flush=True)
    try:
        launcher.shutdown(wait=True)
    except KeyboardInterrupt:
        launcher.shutdown(wait=False)
        print("ltv serve: abandoned the running forecasts (marked interrupted)",
              file=sys.stderr, flush=True)
        sys.stdout.flush()
        # the worker threads cannot be stopped and the interpreter would wait for them
        os._exit(130)


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
