#!/usr/bin/env python3
"""The CDK app: ``npx cdk synth|deploy`` or ``python app.py`` (writes ``cdk.out``)."""

from infra.stack import build_app

if __name__ == "__main__":
    app, _stack = build_app()
    app.synth()
