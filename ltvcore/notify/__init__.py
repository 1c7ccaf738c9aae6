"""Slack notifications for forecast runs.

``messages`` builds Block Kit payloads (pure), ``secrets`` finds the webhook URLs (Secrets
Manager on AWS, env or a file locally; held as ``SecretStr``) and ``delivery`` sends them: every
team channel plus the channels a request names, each independently, with bounded retries, never
raising and never revealing a URL. ``dispatch`` is the one call the notify step makes.
"""

from __future__ import annotations

from .delivery import (
    ChannelResult,
    DeliveryReport,
    deliver,
    dispatch,
    print_message,
    render_text,
    select_channels,
)
from .messages import failure_message, success_message
from .secrets import WebhookConfig, WebhookConfigError, config_from_secret, load_webhook_config

__all__ = [
    "ChannelResult",
    "DeliveryReport",
    "WebhookConfig",
    "WebhookConfigError",
    "config_from_secret",
    "deliver",
    "dispatch",
    "failure_message",
    "load_webhook_config",
    "print_message",
    "render_text",
    "select_channels",
    "success_message",
]
