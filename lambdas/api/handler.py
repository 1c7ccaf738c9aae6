"""The HTTP API's Lambda behind API Gateway (docs/interface.md, HTTP API).

The routes live once in :mod:`ltvcore.api` (the same app ``ltv serve`` runs); on Lambda it is
configured from ``LTV_STORE``, ``LTV_DATA_DIR``, ``LTV_STATE_MACHINE_ARN`` and
``LTV_LINK_SECONDS`` at cold start and starts one Step Functions execution per run id. The
REST proxy event is parsed by the app's Powertools resolver.

The same routes are deployed twice (infra/api.py): for people behind the sign-in, and for
tools under ``/api/…`` behind IAM. A request of the second kind reaches the app with the prefix
taken off its path, so one set of routes serves both; the links it builds keep the prefix (the
app reads it from ``requestContext.path``, as it does the stage's).
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from ltvcore.api import lambda_handler

__all__ = ["TOOLS_PREFIX", "handler", "route_event"]

TOOLS_PREFIX = "/api"  # infra/api.py TOOLS_PREFIX


def route_event(event: dict[str, Any]) -> dict[str, Any]:
    """``event`` with ``/api`` taken off its path when API Gateway matched an ``/api/…`` resource.

    The resource (``/api/forecasts/{run_id}``) is API Gateway's, not the client's: a browser
    route's path that merely starts with ``/api`` is left as it is.
    """
    resource = str(event.get("resource") or "")
    path = str(event.get("path") or "")
    if resource.startswith(TOOLS_PREFIX + "/") and path.startswith(TOOLS_PREFIX + "/"):
        return {**event, "path": path[len(TOOLS_PREFIX):],
                "resource": resource[len(TOOLS_PREFIX):]}
    return event


def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return lambda_handler(route_event(event), context)
