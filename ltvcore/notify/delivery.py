"""Sending a message to Slack channels: fan-out, bounded retries, nothing raised, nothing leaked.

Each channel is delivered on its own (concurrently): one failing channel never stops or delays
the others, and no failure is ever raised to the caller, because a notification must never fail
or hide the forecast it announces. What happened per channel is returned in a
``DeliveryReport`` and, when a ``log_sink`` is given, handed to it as JSON-able dicts (for the
run's notification log or a dead-letter queue).

Retries use ``slack_sdk``'s handlers: connection errors, 429 honouring ``Retry-After`` (up to
``max_retry_after`` seconds; a longer wait is not retried) and 500/503, sharing one budget of
``max_retries`` retries per channel.

A webhook URL is a credential. It is never logged, returned, or put in an error text: results
name channels only, error texts are scrubbed of URLs and of anything token-like (a webhook's
error body may echo its path bare: see :func:`redact`), and ``slack_sdk``'s client logs through
``ltvcore.notify.slack`` (level INFO, so the SDK skips its DEBUG lines that print the URL) with a
filter that scrubs URLs from whatever it does log.
"""

from __future__ import annotations

import contextlib
import json
import logging
import random
import re
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from typing import Any, Callable, Iterable, Iterator, Mapping, TextIO
from urllib.parse import urlsplit

from pydantic import SecretStr
from slack_sdk.http_retry import (
    BackoffRetryIntervalCalculator,
    ConnectionErrorRetryHandler,
    FixedValueRetryIntervalCalculator,
    HttpRequest,
    HttpResponse,
    Jitter,
    RateLimitErrorRetryHandler,
    RetryHandler,
    RetryIntervalCalculator,
    RetryState,
)
from slack_sdk.http_retry.builtin_handlers import ServerErrorRetryHandler
from slack_sdk.webhook import WebhookClient

from .secrets import (
    WebhookConfig,
    WebhookConfigError,
    load_webhook_config,
    normalise_channel_name,
)

__all__ = [
    "ChannelResult",
    "DeliveryReport",
    "deliver",
    "dispatch",
    "print_message",
    "render_text",
    "select_channels",
    "redact",
    "SDK_LOGGER_NAME",
]

logger = logging.getLogger(__name__)

SDK_LOGGER_NAME = "ltvcore.notify.slack"
MAX_ERROR_TEXT = 300

_URL_RE = re.compile(r"https?:(?://|\\/\\/|%2F%2F)[^\s'\"<>|)\]}]+", re.IGNORECASE)
# The secret part of a Slack webhook is its path; scrub it even without scheme and host, with
# JSON-escaped (\/) or percent-encoded (%2F) slashes too.
_SEP = r"(?:/|\\/|%2[Ff])"
_HOOK_PATH_RE = re.compile(rf"(?:{_SEP}|\b)services{_SEP}[A-Za-z0-9_%\\/-]+")
# T…/B…/secret without "/services/": what a webhook's error body may echo of its own path.
_HOOK_IDS_RE = re.compile(rf"\b[TE][A-Z0-9]{{2,}}{_SEP}+B[A-Z0-9]{{2,}}{_SEP}+[A-Za-z0-9]+")
_SLACK_TOKEN_RE = re.compile(r"\bxox[a-z]-[A-Za-z0-9-]+")
# Any other long run of letters and digits may be a token, unless it reads as CamelCase words
# without digits (exception and class names: ConnectionRefusedError, HTTPSConnectionPool).
_LONG_RUN_RE = re.compile(r"[A-Za-z0-9]{16,}")
_WORDS_RE = re.compile(r"(?:[A-Z]+[a-z]+)+")
_MIN_SEGMENT = 6  # shorter path segments of a known URL ("T1", "services") are no secret


def _long_run(match: re.Match[str]) -> str:
    return match.group() if _WORDS_RE.fullmatch(match.group()) else "<redacted>"


def redact(text: str, urls: Iterable[str] = ()) -> str:
    """``text`` with every URL, webhook path and token-like string replaced by a placeholder.

    Besides the URLs given (whole, their path, and each path segment of at least 6 characters,
    wherever they appear), it scrubs any URL, any ``/services/...`` path, any bare
    ``T…/B…/…`` webhook path, Slack ``xox?-`` tokens and any run of 16+ letters and digits
    that is not CamelCase words: a webhook's error body may echo its own token in any form.
    """
    known = sorted({url for url in urls if url}, key=len, reverse=True)
    for url in known:
        text = text.replace(url, "<webhook>")
        path = urlsplit(url).path
        if len(path) > 1:
            text = text.replace(path, "<webhook-path>")
    text = _URL_RE.sub("<url>", text)
    text = _HOOK_PATH_RE.sub("<webhook-path>", text)
    text = _HOOK_IDS_RE.sub("<webhook-path>", text)
    text = _SLACK_TOKEN_RE.sub("<redacted>", text)
    for url in known:  # what is left of a known URL: its segments, alone or re-encoded
        segments = set(urlsplit(url).path.split("/")) - {"services"}
        for segment in sorted(segments, key=len, reverse=True):
            if len(segment) >= _MIN_SEGMENT:
                text = text.replace(segment, "<redacted>")
    return _LONG_RUN_RE.sub(_long_run, text)


# The webhook URLs being posted to now: the SDK's log lines (response bodies included) are
# scrubbed of them too, not only of what looks like a URL or a token.
_in_use: dict[str, int] = {}
_in_use_lock = threading.Lock()


@contextlib.contextmanager
def _urls_in_use(urls: Iterable[str]) -> Iterator[None]:
    urls = [url for url in urls if url]
    with _in_use_lock:
        for url in urls:
            _in_use[url] = _in_use.get(url, 0) + 1
    try:
        yield
    finally:
        with _in_use_lock:
            for url in urls:
                _in_use[url] -= 1
                if not _in_use[url]:
                    del _in_use[url]


def _known_urls() -> list[str]:
    with _in_use_lock:
        return list(_in_use)


class _RedactUrlsFilter(logging.Filter):
    """Rewrites each record's message with URLs scrubbed (slack_sdk puts the URL in some)."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a malformed record: keep only its template
            message = str(record.msg)
        urls = _known_urls()
        # whole URLs first, as "<url>": the log reads the same whether the URL was known
        record.msg = redact(_URL_RE.sub("<url>", message), urls)
        record.args = None
        if record.exc_info and not record.exc_text:
            trace = logging.Formatter().formatException(record.exc_info)
            record.exc_text = redact(_URL_RE.sub("<url>", trace), urls)
        return True


_sdk_logger_lock = threading.Lock()


def _sdk_logger() -> logging.Logger:
    with _sdk_logger_lock:
        return _setup_sdk_logger()


def _setup_sdk_logger() -> logging.Logger:
    sdk_logger = logging.getLogger(SDK_LOGGER_NAME)
    if not any(isinstance(f, _RedactUrlsFilter) for f in sdk_logger.filters):
        sdk_logger.addFilter(_RedactUrlsFilter())
    if sdk_logger.level == logging.NOTSET:
        # slack_sdk prints the URL and body when logger.level <= DEBUG (NOTSET is 0).
        sdk_logger.setLevel(logging.INFO)
    return sdk_logger


# --------------------------------------------------------------------------- results


@dataclass(frozen=True)
class ChannelResult:
    """The outcome for one channel. ``status`` is the last HTTP status (None: none received)."""

    channel: str
    ok: bool
    status: int | None
    attempts: int
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class DeliveryReport:
    """Per-channel outcomes of one notification; ``printed`` when rendered to a stream instead."""

    results: tuple[ChannelResult, ...] = ()
    printed: bool = False

    @property
    def ok(self) -> bool:
        """True when no channel failed (also when there was nothing to send)."""
        return all(r.ok for r in self.results)

    @property
    def failed(self) -> tuple[ChannelResult, ...]:
        return tuple(r for r in self.results if not r.ok)

    @property
    def delivered(self) -> tuple[str, ...]:
        return tuple(r.channel for r in self.results if r.ok)

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "printed": self.printed,
                "channels": [r.to_dict() for r in self.results]}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)


# --------------------------------------------------------------------------- channel choice


def select_channels(configured: Mapping[str, str | SecretStr] | WebhookConfig,
                    requested: Iterable[str] = (), *, defaults: Iterable[str] | None = None
                    ) -> tuple[dict[str, SecretStr], list[str]]:
    """The channels one run goes to: the team channels plus those the request names.

    Parameters
    ----------
    configured
        A ``WebhookConfig`` (its ``default_channels`` are the team channels) or a plain
        name → URL mapping.
    requested
        Channel names from the request's ``notify`` field (a leading ``#`` is ignored).
    defaults
        Team channels, overriding the config's; for a plain mapping, ``None`` means every
        configured channel (the same rule as a config without ``default_channels``).

    Returns
    -------
    (targets, unknown)
        ``targets``: name → URL (a ``SecretStr``), team channels first, each once; ``unknown``:
        requested names the deployment does not configure (to be reported as failures, not raised).
    """
    if isinstance(configured, WebhookConfig):
        webhooks = dict(configured.webhooks)
        team = configured.default_channels if defaults is None else defaults
    else:
        webhooks = {normalise_channel_name(k): _secret(v) for k, v in configured.items()}
        team = webhooks.keys() if defaults is None else defaults
    targets: dict[str, SecretStr] = {}
    unknown: list[str] = []
    for name in team:
        name = normalise_channel_name(name)
        if name in webhooks:
            targets.setdefault(name, webhooks[name])
    for raw in requested or ():
        name = normalise_channel_name(raw)
        if not name:
            continue
        if name in webhooks:
            targets.setdefault(name, webhooks[name])
        elif name not in unknown:
            unknown.append(name)
    return targets, unknown


# --------------------------------------------------------------------------- sending


def _secret(url: str | SecretStr) -> SecretStr:
    return url if isinstance(url, SecretStr) else SecretStr(url)


def _reveal(url: str | SecretStr) -> str:
    return url.get_secret_value() if isinstance(url, SecretStr) else url


class _Attempts:
    def __init__(self) -> None:
        self.retries = 0


class _ProportionalJitter(Jitter):
    # slack_sdk's RandomJitter adds up to 1 s whatever the interval; keep it proportional.
    def recalculate(self, duration: float) -> float:
        return duration * (1.0 + random.random())


def _retry_after_at_most(response: HttpResponse | None, limit: float) -> bool:
    """False when a 429 asks to wait longer than ``limit`` seconds (or says nothing readable)."""
    if response is None:
        return True
    for key, values in (response.headers or {}).items():
        if key.lower() == "retry-after":
            value = values[0] if isinstance(values, (list, tuple)) else values
            try:
                return float(value) <= limit
            except (TypeError, ValueError):
                return False
    return True


class _Counted(RetryHandler):
    """One of slack_sdk's built-in handlers, its retries counted, its decision optionally narrowed.

    Wrapping it through the two public methods the clients call (``can_retry``,
    ``prepare_for_next_attempt``) instead of overriding its private ``_can_retry`` keeps this
    working across slack_sdk releases: the built-in handler still decides, waits and spends the
    shared attempt budget (``RetryState``) exactly as slack_sdk does.
    """

    def __init__(self, handler: RetryHandler, attempts: _Attempts, *,
                 allow: Callable[[HttpResponse | None], bool] | None = None) -> None:
        super().__init__(max_retry_count=handler.max_retry_count,
                         interval_calculator=handler.interval_calculator)
        self.handler = handler
        self._attempts = attempts
        self._allow = allow

    def can_retry(self, *, state: RetryState, request: HttpRequest, response: HttpResponse | None = None,
                  error: Exception | None = None) -> bool:
        if not self.handler.can_retry(state=state, request=request, response=response, error=error):
            return False
        return self._allow is None or self._allow(response)

    def prepare_for_next_attempt(self, *, state: RetryState, request: HttpRequest,
                                 response: HttpResponse | None = None, error: Exception | None = None) -> None:
        self.handler.prepare_for_next_attempt(state=state, request=request, response=response, error=error)
        self._attempts.retries += 1


def _retry_handlers(max_retries: int, backoff_factor: float, max_retry_after: float,
                    attempts: _Attempts) -> list[RetryHandler]:
    interval: RetryIntervalCalculator
    if backoff_factor > 0:
        interval = BackoffRetryIntervalCalculator(backoff_factor, jitter=_ProportionalJitter())
    else:
        interval = FixedValueRetryIntervalCalculator(0.0)
    return [
        _Counted(ConnectionErrorRetryHandler(max_retry_count=max_retries, interval_calculator=interval),
                 attempts),
        _Counted(RateLimitErrorRetryHandler(max_retry_count=max_retries), attempts,
                 allow=lambda response: _retry_after_at_most(response, max_retry_after)),
        _Counted(ServerErrorRetryHandler(max_retry_count=max_retries, interval_calculator=interval),
                 attempts),
    ]


def _error_text(text: str, url: str) -> str:
    text = redact(" ".join(str(text).split()), [url])
    return text if len(text) <= MAX_ERROR_TEXT else text[: MAX_ERROR_TEXT - 1] + "…"


def _send_one(channel: str, url: str, body: dict, *, max_retries: int, timeout: float,
              backoff_factor: float, max_retry_after: float,
              sdk_logger: logging.Logger) -> ChannelResult:
    attempts = _Attempts()
    try:
        client = WebhookClient(
            url,
            timeout=timeout,  # type: ignore[arg-type]
            logger=sdk_logger,
            retry_handlers=_retry_handlers(max_retries, backoff_factor, max_retry_after,
                                           attempts),
        )
        response = client.send_dict(body)
    except Exception as exc:  # connection refused after retries, bad URL, timeout, …
        return ChannelResult(channel=channel, ok=False, status=None,
                             attempts=attempts.retries + 1,
                             error=_error_text(f"{type(exc).__name__}: {exc}", url))
    status = response.status_code
    if status == 200:
        return ChannelResult(channel=channel, ok=True, status=status,
                             attempts=attempts.retries + 1)
    detail = (response.body or "").strip()
    return ChannelResult(channel=channel, ok=False, status=status,
                         attempts=attempts.retries + 1,
                         error=_error_text(f"HTTP {status}" + (f": {detail}" if detail else ""),
                                           url))


def _unknown_result(channel: str) -> ChannelResult:
    return ChannelResult(channel=channel, ok=False, status=None, attempts=0,
                         error="channel is not configured for this deployment")


def _record(results: Iterable[ChannelResult],
            log_sink: Callable[[dict[str, Any]], Any] | None) -> None:
    for result in results:
        if not result.ok:
            logger.warning("Slack delivery to %s failed after %d attempt(s): %s",
                           result.channel, result.attempts, result.error)
        if log_sink is not None:
            try:
                log_sink({"event": "slack_delivery", **result.to_dict()})
            except Exception as exc:  # the sink is best effort too
                logger.warning("notification log sink failed: %s", type(exc).__name__)


def deliver(payload: Mapping[str, Any], webhooks: Mapping[str, str | SecretStr], *, max_retries: int = 3,
            timeout: float = 10, log_sink: Callable[[dict[str, Any]], Any] | None = None,
            unknown_channels: Iterable[str] = (), backoff_factor: float = 0.5,
            max_retry_after: float = 30.0, max_workers: int = 8) -> DeliveryReport:
    """Post ``payload`` to every channel in ``webhooks``, each independently; never raises.

    Parameters
    ----------
    payload
        A Block Kit message (``success_message``/``failure_message``).
    webhooks
        Channel name → webhook URL, plain or ``SecretStr`` (e.g. the ``targets`` of
        ``select_channels``).
    max_retries
        Retries per channel, shared by connection errors, 429 and 500/503.
    timeout
        Seconds per HTTP attempt.
    log_sink
        Called once per channel (delivered or not) with a JSON-able dict
        ``{"event": "slack_delivery", "channel", "ok", "status", "attempts", "error"}``.
    unknown_channels
        Requested channels that are not configured: reported as failed, nothing sent.
    backoff_factor
        Base of the exponential wait between retries of connection errors and 5xx
        (``backoff_factor * 2**retry`` plus up to as much again of jitter).
    max_retry_after
        A 429 asking to wait longer than this many seconds is not retried.
    max_workers
        Channels sent concurrently.

    Returns
    -------
    DeliveryReport
        One ``ChannelResult`` per channel, in the order given (unknown channels last).
    """
    # Posting is what the URLs are for: here, and only here, they are read out of SecretStr.
    channels = [(name, _reveal(url)) for name, url in webhooks.items()]
    try:
        body = json.loads(json.dumps(dict(payload)))
    except (TypeError, ValueError) as exc:
        results = [ChannelResult(channel=name, ok=False, status=None, attempts=0,
                                 error=f"payload is not JSON-serialisable ({type(exc).__name__})")
                   for name, _ in channels]
    else:
        kwargs: dict[str, Any] = dict(max_retries=max(0, int(max_retries)), timeout=timeout,
                                      backoff_factor=max(0.0, float(backoff_factor)),
                                      max_retry_after=float(max_retry_after), sdk_logger=_sdk_logger())
        with _urls_in_use(url for _, url in channels):
            if len(channels) <= 1:
                results = [_send_one(name, url, body, **kwargs) for name, url in channels]
            else:
                with ThreadPoolExecutor(max_workers=max(1, min(max_workers, len(channels))),
                                        thread_name_prefix="slack-fanout") as pool:
                    futures = [pool.submit(_send_one, name, url, body, **kwargs)
                               for name, url in channels]
                    results = [f.result() for f in futures]
    results += [_unknown_result(normalise_channel_name(c)) for c in unknown_channels]
    _record(results, log_sink)
    return DeliveryReport(results=tuple(results))


def dispatch(payload: Mapping[str, Any], config: WebhookConfig | None = None,
             requested: Iterable[str] = (), *, stream: TextIO | None = None,
             log_sink: Callable[[dict[str, Any]], Any] | None = None,
             **deliver_options: Any) -> DeliveryReport:
    """Notify one run: team channels plus ``requested``; print instead when nothing is configured.

    The single entry point for the notify step, locally (``ltv serve``/``ltv forecast``) and in
    the notify Lambda. ``config`` defaults to ``load_webhook_config()`` (Secrets Manager when
    ``LTV_SLACK_SECRET_NAME`` is set, else the local env/file); an unusable config becomes a
    failed entry for channel ``(config)``. ``deliver_options`` go to ``deliver``. Never raises.
    """
    if config is None:
        try:
            config = load_webhook_config()
        except WebhookConfigError as exc:
            result = ChannelResult(channel="(config)", ok=False, status=None, attempts=0,
                                   error=_error_text(str(exc), ""))
            _record([result], log_sink)
            return DeliveryReport(results=(result,))
    targets, unknown = select_channels(config, requested)
    if not config:
        print_message(payload, stream)
        results = tuple(_unknown_result(c) for c in unknown)
        _record(results, log_sink)
        return DeliveryReport(results=results, printed=True)
    return deliver(payload, targets, unknown_channels=unknown, log_sink=log_sink,
                   **deliver_options)


# --------------------------------------------------------------------------- local rendering

_MRKDWN_LINK_RE = re.compile(r"<([^|<>]+)\|([^<>]+)>")


def _plain(mrkdwn: str) -> str:
    text = _MRKDWN_LINK_RE.sub(lambda m: f"{m.group(2)}: {m.group(1)}", mrkdwn)
    text = re.sub(r"(?<![\w*])\*([^*\n]+)\*(?![\w*])", r"\1", text)
    text = text.replace("`", "")
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def render_text(payload: Mapping[str, Any]) -> str:
    """A readable plain-text rendering of a Block Kit payload."""
    lines: list[str] = []
    blocks = payload.get("blocks") or []
    if not blocks:
        return str(payload.get("text", "")) + "\n"
    for block in blocks:
        kind = block.get("type")
        if kind == "header":
            title = block.get("text", {}).get("text", "")
            lines += [title, "=" * min(len(title), 72)]
        elif kind == "divider":
            lines.append("-" * 40)
        elif kind == "section":
            if block.get("text"):
                lines.append(_plain(block["text"].get("text", "")))
            for f in block.get("fields", []):
                lines.append(_plain(f.get("text", "")).replace("\n", ": ", 1))
        elif kind == "context":
            lines += [_plain(e.get("text", "")) for e in block.get("elements", [])
                      if isinstance(e, Mapping)]
        elif kind == "actions":
            for e in block.get("elements", []):
                if isinstance(e, Mapping) and e.get("url"):
                    label = e.get("text", {}).get("text", "link")
                    lines.append(f"{label}: {e['url']}")
    return "\n".join(lines) + "\n"


def print_message(payload: Mapping[str, Any], stream: TextIO | None = None) -> None:
    """Print ``payload`` as plain text (the local notifier when no webhook is configured)."""
    out = stream if stream is not None else sys.stdout
    out.write(render_text(payload))
    out.flush()
