"""``GET /models``, ``POST /models/{name}/{version}/promote`` and a version's plots.

``GET /models``
    Every registered version (name, version, stage, metrics, trained_at, promoted_by, reason):
    the models page in a browser, the same rows as ``ltv models list --format json`` otherwise.
``POST /models/{name}/{version}/promote``
    JSON ``{"stage": "champion", "reason": "..."}`` → ``200 {"events": [...]}``. Who decided is
    the requester the API already knows (:func:`ltvcore.api.http.requester`), never a field:
    on AWS a body could name anyone. Bad input is a ``400`` naming the field, nothing written.
``GET /models/{name}/{version}/plots.html``
    The version's out-of-fold forecasts against what happened.
"""

from __future__ import annotations

from aws_lambda_powertools.event_handler.router import APIGatewayRouter

from ltvcore.api import pages
from ltvcore.api.http import (
    USER_HEADER,
    BadRequest,
    error_response,
    html_response,
    html_wanted,
    json_body,
    json_response,
    origin,
    prefix,
    requester,
)
from ltvcore.api.service import ForecastService

_PROMOTE_FIELDS = ("stage", "reason")


def router(service: ForecastService) -> APIGatewayRouter:
    routes = APIGatewayRouter()

    @routes.get("/models")
    def models():
        event = routes.current_event
        origin(event)
        rows = service.models()
        headers = {"Vary": "Accept", "Cache-Control": "no-store"}
        if html_wanted(event):
            return html_response(200, pages.models_page(prefix=prefix(event), models=rows), headers)
        return json_response(200, {"models": rows}, headers)

    @routes.post("/models/<name>/<version>/promote")
    def promote(name: str, version: str):
        event = routes.current_event
        origin(event)
        body = json_body(event)
        if not isinstance(body, dict):
            raise BadRequest("the request body must be a JSON object")
        unknown = sorted(str(k)[:40] for k in body if k not in _PROMOTE_FIELDS)
        if unknown:
            raise BadRequest(f"'{unknown[0]}' is not a promotion field (fields: "
                             f"{', '.join(_PROMOTE_FIELDS)}; who decides is the requester)",
                             unknown[0])
        who = requester(event.raw_event, event.headers.get(USER_HEADER), local=service.local)
        events = service.promote(name, version, stage=body.get("stage"), reason=body.get("reason"),
                                 by=who)
        return json_response(200, {"events": events}, {"Cache-Control": "no-store"})

    @routes.get("/models/<name>/<version>/plots.html")
    def plots(name: str, version: str):
        try:
            content = service.model_plots(name, version)
        except FileNotFoundError:
            return error_response(404, f"no plots for model '{name[:50]}@{version[:20]}'")
        # a version never changes: its plots may be cached for good
        return html_response(200, content.decode("utf-8"),
                             {"Cache-Control": "private, max-age=86400, immutable",
                              "X-Content-Type-Options": "nosniff"})

    return routes
