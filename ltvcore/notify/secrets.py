"""Where Slack webhook URLs come from, without ever showing them.

A webhook URL is a credential: whoever holds it can post to the channel. URLs live in AWS Secrets
Manager on AWS and in a local environment variable or file on a laptop; they are never printed,
logged, put in a report or written to an artifact. ``WebhookConfig`` holds them as pydantic
``SecretStr`` (masked in every ``repr``, ``str`` and dump); its own ``repr``/``str`` show channel
names only, and only the sender reads a URL (``get_secret_value()``) to post to it.

Config format (the Secrets Manager ``SecretString`` and the ``LTV_SLACK_CONFIG`` file alike)::

    {
      "channels": {"team-ltv": "https://hooks.slack.com/services/…",
                   "growth":   "https://hooks.slack.com/services/…"},
      "default_channels": ["team-ltv"]
    }

``channels`` is the deployment's catalogue of channels a request may name (``notify``); only names
from it can be targeted, so a request can never supply a URL. ``default_channels`` are the team
channels that see every run. When ``default_channels`` is absent, every channel is a team channel
(the one-webhook setup); ``[]`` means none. A leading ``#`` on a name is ignored.

Where the config is read from (first match wins), see ``load_webhook_config``:

1. an explicit ``secret_name`` or env ``LTV_SLACK_SECRET_NAME`` → Secrets Manager through
   Powertools ``parameters.get_secret``, which keeps the value in the process for ``max_age``
   seconds (default 5 minutes) so a warm Lambda does not re-read it per run;
2. env ``LTV_SLACK_WEBHOOK_URLS``: comma-separated URLs (named ``webhook-1``, ``webhook-2``, … by
   position) or ``name=URL`` pairs; all of them are team channels;
3. env ``LTV_SLACK_CONFIG``: path of a JSON file in the format above;
4. nothing → an empty config; the caller prints the message instead of sending it.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any, Mapping

from pydantic import BaseModel, ConfigDict, Field, SecretStr

__all__ = [
    "DEFAULT_MAX_AGE_SECONDS",
    "ENV_SECRET_NAME",
    "ENV_WEBHOOK_URLS",
    "ENV_CONFIG_FILE",
    "WebhookConfig",
    "WebhookConfigError",
    "normalise_channel_name",
    "parse_webhook_urls",
    "config_from_json",
    "config_from_secret",
    "load_webhook_config",
]

ENV_SECRET_NAME = "LTV_SLACK_SECRET_NAME"
ENV_WEBHOOK_URLS = "LTV_SLACK_WEBHOOK_URLS"
ENV_CONFIG_FILE = "LTV_SLACK_CONFIG"
DEFAULT_MAX_AGE_SECONDS = 300

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,79}$")
_NAMED_ENTRY_RE = re.compile(r"^#?([A-Za-z0-9][A-Za-z0-9_.-]{0,79})=(https?://\S+)$")


class WebhookConfigError(ValueError):
    """The webhook configuration is unusable. The message never contains a URL."""


def normalise_channel_name(name: str) -> str:
    """``"#Growth "`` → ``"Growth"``: strip spaces and one leading ``#``."""
    name = str(name).strip()
    return name[1:] if name.startswith("#") else name


def _check_name(name: str, where: str) -> str:
    norm = normalise_channel_name(name)
    if not _NAME_RE.match(norm):
        raise WebhookConfigError(
            f"{where}: channel name {norm[:80]!r} must be letters, digits, '.', '_' or '-'")
    return norm


def _check_url(url: Any, name: str, where: str) -> str:
    if not isinstance(url, str) or not url.strip().lower().startswith(("https://", "http://")):
        # Say which channel, never echo the value: it may be a mistyped secret.
        raise WebhookConfigError(f"{where}: the webhook of channel {name!r} is not an http(s) URL")
    return url.strip()


class WebhookConfig(BaseModel):
    """Slack channels of a deployment: name → webhook URL, and which see every run.

    ``repr``/``str`` show the source and channel names only, never a URL.
    """

    # A malformed value given directly (not through the parsers below) must not echo a URL either.
    model_config = ConfigDict(frozen=True, hide_input_in_errors=True)

    webhooks: dict[str, SecretStr] = Field(default_factory=dict)
    default_channels: tuple[str, ...] = ()
    source: str = "none"

    def __init__(self, **data: Any) -> None:
        super().__init__(**data)
        # Checked here rather than in a validator, which pydantic would wrap in a ValidationError.
        unknown = [c for c in self.default_channels if c not in self.webhooks]
        if unknown:
            raise WebhookConfigError(
                f"{self.source}: default_channels names unconfigured channel(s) {unknown}")

    @property
    def channels(self) -> tuple[str, ...]:
        """Configured channel names, in configuration order."""
        return tuple(self.webhooks)

    def __bool__(self) -> bool:
        return bool(self.webhooks)

    def __len__(self) -> int:
        return len(self.webhooks)

    def __repr__(self) -> str:
        return (f"WebhookConfig(source={self.source!r}, channels={list(self.webhooks)!r}, "
                f"default_channels={list(self.default_channels)!r})")

    __str__ = __repr__


def config_from_json(data: Any, *, source: str) -> WebhookConfig:
    """Build a config from the parsed JSON format described in the module docstring."""
    if not isinstance(data, Mapping) or not isinstance(data.get("channels"), Mapping):
        raise WebhookConfigError(f"{source}: expected a JSON object with a 'channels' object")
    webhooks: dict[str, str] = {}
    for raw_name, url in data["channels"].items():
        name = _check_name(raw_name, source)
        if name in webhooks:
            raise WebhookConfigError(f"{source}: channel {name!r} is configured twice")
        webhooks[name] = _check_url(url, name, source)
    if "default_channels" in data and data["default_channels"] is not None:
        raw_defaults = data["default_channels"]
        if isinstance(raw_defaults, str) or not isinstance(raw_defaults, (list, tuple)):
            raise WebhookConfigError(f"{source}: default_channels must be a list of names")
        defaults = tuple(dict.fromkeys(normalise_channel_name(n) for n in raw_defaults))
    else:
        defaults = tuple(webhooks)
    return WebhookConfig(webhooks=webhooks, default_channels=defaults, source=source)


def parse_webhook_urls(value: str, *, source: str = f"env:{ENV_WEBHOOK_URLS}") -> WebhookConfig:
    """Parse ``LTV_SLACK_WEBHOOK_URLS``: ``URL[,URL…]`` or ``name=URL[,name=URL…]`` (mixable).

    An unnamed URL is called ``webhook-N`` after its 1-based position. Every channel is a team
    channel. Empty entries are skipped.
    """
    webhooks: dict[str, str] = {}
    entries = [e.strip() for e in value.split(",")]
    for pos, entry in enumerate(entries, start=1):
        if not entry:
            continue
        named = _NAMED_ENTRY_RE.match(entry)
        if named:
            name, url = named.group(1), named.group(2)
        elif entry.lower().startswith(("https://", "http://")) and " " not in entry:
            name, url = f"webhook-{pos}", entry
        else:
            raise WebhookConfigError(
                f"{source}: entry {pos} is neither a webhook URL nor name=URL")
        if name in webhooks:
            raise WebhookConfigError(f"{source}: channel {name!r} is configured twice")
        webhooks[name] = url
    return WebhookConfig(webhooks=webhooks, default_channels=tuple(webhooks), source=source)


def _config_from_text(text: str, source: str, *, invalid: str = "not valid JSON") -> WebhookConfig:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise WebhookConfigError(f"{source}: {invalid} (line {exc.lineno})") from None
    return config_from_json(data, source=source)


def _config_from_file(path: str) -> WebhookConfig:
    source = f"file:{path}"
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise WebhookConfigError(f"{source}: cannot read ({exc.strerror or exc})") from None
    return _config_from_text(text, source)


def _aws_error_code(exc: BaseException) -> str:
    # get_secret re-raises boto3's error as a GetParameterError whose text may quote the service's
    # message; only the error code (or the exception type) goes into ours.
    for error in (exc, exc.__cause__, exc.__context__):
        response = getattr(error, "response", None)
        if isinstance(response, dict) and response.get("Error", {}).get("Code"):
            return str(response["Error"]["Code"])
    return type(exc.__context__ or exc).__name__


def config_from_secret(secret_name: str, *, max_age: int = DEFAULT_MAX_AGE_SECONDS) -> WebhookConfig:
    """The config in Secrets Manager secret ``secret_name``, re-read at most every ``max_age`` s."""
    # Powertools' parameters import boto3: only the AWS path needs it, so it is imported here.
    from aws_lambda_powertools.utilities import parameters

    source = f"secretsmanager:{secret_name}"
    try:
        text = parameters.get_secret(secret_name, max_age=max_age)
    except Exception as exc:  # a missing secret, no credentials or region: no secret text in ours
        raise WebhookConfigError(f"{source}: cannot read the secret ({_aws_error_code(exc)})") from None
    if not isinstance(text, str) or not text:  # absent, or a SecretBinary
        raise WebhookConfigError(f"{source}: the secret has no SecretString")
    return _config_from_text(text, source, invalid="SecretString is not valid JSON")


def load_webhook_config(*, secret_name: str | None = None,
                        env: Mapping[str, str] | None = None,
                        max_age: int = DEFAULT_MAX_AGE_SECONDS) -> WebhookConfig:
    """The deployment's webhook config, from the first source that is set.

    Parameters
    ----------
    secret_name
        Secrets Manager secret to read; default env ``LTV_SLACK_SECRET_NAME``.
    env
        Environment to consult (default ``os.environ``).
    max_age
        Seconds a secret read from Secrets Manager is reused in this process (5 minutes).

    Raises
    ------
    WebhookConfigError
        A source is set but unusable (unreadable secret/file, bad JSON, bad entry). The message
        names the source and channel, never a URL. Callers that must not fail (the notifier)
        catch it and record it.
    """
    env = os.environ if env is None else env
    name = secret_name or (env.get(ENV_SECRET_NAME) or "").strip() or None
    if name:
        return config_from_secret(name, max_age=max_age)
    urls = (env.get(ENV_WEBHOOK_URLS) or "").strip()
    if urls:
        return parse_webhook_urls(urls)
    path = (env.get(ENV_CONFIG_FILE) or "").strip()
    if path:
        return _config_from_file(path)
    return WebhookConfig()
