"""``GET /``: the form (HTML)."""

from __future__ import annotations

from aws_lambda_powertools.event_handler.router import APIGatewayRouter

from ltvcore.api import pages
from ltvcore.api.http import html_response, prefix
from ltvcore.api.service import ForecastService


def router(service: ForecastService) -> APIGatewayRouter:
    routes = APIGatewayRouter()

    @routes.get("/")
    def form():
        page = pages.form_page(prefix=prefix(routes.current_event), datasets=service.dataset_choices())
        return html_response(200, page, {"Cache-Control": "no-store"})

    return routes
