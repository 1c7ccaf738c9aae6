"""Post-deploy smoke test: one tiny forecast through the deployed stack, end to end.

    scripts/smoke-test [--stack LtvForecast] [--dataset ltv-smoke-test] [--timeout-minutes 60]

With the engineer's AWS credentials (``AWS_PROFILE``/``AWS_REGION`` as for ``cdk deploy``):

1. reads the stack's outputs (CloudFormation ``DescribeStacks``);
2. writes a small synthetic dataset (``ltvcore.sample``, 2 campaigns, a few hundred users) into
   ``<WarehouseUri>/<dataset>/`` and runs the warehouse refresh on it, waiting for it to end;
3. submits a forecast through the tools route (``POST <ToolsApiUrl>forecasts``, SigV4-signed
   with those credentials, as any IAM tool would);
4. polls ``GET <ToolsApiUrl>forecasts/<run_id>`` until the run succeeds or fails;
5. downloads ``forecast.csv`` through the run's pre-signed link and checks its columns.

Exit status 0 when every step passed; otherwise 1, and the step that failed says why. The run it
leaves is a normal run (``requested_by`` is the caller's IAM identity); a second smoke test on
the same code and data reuses it, so it costs one pipeline run per deployed version. Needs
``cloudformation:DescribeStacks``, ``s3:PutObject`` under the warehouse, ``states:StartExecution``
and ``DescribeExecution`` on the refresh, and ``execute-api:Invoke`` on the tools routes.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import boto3
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest

OUTPUTS = ("ToolsApiUrl", "WarehouseUri", "WarehouseRefreshStateMachineArn")
UPLOADED = ("events", "installs", "spend")  # the refresh writes user_day/ and state.json itself


class SmokeTestFailed(Exception):
    """A step did not do what the deployment promises."""


def stack_outputs(cloudformation: Any, stack: str) -> dict[str, str]:
    (found,) = cloudformation.describe_stacks(StackName=stack)["Stacks"]
    outputs = {o["OutputKey"]: o["OutputValue"] for o in found.get("Outputs", [])}
    missing = [name for name in OUTPUTS if name not in outputs]
    if missing:
        raise SmokeTestFailed(f"stack {stack} has no output {', '.join(missing)}: is it deployed from this code?")
    return outputs


def write_dataset(folder: Path) -> Path:
    """A tiny dataset in the warehouse layout (what ``ltv warehouse ingest`` writes)."""
    from ltvcore.sample import write_sample
    from ltvcore.warehouse.store import Warehouse

    files = folder / "files"
    write_sample(files, install_days=5, observed_days=14, n_campaigns=2, users_per_day=30)
    dataset = folder / "warehouse"
    Warehouse(dataset).ingest(events=files / "events.csv", installs=files / "installs.csv",
                              spend=files / "spend.csv")
    return dataset


def upload(s3: Any, warehouse_uri: str, name: str, dataset: Path) -> int:
    parsed = urlparse(warehouse_uri)
    prefix = "/".join(p for p in (parsed.path.strip("/"), name) if p)
    count = 0
    for path in sorted(dataset.rglob("*")):
        relative = path.relative_to(dataset).as_posix()
        if path.is_file() and relative.split("/", 1)[0] in UPLOADED:
            s3.upload_file(str(path), parsed.netloc, f"{prefix}/{relative}")
            count += 1
    return count


def wait_for_execution(states: Any, arn: str, deadline: float, poll: float) -> dict[str, Any]:
    while True:
        described = states.describe_execution(executionArn=arn)
        if described["status"] != "RUNNING":
            return dict(described)
        if time.monotonic() > deadline:
            raise SmokeTestFailed(f"{arn} still runs at the deadline")
        time.sleep(poll)


def signed(session: Any, method: str, url: str, body: dict[str, Any] | None = None) -> Any:
    """``url`` answered, the request SigV4-signed for API Gateway with the session's credentials."""
    data = json.dumps(body).encode() if body is not None else None
    request = AWSRequest(method=method, url=url, data=data,
                         headers={"Content-Type": "application/json", "Accept": "application/json"})
    credentials = session.get_credentials()
    if credentials is None:
        raise SmokeTestFailed("no AWS credentials: set AWS_PROFILE (or run aws sso login)")
    SigV4Auth(credentials.get_frozen_credentials(), "execute-api", _region(url, session)).add_auth(request)
    prepared = urllib.request.Request(url, data=data, method=method, headers=dict(request.headers.items()))
    try:
        with urllib.request.urlopen(prepared, timeout=60) as response:  # noqa: S310 - the stack's URL
            return json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as error:
        raise SmokeTestFailed(f"{method} {url} answered {error.code}: {error.read()[:500]!r}") from None


def _region(url: str, session: Any) -> str:
    host = urlparse(url).hostname or ""
    parts = host.split(".")
    return parts[2] if len(parts) > 3 and parts[1] == "execute-api" else str(session.region_name)


def check_forecast(text: str) -> int:
    """The rows of a forecast.csv with the interface's columns (docs/interface.md)."""
    from ltvcore.request import FORECAST_COLUMNS

    rows = list(csv.DictReader(io.StringIO(text)))
    header = next(csv.reader(io.StringIO(text)), [])
    missing = [c for c in FORECAST_COLUMNS if c not in header]
    if missing or not rows:
        raise SmokeTestFailed(f"forecast.csv lacks {missing or 'rows'}")
    return len(rows)


def run(args: argparse.Namespace, *, session: Any = None, say: Callable[[str], None] = print) -> str:
    """Every step, in order; returns the run id."""
    session = session or boto3.Session()
    deadline = time.monotonic() + args.timeout_minutes * 60
    outputs = stack_outputs(session.client("cloudformation"), args.stack)
    say(f"1/5 stack {args.stack}: tools API {outputs['ToolsApiUrl']}")
    if not args.skip_data:
        with tempfile.TemporaryDirectory() as folder:
            count = upload(session.client("s3"), outputs["WarehouseUri"], args.dataset,
                           write_dataset(Path(folder)))
        states = session.client("stepfunctions")
        arn = states.start_execution(stateMachineArn=outputs["WarehouseRefreshStateMachineArn"])["executionArn"]
        say(f"2/5 uploaded {count} files to {outputs['WarehouseUri']}/{args.dataset}/; refreshing")
        ended = wait_for_execution(states, arn, deadline, args.poll_seconds)
        if ended["status"] != "SUCCEEDED":
            raise SmokeTestFailed(f"the warehouse refresh ended {ended['status']}: {ended.get('cause', '')}")
    else:
        say(f"2/5 dataset {args.dataset} as it is in the warehouse")
    api = outputs["ToolsApiUrl"].rstrip("/") + "/"
    accepted = signed(session, "POST", f"{api}forecasts",
                      {"dataset": args.dataset, "horizons": [30, 90]})
    run_id = str(accepted["run_id"])
    say(f"3/5 submitted: run {run_id}")
    while True:
        described = signed(session, "GET", f"{api}forecasts/{run_id}")
        if described["status"] == "succeeded":
            break
        if described["status"] == "failed":
            raise SmokeTestFailed(f"run {run_id} failed: {described.get('error')}")
        if time.monotonic() > deadline:
            raise SmokeTestFailed(f"run {run_id} is still {described['status']} at the deadline")
        time.sleep(args.poll_seconds)
    say(f"4/5 run {run_id} succeeded")
    with urllib.request.urlopen(described["files"]["forecast.csv"], timeout=60) as response:  # noqa: S310
        rows = check_forecast(response.read().decode("utf-8"))
    say(f"5/5 forecast.csv: {rows} rows; report: {described['files']['report.html'][:80]}…")
    return run_id


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="scripts/smoke-test", description=__doc__.splitlines()[0])
    parser.add_argument("--stack", default="LtvForecast", help="the stack name (ltv:stackName)")
    parser.add_argument("--dataset", default="ltv-smoke-test", help="warehouse dataset to write and forecast")
    parser.add_argument("--skip-data", action="store_true", help="forecast the dataset as it is")
    parser.add_argument("--timeout-minutes", type=float, default=60)
    parser.add_argument("--poll-seconds", type=float, default=15)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    try:
        run(parse_args(argv))
    except SmokeTestFailed as error:
        print(f"smoke test FAILED: {error}", file=sys.stderr)
        return 1
    print("smoke test passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
