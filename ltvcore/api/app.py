"""The HTTP API of docs/interface.md, HTTP API: one Powertools app for API Gateway and ``ltv serve``.

The routes live in :mod:`ltvcore.api.routes` (``GET /``; ``POST``/``GET /forecasts`` and
``GET /forecasts/{run_id}``; ``GET /forecasts/{run_id}/files/{name}``; ``GET /models`` and
``POST /models/{name}/{version}/promote``), the request and response helpers in
:mod:`ltvcore.api.http`. Errors: ``400 {"error", "field"}`` for an invalid request (the message
names the field, or ``body``, or the query parameter or header at fault), ``404 {"error"}`` for
an unknown run or route, ``409`` for a registered model that fails verification, ``503`` when
the local queue is full, and a plain ``500`` for anything else (logged with its traceback,
never returned).
"""

from __future__ import annotations

from aws_lambda_powertools.event_handler import APIGatewayRestResolver
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestUnsupportedContentType, RequestValidationError

from ltvcore.api.http import (
    MAX_JSON_DEPTH,
    MAX_NUMBER_DIGITS,
    BadRequest,
    error_response,
    json_body,
    logger,
    requester,
    validation_error,
    wants_html,
)
from ltvcore.api.launchers import LauncherBusy
from ltvcore.api.routes import files, forecasts, form, models
from ltvcore.api.service import ForecastService, RunNotFound
from ltvcore.errors import InputError
from ltvcore.lifecycle.registry import ModelIntegrityError

__all__ = ["MAX_JSON_DEPTH", "MAX_NUMBER_DIGITS", "BadRequest", "create_app", "json_body",
           "logger", "requester", "wants_html"]


def create_app(service: ForecastService) -> APIGatewayRestResolver:
    """The resolver with every route, bound to ``service``.

    One resolver handles one event at a time (Powertools keeps the current event on the
    class): ``ltv serve`` serialises calls to it.
    """
    app = APIGatewayRestResolver(enable_validation=True)
    for routes in (form, forecasts, files, models):
        app.include_router(routes.router(service))

    # -- errors: a field-naming 400, a 404, never a traceback --------------
    @app.exception_handler([RequestValidationError, RequestUnsupportedContentType])
    def invalid_body(error: RequestValidationError):
        field, message = validation_error(list(error.errors()))
        return error_response(400, message, field)

    @app.exception_handler(BadRequest)
    def bad_request(error: BadRequest):
        return error_response(400, str(error), error.field)

    @app.exception_handler(InputError)
    def invalid_request(error: InputError):
        return error_response(400, str(error), error.column or "body", error.errors)

    @app.exception_handler(RunNotFound)
    def unknown_run(error: RunNotFound):
        run_id = str(error).split("/")[0]
        return error_response(404, f"no forecast run '{run_id}'" if "/" not in str(error)
                              else f"run '{run_id}' has no file '{str(error).split('/', 1)[1]}' "
                                   "(or is not finished)")

    @app.exception_handler(ModelIntegrityError)
    def tampered_model(error: ModelIntegrityError):
        # a registered model that no longer matches its manifest: refused, never used
        return error_response(409, str(error), "model")

    @app.exception_handler(LauncherBusy)
    def busy(error: LauncherBusy):
        return error_response(503, f"Too many forecasts are waiting ({error}); try again in a minute.")

    @app.not_found
    def no_route(error: NotFoundError):
        event = app.current_event
        return error_response(404, f"no route {event.http_method} {event.path}")

    @app.exception_handler(Exception)
    def internal(error: Exception):
        logger.exception("unhandled error", extra={"path": app.current_event.path})
        return error_response(500, "Internal error: the request could not be completed. "
                                   "It has been logged; please try again or tell the team.")

    return app
