"""``python app.py`` synthesises with cdk-nag (AwsSolutions) and CloudFormation's template
validation on, with zero unacknowledged findings, each acknowledgement scoped and reasoned."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import aws_cdk as cdk
import pytest
from aws_cdk import aws_s3 as s3

from infra import nag
from infra.stack import build_app
from tests.infra.support import ROOT, TEST_CONTEXT


@pytest.fixture(scope="module")
def cdk_out(tmp_path_factory):
    outdir = tmp_path_factory.mktemp("cdk.out")
    context = json.loads((ROOT / "cdk.json").read_text())["context"] | TEST_CONTEXT
    env = {**os.environ, "CDK_OUTDIR": str(outdir), "CDK_CONTEXT_JSON": json.dumps(context)}
    done = subprocess.run([sys.executable, "app.py"], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return outdir


def test_app_synthesises_the_stack(cdk_out):
    template = json.loads((cdk_out / "LtvForecast.template.json").read_text())
    assert len(template["Resources"]) > 50


def test_no_unacknowledged_finding(cdk_out):
    report = json.loads((cdk_out / "validation-report.json").read_text())
    plugins = {p["pluginName"]: p for p in report["pluginReports"]}
    assert plugins["AwsSolutions"]["conclusion"] == "success"
    assert all(not p["violations"] for p in report["pluginReports"])


def test_each_acknowledgement_is_scoped_reasoned_and_used(cdk_out):
    report = json.loads((cdk_out / "validation-report.json").read_text())
    suppressed = report["pluginReports"][0]["suppressedViolations"]
    used = set()
    for finding in suppressed:
        assert len(finding["reason"]) >= 30, finding["acknowledgedId"]
        assert finding["acknowledgedAt"].count("/") >= 2  # a construct in the stack, never the app
        used.add((finding["acknowledgedId"], "/" + finding["acknowledgedAt"]))
    metadata = json.loads((cdk_out / "LtvForecast.metadata.json").read_text())
    declared = {(rule, path) for path, entries in metadata.items() for entry in entries
                if entry["type"] == "aws:cdk:acknowledged-rules" for rule in entry["data"]}
    assert declared == used  # no stale acknowledgement
    wildcard_only = {rule for rule, _ in declared if rule.endswith("-IAM5[Resource::*]")}
    assert wildcard_only == {"AwsSolutions::AwsSolutions-IAM5[Resource::*]"}


def test_acknowledgements_also_match_a_stack_bound_to_an_account_and_region(tmp_path, monkeypatch):
    monkeypatch.setenv("CDK_DEFAULT_ACCOUNT", "123456789012")
    monkeypatch.setenv("CDK_DEFAULT_REGION", "eu-west-1")
    app, stack = build_app(TEST_CONTEXT, outdir=str(tmp_path), checks=False)
    assert stack.region == "eu-west-1"
    nag.attach(app)  # cdk-nag only: CloudFormation's validation already ran above
    app.synth()
    report = json.loads((tmp_path / "validation-report.json").read_text())
    assert not report["pluginReports"][0]["violations"]


def test_a_new_finding_fails_the_synth(tmp_path):
    app = cdk.App(outdir=str(tmp_path), builtin_cloud_formation_validation=False)
    stack = cdk.Stack(app, "Probe")
    s3.Bucket(stack, "Careless")  # no TLS policy, no access logs
    nag.attach(app)
    with pytest.raises(Exception, match="ValidationFailed"):
        app.synth()
    report = json.loads((tmp_path / "validation-report.json").read_text())
    rules = {v["ruleName"] for v in report["pluginReports"][0]["violations"]}
    assert {"AwsSolutions-S1", "AwsSolutions-S10"} <= rules
