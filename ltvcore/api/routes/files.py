"""``GET /forecasts/{run_id}/files/{name}``: one artifact of a complete run.

``report.html``, ``forecast.csv``, ``curve.csv``, ``params.json`` or ``manifest.json``: the
bytes locally; on an S3 store a ``302`` to a short-lived pre-signed URL.
"""

from __future__ import annotations

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.router import APIGatewayRouter

from ltvcore.api.http import HTML, JSON
from ltvcore.api.service import ARTIFACTS, ForecastService, RunNotFound
from ltvcore.runs.store import S3Store

_CONTENT_TYPES = {".html": HTML, ".csv": "text/csv; charset=utf-8", ".json": JSON}


def router(service: ForecastService) -> APIGatewayRouter:
    routes = APIGatewayRouter()

    @routes.get("/forecasts/<run_id>/files/<name>")
    def artifact(run_id: str, name: str):
        if name not in ARTIFACTS:
            raise RunNotFound(f"{run_id}/{name}")
        if isinstance(service.store, S3Store):
            if not service.store.exists(run_id):
                raise RunNotFound(run_id)
            return Response(status_code=302, content_type=None, body="",
                            headers={"Location": service.presigned_url(run_id, name),
                                     "Cache-Control": "no-store"})
        content = service.artifact(run_id, name)
        suffix = name[name.rfind("."):]
        headers = {"Cache-Control": "private, max-age=86400, immutable",
                   "X-Content-Type-Options": "nosniff"}
        if suffix != ".html":
            headers["Content-Disposition"] = f'attachment; filename="{run_id}-{name}"'
        return Response(status_code=200, content_type=_CONTENT_TYPES[suffix],
                        body=content.decode("utf-8"), headers=headers)

    return routes
