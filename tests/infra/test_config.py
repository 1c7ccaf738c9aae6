"""Deployment settings: documented defaults in one place, command-line values checked once."""

from __future__ import annotations

import json

import pytest

from infra.config import DEFAULTS, PREFIX, DeploymentConfig
from tests.infra.support import ROOT


def test_cdk_json_carries_every_default():
    context = json.loads((ROOT / "cdk.json").read_text())["context"]
    ours = {key[len(PREFIX):]: value for key, value in context.items() if key.startswith(PREFIX)}
    assert ours == DEFAULTS


def test_cdk_json_runs_the_app_with_the_project_venv():
    assert json.loads((ROOT / "cdk.json").read_text())["app"] == ".venv/bin/python app.py"


def test_package_json_pins_cdk_cli_major_2():
    package = json.loads((ROOT / "package.json").read_text())
    version = package["devDependencies"]["aws-cdk"]
    assert version.split(".")[0] == "2" and version[0].isdigit()  # exact pin, never 3.x


def test_command_line_strings_are_converted():
    config = DeploymentConfig.from_mapping({"forecastShardCount": "4", "objectLock": "true",
                                            "alarmEmail": "ops@example.com"})
    assert config.forecastShardCount == 4 and config.objectLock is True
    assert config.pipeline_name == "ltvforecast-forecast"


@pytest.mark.parametrize(("key", "value", "fragment"), [
    ("forecastShardCount", "0", "ltv:forecastShardCount"),
    ("forecastShardCount", "two", "a whole number"),
    ("objectLock", "maybe", "true or false"),
    ("processingInstanceType", "m5.large", "SageMaker instance type"),
    ("dailyPrepareSchedule", "every day", "cron(...)"),
    ("athenaScanLimitGb", "0", "ltv:athenaScanLimitGb"),
    ("scratchExpirationDays", "3", "ltv:scratchExpirationDays"),  # must outlive the step cache
    ("stackName", "1stack", "ltv:stackName"),
])
def test_bad_values_name_the_key(key, value, fragment):
    with pytest.raises(ValueError, match=fragment.replace("(", r"\(").replace(")", r"\)")
                       .replace(".", r"\.")):
        DeploymentConfig.from_mapping({key: value})


def test_unknown_setting_is_refused():
    with pytest.raises(ValueError, match="unknown setting"):
        DeploymentConfig.from_mapping({"shards": 3})


@pytest.mark.parametrize(("values", "fragment"), [
    ({"forecastShardCount": True}, "ltv:forecastShardCount=True: expected a whole number"),  # JSON true is no count
    ({"forecastShardCount": "4.5"}, "expected a whole number"),
    ({"reportLinkHours": 13}, "ltv:reportLinkHours=13: expected a whole number in [1, 12]"),
    ({"alarmEmail": "ops"}, "ltv:alarmEmail='ops': expected an e-mail address or empty"),
    ({"slackSecretName": "team slack"}, "a Secrets Manager secret name"),
    # the default scratch expiry (14 days) must still outlive a step cache given on the command line
    ({"stepCacheDays": "30"}, "ltv:scratchExpirationDays=14: expected a whole number in [31, 3650]"),
])
def test_messages_say_what_was_expected(values, fragment):
    with pytest.raises(ValueError) as caught:
        DeploymentConfig.from_mapping(values)
    assert fragment in str(caught.value)


def test_settings_are_read_from_the_cdk_context_and_frozen():
    from aws_cdk import App

    app = App(context={"ltv:forecastShardCount": "3", "ltv:bundleLambdaDependencies": "false",
                       "ltv:alarmEmail": "ops@example.com"})
    config = DeploymentConfig.from_node(app.node)
    assert (config.forecastShardCount, config.bundleLambdaDependencies) == (3, False)
    assert config.model_dump() == {**DEFAULTS, "forecastShardCount": 3, "bundleLambdaDependencies": False,
                                   "alarmEmail": "ops@example.com"}
    with pytest.raises(ValueError):
        config.stackName = "Other"  # one deployment, one set of settings


def test_pipeline_wait_is_derived_from_the_steps_or_must_cover_them():
    derived = DeploymentConfig.from_mapping({"processingMaxRuntimeMinutes": "60"})
    assert derived.pipeline_wait_minutes == 3 * (60 + 15)
    assert derived.execution_timeout_minutes > derived.pipeline_wait_minutes + 60  # + publish
    given = DeploymentConfig.from_mapping({"processingMaxRuntimeMinutes": "10", "pipelineTimeoutMinutes": "90"})
    assert given.pipeline_wait_minutes == 90
    with pytest.raises(ValueError, match=r"ltv:pipelineTimeoutMinutes='240': expected 0 \(derived\) "
                                         r"or a whole number of at least 405"):
        DeploymentConfig.from_mapping({"pipelineTimeoutMinutes": "240"})  # 3 steps x 120 min


def test_warehouse_names_are_valid_glue_and_athena_names():
    config = DeploymentConfig.from_mapping({"stackName": "Ltv-Team2"})
    assert config.glue_database_name == "ltv_team2_warehouse"
    assert config.athena_workgroup_name == "Ltv-Team2-warehouse"
    assert config.refresh_state_machine_name == "Ltv-Team2-warehouse-refresh"
