"""The HTTP API of docs/interface.md, HTTP API as Powertools routes: one app for API Gateway and ``ltv serve``.

Routes
------
``GET /``
    The form (HTML).
``POST /forecasts``
    JSON body (:class:`ltvcore.api.models.ForecastBody`) → ``202 {"run_id", "status_url"}``.
``GET /forecasts``
    Recent runs with status, who asked and when (``?limit=N``, default 50).
``GET /forecasts/{run_id}``
    ``{"run_id", "status", "requested_by", "created", "dataset", "summary", "request", ...}``;
    ``error`` when failed; ``files`` (name → URL) when succeeded.
``GET /forecasts/{run_id}/files/{name}``
    One artifact of a complete run (``report.html``, ``forecast.csv``, ``curve.csv``,
    ``params.json``, ``manifest.json``): the bytes locally; on an S3 store a ``302`` to a
    short-lived pre-signed URL.

Content negotiation (the two ``GET /forecasts`` routes): ``?format=html|json`` wins; otherwise
HTML only when the ``Accept`` header ranks ``text/html`` strictly above ``application/json``
(a browser navigating), JSON for everything else (no ``Accept``, ``*/*``, ``fetch``, curl).
Responses say ``Vary: Accept``.

Errors: ``400 {"error", "field"}`` for an invalid request (the message names the field, or
``body``, or the query parameter or header at fault), ``404 {"error"}`` for an unknown run or
route, ``503`` when the local queue is full, and a plain ``500`` for anything else (logged with
its traceback, never returned).

The ``POST /forecasts`` body is parsed here, not by Powertools: strictly UTF-8 (base64 when
``isBase64Encoded``), JSON at most :data:`MAX_JSON_DEPTH` deep, integers of at most
:data:`MAX_NUMBER_DIGITS` digits, finite numbers, no lone surrogates. Powertools' own parsing
turns each of those into an exception of its own (a 500); here each is a 400 naming it, on API
Gateway and under ``ltv serve`` alike. Links (``status_url``, ``Location``, the Slack link) are
built from a validated ``Host`` and ``X-Forwarded-Proto`` only.
"""

from __future__ import annotations

import base64
import binascii
import getpass
import json
import math
import re
from collections.abc import Mapping
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.event_handler.openapi.exceptions import (RequestUnsupportedContentType,
                                                                    RequestValidationError)
from pydantic import ValidationError

from ltvcore.api import pages
from ltvcore.api.launchers import LauncherBusy
from ltvcore.api.models import ForecastBody
from ltvcore.api.service import ARTIFACTS, ForecastService, RunNotFound
from ltvcore.errors import InputError
from ltvcore.runs.store import S3Store

__all__ = ["MAX_JSON_DEPTH", "MAX_NUMBER_DIGITS", "BadRequest", "create_app", "json_body",
           "logger", "requester", "wants_html"]

logger = Logger(service="ltv-api")

USER_HEADER = "X-Ltv-User"
_JSON = "application/json"
_HTML = "text/html; charset=utf-8"
_PAGE_CSP = ("default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
             "connect-src 'self'; img-src 'self' data:; frame-src 'self' https:; "
             "form-action 'self'; base-uri 'none'; frame-ancestors 'self'")
_CONTENT_TYPES = {".html": _HTML, ".csv": "text/csv; charset=utf-8", ".json": _JSON}
_FIELDS = tuple(ForecastBody.model_fields)

MAX_JSON_DEPTH = 32
"""Nesting a request body may have (the form's is 2 deep; json.loads recurses on C's stack)."""
MAX_NUMBER_DIGITS = 100
"""Digits an integer literal may have (int() refuses beyond 4,300; no field needs 100)."""

# A host name or IP literal with an optional port: nothing a URL could read as user info,
# a second host, a path or a new header ("@", ",", "/", whitespace).
_HOST = re.compile(r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
                   r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?"
                   r"|\[[0-9A-Fa-f:.]{2,45}\])(?::[0-9]{1,5})?")
_PREFIX = re.compile(r"(?:/[A-Za-z0-9._~-]+)*")
_LIMIT = re.compile(r"[0-9]{1,7}")  # ASCII only: "²".isdigit() is True and int("²") fails


# --------------------------------------------------------------------------- helpers


def _raw(app: APIGatewayRestResolver) -> Mapping[str, Any]:
    return app.current_event.raw_event


def _header(app: APIGatewayRestResolver, name: str) -> str | None:
    return app.current_event.headers.get(name)  # case-insensitive


def _prefix(app: APIGatewayRestResolver) -> str:
    """The stage (or base path) in front of the routes: ``/prod`` on API Gateway, ``""`` locally."""
    full = (_raw(app).get("requestContext") or {}).get("path") or ""
    path = app.current_event.path or "/"
    if full and full != path and full.endswith(path):
        prefix = full[: len(full) - len(path)].rstrip("/")
        return prefix if _PREFIX.fullmatch(prefix) else ""
    return ""


class BadRequest(Exception):
    """A request refused with ``400 {"error", "field"}`` before any handler logic ran."""

    def __init__(self, message: str, field: str = "body") -> None:
        super().__init__(message)
        self.field = field


def _origin(app: APIGatewayRestResolver) -> str:
    """``scheme://host[:port]`` of this API as the client addressed it, from validated parts.

    Raises :class:`BadRequest` (field ``Host``) for a ``Host`` that is not one host name or IP
    literal with an optional port: the origin goes into links others follow (``status_url``,
    ``Location``, the Slack message). An ``X-Forwarded-Proto`` other than ``http``/``https``
    is ignored.
    """
    multi = _raw(app).get("multiValueHeaders") or {}
    hosts = [v for k, values in multi.items() if str(k).lower() == "host"
             for v in (values if isinstance(values, list) else [values])]
    if len(hosts) > 1:
        raise BadRequest("the request has more than one Host header", "Host")
    host = _header(app, "Host")
    if host is None:
        host = (_raw(app).get("requestContext") or {}).get("domainName")
    if not host:
        return ""
    host = host.strip(" \t") if isinstance(host, str) else ""
    if not _HOST.fullmatch(host):
        raise BadRequest("the Host header is not a host name with an optional port", "Host")
    proto = (_header(app, "X-Forwarded-Proto") or "").split(",")[0].strip().lower()
    return f"{proto if proto in ('http', 'https') else 'http'}://{host}"


def _parse_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_NUMBER_DIGITS:
        raise BadRequest(f"the request body has an integer of more than {MAX_NUMBER_DIGITS} "
                         "digits")
    return int(text)


def _parse_float(text: str) -> float:
    value = float(text)
    if len(text) > 2 * MAX_NUMBER_DIGITS or not math.isfinite(value):
        shown = text if len(text) <= 20 else text[:17] + "..."
        raise BadRequest(f"the request body has a number out of range ({shown})")
    return value


def _parse_constant(name: str) -> Any:
    raise BadRequest(f"the request body is not valid JSON ({name} is not a JSON number)")


def _too_deep(text: str) -> bool:
    """True when brackets outside strings nest more than :data:`MAX_JSON_DEPTH` deep."""
    depth, in_string, escaped = 0, False, False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            if depth > MAX_JSON_DEPTH:
                return True
        elif char in "]}":
            depth -= 1
    return False


def json_body(event: Any) -> Any:
    """The JSON value of a proxy event's body, strictly parsed; :class:`BadRequest` otherwise.

    ``event`` is Powertools' ``APIGatewayProxyEvent``. Without a ``Content-Type`` the body is
    taken as JSON, as Powertools did.
    """
    media = (event.headers.get("Content-Type") or "").split(";")[0].strip().lower()
    if media not in ("", "application/json"):
        raise BadRequest("send the request body as JSON (Content-Type: application/json)")
    raw = event.get("body")
    if raw is None or raw == "":
        raise BadRequest("the request has no body: send a JSON object")
    if not isinstance(raw, str):
        raise BadRequest("the request body is not text")
    try:
        data = (base64.b64decode(raw, validate=True) if event.get("isBase64Encoded")
                else raw.encode("utf-8"))
    except (binascii.Error, ValueError):  # bad base64, or a str holding a lone surrogate
        raise BadRequest("the request body is not UTF-8 text (nor valid base64)") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise BadRequest(f"the request body is not UTF-8 text (byte {error.start})") from None
    if _too_deep(text):
        raise BadRequest(f"the request body nests JSON more than {MAX_JSON_DEPTH} levels deep")
    try:
        value = json.loads(text, parse_int=_parse_int, parse_float=_parse_float,
                           parse_constant=_parse_constant)
    except (ValueError, RecursionError):
        raise BadRequest("the request body is not valid JSON") from None
    try:
        # "\ud800" is valid JSON syntax but no character: nothing could store or print it
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        raise BadRequest("the request body has a lone UTF-16 surrogate escape (\\ud800-\\udfff): "
                         "not a character") from None
    return value


def requester(event: Mapping[str, Any], headers_user: str | None, *, local: bool) -> str:
    """Who asked: the API Gateway identity on AWS; locally ``X-Ltv-User`` or the OS user.

    On AWS (IAM authorisation) ``requestContext.identity.userArn`` (``caller`` as a fallback);
    a Cognito authoriser's ``email``/``cognito:username`` claim is honoured too. A header
    cannot name the requester there: anyone could send one.
    """
    context = event.get("requestContext") or {}
    claims = (context.get("authorizer") or {}).get("claims") or {}
    identity = context.get("identity") or {}
    for value in (claims.get("email"), claims.get("cognito:username"),
                  identity.get("userArn"), identity.get("caller"), identity.get("user")):
        if value:
            return str(value)[:256]
    if local:
        if headers_user:
            cleaned = re.sub(r"[^\w.@+ -]", "", headers_user).strip()[:120]
            if cleaned:
                return cleaned
        try:
            return getpass.getuser()
        except Exception:  # noqa: BLE001 - no login name (e.g. a container without one)
            return "local user"
    return "unknown"


def _media_ranges(accept: str) -> list[tuple[str, float]]:
    ranges = []
    for part in accept.split(","):
        pieces = [p.strip() for p in part.split(";")]
        if not pieces[0]:
            continue
        q = 1.0
        for param in pieces[1:]:
            if param.lower().startswith("q="):
                try:
                    q = float(param[2:])
                except ValueError:
                    q = 0.0
        ranges.append((pieces[0].lower(), q))
    return ranges


def _quality(ranges: list[tuple[str, float]], media: str) -> float:
    kind = media.split("/")[0]
    best, specificity = 0.0, -1
    for candidate, q in ranges:
        if candidate == media:
            level = 2
        elif candidate == f"{kind}/*":
            level = 1
        elif candidate == "*/*":
            level = 0
        else:
            continue
        if level > specificity:
            best, specificity = q, level
    return best


def wants_html(accept: str | None, format_: str | None = None) -> bool:
    """Content negotiation for the run pages (see the module docstring)."""
    if format_ in ("html", "json"):
        return format_ == "html"
    ranges = _media_ranges(accept or "")
    html_q = max(_quality(ranges, "text/html"), _quality(ranges, "application/xhtml+xml"))
    return html_q > _quality(ranges, _JSON)


def _json(status: int, body: Any, headers: Mapping[str, str] | None = None) -> Response:
    return Response(status_code=status, content_type=_JSON,
                    body=json.dumps(body, default=str), headers=dict(headers or {}))


def _html(status: int, page: str, headers: Mapping[str, str] | None = None) -> Response:
    return Response(status_code=status, content_type=_HTML, body=page,
                    headers={"Content-Security-Policy": _PAGE_CSP, **(headers or {})})


def _error(status: int, message: str, field: str | None = None) -> Response:
    body: dict[str, Any] = {"error": message}
    if field:
        body["field"] = field
    return _json(status, body, {"Cache-Control": "no-store"})


def _validation_error(errors: list[Mapping[str, Any]]) -> tuple[str, str]:
    """(field, message) for the first pydantic/Powertools validation error."""
    first = errors[0] if errors else {}
    kind = first.get("type", "")
    loc = [part for part in first.get("loc", ()) if part != "body"]
    if kind == "json_invalid":
        return "body", "the request body is not valid JSON"
    if kind == "unsupported_content_type":
        return "body", "send the request body as JSON (Content-Type: application/json)"
    if not loc or isinstance(loc[0], int):
        if kind == "missing":
            return "body", "the request has no body: send a JSON object"
        return "body", "the request body must be a JSON object"
    field = str(loc[0])
    if kind == "missing":
        reason = "is required"
    elif kind == "extra_forbidden":
        reason = f"is not a request field (fields: {', '.join(_FIELDS)})"
    else:
        reason = str(first.get("msg", "is not valid"))
        reason = reason.removeprefix("Value error, ")
        reason = reason[:1].lower() + reason[1:]
        if len(loc) > 1 and isinstance(loc[1], int):
            reason = f"item {loc[1] + 1}: {reason}"
        if "input" in first and kind != "value_error":
            reason += f" (got {json.dumps(first['input'], default=str)[:80]})"
    return field, f"field '{field}': {reason}"


# --------------------------------------------------------------------------- the app


def create_app(service: ForecastService) -> APIGatewayRestResolver:
    """The resolver with every route, bound to ``service``.

    One resolver handles one event at a time (Powertools keeps the current event on the
    class): ``ltv serve`` serialises calls to it.
    """
    app = APIGatewayRestResolver(enable_validation=True)

    def run_url(run_id: str) -> str:
        return f"{_origin(app)}{_prefix(app)}/forecasts/{run_id}"

    def file_url(run_id: str, name: str) -> str:
        return f"{run_url(run_id)}/files/{name}"

    def html_wanted() -> bool:
        query = app.current_event.get_query_string_value("format")
        return wants_html(_header(app, "Accept"), query)

    @app.get("/")
    def form():
        page = pages.form_page(prefix=_prefix(app), datasets=service.dataset_choices())
        return _html(200, page, {"Cache-Control": "no-store"})

    @app.post("/forecasts")
    def submit():
        _origin(app)  # a Host no link may be built from is refused, before anything is recorded
        try:
            body = ForecastBody.model_validate(json_body(app.current_event))
        except ValidationError as error:
            field, message = _validation_error(list(error.errors()))
            return _error(400, message, field)
        who = requester(_raw(app), _header(app, USER_HEADER), local=service.local)
        accepted = service.submit(body, requested_by=who, run_url=run_url)
        logger.info("forecast accepted", extra={"run_id": accepted.run_id,
                                                 "started": accepted.started,
                                                 "requested_by": who, "dataset": body.dataset})
        status_url = run_url(accepted.run_id)
        return _json(202, {"run_id": accepted.run_id, "status_url": status_url},
                     {"Location": status_url, "Cache-Control": "no-store"})

    @app.get("/forecasts")
    def runs():
        _origin(app)
        text = app.current_event.get_query_string_value("limit") or "50"
        if not _LIMIT.fullmatch(text) or not 1 <= int(text) <= 1000:
            return _error(400, "field 'limit': must be a whole number in [1, 1000]", "limit")
        listed = service.runs(limit=int(text))
        headers = {"Vary": "Accept", "Cache-Control": "no-store"}
        if html_wanted():
            return _html(200, pages.runs_page(prefix=_prefix(app), runs=listed), headers)
        for entry in listed:
            entry["url"] = run_url(entry["run_id"])
        return _json(200, {"runs": listed}, headers)

    @app.get("/forecasts/<run_id>")
    def run(run_id: str):
        _origin(app)
        headers = {"Vary": "Accept", "Cache-Control": "no-store"}
        try:
            described = service.run(run_id, file_url=file_url)
        except RunNotFound:
            if html_wanted():
                page = pages.message_page(prefix=_prefix(app), title="No such run",
                                          message=f"There is no forecast run '{run_id}'.")
                return _html(404, page, headers)
            raise
        if html_wanted():
            return _html(200, pages.run_page(prefix=_prefix(app), run=described), headers)
        return _json(200, described, headers)

    @app.get("/forecasts/<run_id>/files/<name>")
    def artifact(run_id: str, name: str):
        if name not in ARTIFACTS:
            raise RunNotFound(f"{run_id}/{name}")
        if isinstance(service.store, S3Store):
            if not service.store.exists(run_id):
                raise RunNotFound(run_id)
            return Response(status_code=302, content_type=None, body="",
                            headers={"Location": service.presigned_url(run_id, name),
                                     "Cache-Control": "no-store"})
        content = service.artifact(run_id, name)
        suffix = name[name.rfind("."):]
        headers = {"Cache-Control": "private, max-age=86400, immutable",
                   "X-Content-Type-Options": "nosniff"}
        if suffix != ".html":
            headers["Content-Disposition"] = f'attachment; filename="{run_id}-{name}"'
        return Response(status_code=200, content_type=_CONTENT_TYPES[suffix],
                        body=content.decode("utf-8"), headers=headers)

    # -- errors: a field-naming 400, a 404, never a traceback --------------
    @app.exception_handler([RequestValidationError, RequestUnsupportedContentType])
    def invalid_body(error: RequestValidationError):
        field, message = _validation_error(list(error.errors()))
        return _error(400, message, field)

    @app.exception_handler(BadRequest)
    def bad_request(error: BadRequest):
        return _error(400, str(error), error.field)

    @app.exception_handler(InputError)
    def invalid_request(error: InputError):
        return _error(400, str(error), error.column or "body")

    @app.exception_handler(RunNotFound)
    def unknown_run(error: RunNotFound):
        run_id = str(error).split("/")[0]
        return _error(404, f"no forecast run '{run_id}'" if "/" not in str(error)
                      else f"run '{run_id}' has no file '{str(error).split('/', 1)[1]}' "
                           "(or is not finished)")

    @app.exception_handler(LauncherBusy)
    def busy(error: LauncherBusy):
        return _error(503, f"Too many forecasts are waiting ({error}); try again in a minute.")

    @app.not_found
    def no_route(error: NotFoundError):
        event = app.current_event
        return _error(404, f"no route {event.http_method} {event.path}")

    @app.exception_handler(Exception)
    def internal(error: Exception):
        logger.exception("unhandled error", extra={"path": app.current_event.path})
        return _error(500, "Internal error: the request could not be completed. "
                           "It has been logged; please try again or tell the team.")

    return app
