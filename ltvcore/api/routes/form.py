"""``GET /``: the form (HTML), offering the built-in models and each registered champion."""

from __future__ import annotations

from aws_lambda_powertools.event_handler.router import APIGatewayRouter

from ltvcore.api import pages
from ltvcore.api.http import html_response, logger, prefix
from ltvcore.api.service import ForecastService


def router(service: ForecastService) -> APIGatewayRouter:
    routes = APIGatewayRouter()

    @routes.get("/")
    def form():
        try:
            registered = service.model_choices()
        except Exception:  # noqa: BLE001 - the form still offers the built-in models
            logger.exception("could not list the registered models")
            registered = []
        page = pages.form_page(prefix=prefix(routes.current_event), datasets=service.dataset_choices(),
                               registered=registered)
        return html_response(200, page, {"Cache-Control": "no-store"})

    return routes
