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
