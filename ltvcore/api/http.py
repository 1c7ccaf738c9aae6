"""What every route needs from a request and for a response: where it came from (a validated
origin and stage), who sent it, its body strictly parsed, and HTML or JSON back.
"""

from __future__ import annotations

import base64
import binascii
import getpass
import json
import math
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import Response

from ltvcore.api.models import ForecastBody
from ltvcore.wording import field_message

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEvent

__all__ = ["MAX_JSON_DEPTH", "MAX_NUMBER_DIGITS", "USER_HEADER", "BadRequest", "error_response",
           "html_response", "html_wanted", "json_body", "json_response", "logger", "origin",
           "prefix", "requester", "validation_error", "wants_html"]

logger = Logger(service="ltv-api")

USER_HEADER = "X-Ltv-User"
JSON = "application/json"
HTML = "text/html; charset=utf-8"
_PAGE_CSP = ("default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
             "connect-src 'self'; img-src 'self' data:; frame-src 'self' https:; "
             "form-action 'self'; base-uri 'none'; frame-ancestors 'self'")
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


class BadRequest(Exception):
    """A request refused with ``400 {"error", "field"}`` before any handler logic ran."""

    def __init__(self, message: str, field: str = "body") -> None:
        super().__init__(message)
        self.field = field


def prefix(event: APIGatewayProxyEvent) -> str:
    """The stage (or base path) in front of the routes: ``/prod`` on API Gateway, ``""`` locally."""
    full = (event.raw_event.get("requestContext") or {}).get("path") or ""
    path = event.path or "/"
    if full and full != path and full.endswith(path):
        stage = full[: len(full) - len(path)].rstrip("/")
        return stage if _PREFIX.fullmatch(stage) else ""
    return ""


def origin(event: APIGatewayProxyEvent) -> str:
    """``scheme://host[:port]`` of this API as the client addressed it, from validated parts.

    Raises :class:`BadRequest` (field ``Host``) for a ``Host`` that is not one host name or IP
    literal with an optional port: the origin goes into links others follow (``status_url``,
    ``Location``, the Slack message). An ``X-Forwarded-Proto`` other than ``http``/``https``
    is ignored.
    """
    raw = event.raw_event
    multi = raw.get("multiValueHeaders") or {}
    hosts = [v for k, values in multi.items() if str(k).lower() == "host"
             for v in (values if isinstance(values, list) else [values])]
    if len(hosts) > 1:
        raise BadRequest("the request has more than one Host header", "Host")
    host = event.headers.get("Host")  # case-insensitive
    if host is None:
        host = (raw.get("requestContext") or {}).get("domainName")
    if not host:
        return ""
    host = host.strip(" \t") if isinstance(host, str) else ""
    if not _HOST.fullmatch(host):
        raise BadRequest("the Host header is not a host name with an optional port", "Host")
    proto = (event.headers.get("X-Forwarded-Proto") or "").split(",")[0].strip().lower()
    return f"{proto if proto in ('http', 'https') else 'http'}://{host}"


def requester(event: Mapping[str, Any], headers_user: str | None, *, local: bool) -> str:
    """Who asked: the verified identity API Gateway passes on; locally ``X-Ltv-User`` or the OS user.

    On AWS, in this order: the sign-in's authoriser context (lambdas/authorizer puts the
    verified ID token's ``email`` and ``username`` in ``requestContext.authorizer``), a Cognito
    user-pool authoriser's ``claims`` (``email``, ``cognito:username``), then the IAM identity
    of a signed request (``identity.userArn``, ``caller`` as a fallback). API Gateway writes
    ``requestContext``; a header cannot name the requester there: anyone could send one.
    """
    context = event.get("requestContext") or {}
    authorizer = context.get("authorizer") or {}
    claims = authorizer.get("claims") or {}
    identity = context.get("identity") or {}
    for value in (authorizer.get("email"), authorizer.get("username"),
                  claims.get("email"), claims.get("cognito:username"),
                  identity.get("userArn"), identity.get("caller"), identity.get("user")):
        if value and isinstance(value, (str, int)):
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


def json_body(event: APIGatewayProxyEvent) -> Any:
    """The JSON value of a proxy event's body, strictly parsed; :class:`BadRequest` otherwise.

    Strictly UTF-8 (base64 when ``isBase64Encoded``), JSON at most :data:`MAX_JSON_DEPTH` deep,
    integers of at most :data:`MAX_NUMBER_DIGITS` digits, finite numbers, no lone surrogates.
    Powertools' own parsing turns each of those into an exception of its own (a 500); here each
    is a 400 naming it, on API Gateway and under ``ltv serve`` alike. Without a ``Content-Type``
    the body is taken as JSON, as Powertools did.
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


def validation_error(errors: list[Mapping[str, Any]]) -> tuple[str, str]:
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
    """Content negotiation for the run pages.

    ``?format=html|json`` wins; otherwise HTML only when ``Accept`` ranks ``text/html`` strictly
    above ``application/json`` (a browser navigating), JSON for everything else (no ``Accept``,
    ``*/*``, ``fetch``, curl).
    """
    if format_ in ("html", "json"):
        return format_ == "html"
    ranges = _media_ranges(accept or "")
    html_q = max(_quality(ranges, "text/html"), _quality(ranges, "application/xhtml+xml"))
    return html_q > _quality(ranges, JSON)


def html_wanted(event: APIGatewayProxyEvent) -> bool:
    return wants_html(event.headers.get("Accept"), event.get_query_string_value("format"))


def json_response(status: int, body: Any, headers: Mapping[str, str] | None = None) -> Response:
    return Response(status_code=status, content_type=JSON,
                    body=json.dumps(body, default=str), headers=dict(headers or {}))


def html_response(status: int, page: str, headers: Mapping[str, str] | None = None) -> Response:
    return Response(status_code=status, content_type=HTML, body=page,
                    headers={"Content-Security-Policy": _PAGE_CSP, **(headers or {})})


def error_response(status: int, message: str, field: str | None = None,
                   errors: list[tuple[str, str]] | None = None) -> Response:
    """``{"error", "field"}``; with field ``errors`` also ``message`` (the first in plain
    words, for the form) and, when there are several, ``errors`` (every invalid field, each
    ``{"field", "error", "message"}``)."""
    body: dict[str, Any] = {"error": message}
    if field:
        body["field"] = field
    if errors:  # ``message``: the reason in plain words, for the form (``error`` names the field)
        body["message"] = field_message(*errors[0])
    if errors and len(errors) > 1:
        body["errors"] = [{"field": name, "error": f"field '{name}': {reason}",
                           "message": field_message(name, reason)}
                          for name, reason in errors]
    return json_response(status, body, {"Cache-Control": "no-store"})
