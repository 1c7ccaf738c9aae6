"""Publish step: manifest last, commit the run to the store, leave the result for the workflow.

Only the run the request was accepted as (``--run-id``) is published: the API already told the
requester that id, and the run page and the Slack message look for it.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from ltvcore.errors import InputError
from ltvcore.workflow import steps
from ltvcore.workflow.artifacts import RUN_INFO
from sagemaker_jobs import _entry, paths

RESULT = "publish.json"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, default=paths.local(paths.PUBLISH_INPUT))
    parser.add_argument("--output", type=Path, default=paths.local(paths.PUBLISH_OUTPUT))
    parser.add_argument("--store", default=os.environ.get("LTV_STORE", ""))
    parser.add_argument("--requested-by", default=os.environ.get("LTV_REQUESTED_BY", ""))
    parser.add_argument("--run-id", default=os.environ.get("LTV_RUN_ID", ""),
                        help="the run the request was accepted as: publish nothing else")
    args = parser.parse_args(argv)
    if not args.store:
        parser.error("--store (or LTV_STORE) is required")
    computed = json.loads((args.run / RUN_INFO).read_text(encoding="utf-8"))["run_id"]
    if args.run_id and computed != args.run_id:
        raise InputError(f"the forecast computed run {computed}, not the requested run {args.run_id}: "
                         "the data or the code version changed in between; submit it again")
    result = steps.publish(args.run, args.store, requested_by=args.requested_by or None)
    args.output.mkdir(parents=True, exist_ok=True)
    (args.output / RESULT).write_text(json.dumps(result, default=str), encoding="utf-8")
    print(json.dumps(result, default=str))
    return 0


if __name__ == "__main__":
    _entry.run(main)
