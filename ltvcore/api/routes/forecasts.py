"""``POST /forecasts``, ``GET /forecasts`` and ``GET /forecasts/{run_id}``.

``POST /forecasts``
    JSON body (:class:`ltvcore.api.models.ForecastBody`) → ``202 {"run_id", "status_url"}``.
``GET /forecasts``
    Recent runs with status, who asked and when (``?limit=N``, default 50).
``GET /forecasts/{run_id}``
    ``{"run_id", "status", "requested_by", "created", "dataset", "summary", "request", ...}``;
    ``error`` when failed; ``files`` (name → URL) when succeeded.

Both ``GET`` routes answer HTML or JSON (:func:`ltvcore.api.http.wants_html`) and say
``Vary: Accept``.
"""

from __future__ import annotations

import re

from aws_lambda_powertools.event_handler.router import APIGatewayRouter

from ltvcore.api import pages
from ltvcore.api.history import run_history
from ltvcore.api.http import (
    USER_HEADER,
    error_response,
    html_response,
    html_wanted,
    json_body,
    json_response,
    logger,
    origin,
    prefix,
    requester,
)
from ltvcore.api.models import ForecastBody
from ltvcore.api.service import ForecastService, RunNotFound

_LIMIT = re.compile(r"[0-9]{1,7}")  # ASCII only: "²".isdigit() is True and int("²") fails


def router(service: ForecastService) -> APIGatewayRouter:
    routes = APIGatewayRouter()

    def run_url(run_id: str) -> str:
        event = routes.current_event
        return f"{origin(event)}{prefix(event)}/forecasts/{run_id}"

    def file_url(run_id: str, name: str) -> str:
        return f"{run_url(run_id)}/files/{name}"

    @routes.post("/forecasts")
    def submit():
        event = routes.current_event
        origin(event)  # a Host no link may be built from is refused, before anything is recorded
        body = ForecastBody.from_json(json_body(event))  # InputError: a 400 naming every field
        who = requester(event.raw_event, event.headers.get(USER_HEADER), local=service.local)
        accepted = service.submit(body, requested_by=who, run_url=run_url)
        logger.info("forecast accepted", extra={"run_id": accepted.run_id,
                                                 "started": accepted.started,
                                                 "requested_by": who, "dataset": body.dataset})
        status_url = run_url(accepted.run_id)
        return json_response(202, {"run_id": accepted.run_id, "status_url": status_url},
                             {"Location": status_url, "Cache-Control": "no-store"})

    @routes.get("/forecasts")
    def runs():
        event = routes.current_event
        origin(event)
        text = event.get_query_string_value("limit") or "50"
        if not _LIMIT.fullmatch(text) or not 1 <= int(text) <= 1000:
            return error_response(400, "field 'limit': must be a whole number in [1, 1000]", "limit")
        listed = service.runs(limit=int(text))
        headers = {"Vary": "Accept", "Cache-Control": "no-store"}
        if html_wanted(event):
            return html_response(200, pages.runs_page(prefix=prefix(event), runs=listed), headers)
        for entry in listed:
            entry["url"] = run_url(entry["run_id"])
        return json_response(200, {"runs": listed}, headers)

    @routes.get("/forecasts/<run_id>")
    def run(run_id: str):
        event = routes.current_event
        origin(event)
        headers = {"Vary": "Accept", "Cache-Control": "no-store"}
        try:
            described = service.run(run_id, file_url=file_url)
        except RunNotFound:
            if html_wanted(event):
                page = pages.message_page(prefix=prefix(event), title="No such run",
                                          message=f"There is no forecast run '{run_id}'.")
                return html_response(404, page, headers)
            raise
        if html_wanted(event):
            # Earlier runs and monitor results: read for the page only, the JSON stays the run's
            history = (run_history(service.store, described)
                       if described["status"] == "succeeded" else None)
            return html_response(200, pages.run_page(prefix=prefix(event), run=described,
                                                     history=history), headers)
        return json_response(200, described, headers)

    return routes
