"""The marketers' form and HTTP API (docs/interface.md, HTTP API), defined once.

- :mod:`ltvcore.api.app` -- the Powertools routes (``create_app``) and content negotiation;
- :mod:`ltvcore.api.models` -- the ``POST /forecasts`` body (pydantic);
- :mod:`ltvcore.api.service` -- submit (run id before any parsing, de-duplication) and run
  descriptions, without HTTP;
- :mod:`ltvcore.api.launchers` -- who computes: ``LocalLauncher`` (worker threads on the
  local store) or ``StepFunctionsLauncher`` (one execution per run id);
- :mod:`ltvcore.api.datasets` -- dataset folders, locally or under the warehouse prefix;
- :mod:`ltvcore.api.config` -- settings from the environment, read once at cold start;
- :mod:`ltvcore.api.pages` -- the HTML pages.

The API Lambda is ``lambda_handler``; ``ltv serve`` (:mod:`ltvcore.cli.serve`) turns local HTTP
requests into the same API Gateway events for an app it builds with ``create_app``. Nothing
here imports pandas or numpy: only the local worker imports the pipeline, when it runs.
"""

from __future__ import annotations

import threading
from typing import Any

from ltvcore.api.app import create_app, logger
from ltvcore.api.config import ApiSettings, SettingsError, build_service
from ltvcore.api.launchers import Job, Launcher, LauncherBusy, LocalLauncher, StepFunctionsLauncher
from ltvcore.api.service import ForecastService

__all__ = ["ApiSettings", "ForecastService", "Job", "Launcher", "LauncherBusy", "LocalLauncher",
           "SettingsError", "StepFunctionsLauncher", "build_service", "create_app",
           "lambda_handler"]

_app = None
_app_lock = threading.Lock()


def _default_app():
    global _app
    with _app_lock:
        if _app is None:  # cold start: settings and launcher chosen once per container
            _app = create_app(build_service(ApiSettings.from_environ()))
        return _app


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """The API Lambda: an API Gateway REST proxy event in, a proxy response out."""
    request_id = (event.get("requestContext") or {}).get("requestId")
    if request_id:
        logger.set_correlation_id(request_id)
    return _default_app().resolve(event, context)
