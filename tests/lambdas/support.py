"""Helpers of the Lambda handler tests (imported as ``tests.lambdas.support``)."""

from __future__ import annotations

from ltvcore.api.launchers import Job
from ltvcore.request import ForecastRequest
from ltvcore.runs import ids
from ltvcore.runs.manifest import code_version

BUCKET = "ltv-artifacts"
STORE = f"s3://{BUCKET}"
DIGEST = "ab" * 32


def make_job(request: ForecastRequest | None = None, digest: str = DIGEST) -> Job:
    """A run as the API's launcher submits it (its execution input is what Validate gets)."""
    request = request or ForecastRequest(dataset="demo", horizons=(30, 365))
    run_id = ids.run_id(request.normalised(), digest, code_version())
    return Job(run_id=run_id, request=request, dataset="demo",
               inputs={"events": f"{STORE}/warehouse/demo"},
               input_digest=digest, requested_by="arn:aws:iam::123456789012:user/ana",
               notify=("growth",), status_url=f"https://api.example/v1/forecasts/{run_id}",
               submitted="2026-01-12T08:00:00Z")
