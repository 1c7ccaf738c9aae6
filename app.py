#!/usr/bin/env python3
"""The CDK app: ``npx cdk synth|deploy`` or ``python app.py`` (writes ``cdk.out``)."""

import sys

from infra.bundling import BundlingError
from infra.stack import build_app


def main() -> int:
    try:
        app, _stack = build_app()
    except BundlingError as error:
        print(f"app.py: {error}", file=sys.stderr)
        return 2
    app.synth()
    return 0


if __name__ == "__main__":
    sys.exit(main())
