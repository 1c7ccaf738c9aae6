"""The warehouse in the template: Glue tables with partition projection, the Athena workgroup,
the refresh state machine and its schedule, and permissions scoped to what each part does."""

from __future__ import annotations

import json

import pytest

from infra.config import DEFAULTS
from infra.warehouse import PROJECTION_START
from tests.infra.support import flatten, resources, synth


@pytest.fixture(scope="module")
def doc(tmp_path_factory):
    _stack, template = synth(tmp_path_factory.mktemp("cdk"))
    return template.to_json()


def _tables(doc) -> dict[str, dict]:
    return {t["Properties"]["TableInput"]["Name"]: t["Properties"] for t in resources(doc, "AWS::Glue::Table").values()}


def _machine(doc) -> tuple[str, dict]:
    (found,) = [(k, m) for k, m in resources(doc, "AWS::StepFunctions::StateMachine").items() if "Warehouse" in k]
    return found


def _definition(doc) -> dict:
    return json.loads(flatten(_machine(doc)[1]["Properties"]["DefinitionString"]))


def _statements(doc, fragment: str) -> list[dict]:
    (policy,) = [p for key, p in resources(doc, "AWS::IAM::Policy").items() if fragment in key]
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    for statement in statements:
        for field in ("Action", "Resource"):
            if not isinstance(statement[field], list):
                statement[field] = [statement[field]]
        statement["Resource"] = [flatten(r) for r in statement["Resource"]]
    return statements


def _granted(statements: list[dict], action: str) -> list[str]:
    return [r for s in statements if action in s["Action"] for r in s["Resource"]]


# --------------------------------------------------------------------------- catalog


def test_one_glue_database_with_the_four_tables(doc):
    (database,) = resources(doc, "AWS::Glue::Database").values()
    assert database["Properties"]["DatabaseInput"]["Name"] == "ltvforecast_warehouse"
    tables = _tables(doc)
    assert sorted(tables) == ["events", "installs", "spend", "user_day"]
    for table in tables.values():
        assert table["DatabaseName"] == {"Ref": next(iter(resources(doc, "AWS::Glue::Database")))}
        storage = table["TableInput"]["StorageDescriptor"]
        assert storage["SerdeInfo"]["SerializationLibrary"].endswith("ParquetHiveSerDe")
        assert flatten(storage["Location"]) == "s3://${StorageArtifacts08431D1F}/warehouse/"
    columns = {name: [(c["Name"], c["Type"]) for c in t["TableInput"]["StorageDescriptor"]["Columns"]]
               for name, t in tables.items()}
    assert columns["events"] == [("user_id", "string"), ("revenue", "double")]
    assert columns["user_day"] == [("user_id", "string"), ("revenue", "double"), ("events", "bigint")]
    assert columns["installs"][:2] == [("user_id", "string"), ("install_date", "date")]
    assert columns["spend"] == [("campaign", "string"), ("spend", "double")]


@pytest.mark.parametrize("name", ["events", "user_day"])
def test_dated_tables_project_the_dataset_and_the_event_date(doc, name):
    table = _tables(doc)[name]["TableInput"]
    assert table["PartitionKeys"] == [{"Name": "dataset", "Type": "string"}, {"Name": "event_date", "Type": "date"}]
    parameters = table["Parameters"]
    assert {key: parameters[key] for key in parameters if key.startswith("projection.")} == {
        "projection.enabled": "true",
        "projection.dataset.type": "injected",
        "projection.event_date.type": "date",
        "projection.event_date.format": "yyyy-MM-dd",
        "projection.event_date.range": f"{PROJECTION_START},NOW",
        "projection.event_date.interval": "1",
        "projection.event_date.interval.unit": "DAYS",
    }
    assert flatten(parameters["storage.location.template"]) == (
        f"s3://${{StorageArtifacts08431D1F}}/warehouse/${{dataset}}/{name}/event_date=${{event_date}}/")


@pytest.mark.parametrize("name", ["installs", "spend"])
def test_undated_tables_project_the_dataset_only(doc, name):
    table = _tables(doc)[name]["TableInput"]
    assert table["PartitionKeys"] == [{"Name": "dataset", "Type": "string"}]
    assert table["Parameters"]["projection.dataset.type"] == "injected"
    assert flatten(table["Parameters"]["storage.location.template"]).endswith(f"/warehouse/${{dataset}}/{name}/")


# --------------------------------------------------------------------------- Athena


def test_workgroup_enforces_encrypted_results_in_the_bucket_and_a_scan_limit(doc):
    (workgroup,) = resources(doc, "AWS::Athena::WorkGroup").values()
    props = workgroup["Properties"]
    assert props["Name"] == "LtvForecast-warehouse"
    config = props["WorkGroupConfiguration"]
    assert config["EnforceWorkGroupConfiguration"] is True
    assert config["PublishCloudWatchMetricsEnabled"] is True
    assert config["BytesScannedCutoffPerQuery"] == DEFAULTS["athenaScanLimitGb"] * 2**30
    assert config["EngineVersion"] == {"SelectedEngineVersion": "Athena engine version 3"}
    results = config["ResultConfiguration"]
    assert flatten(results["OutputLocation"]) == "s3://${StorageArtifacts08431D1F}/scratch/athena/"
    # the bucket's own encryption (S3-managed keys): results are encrypted the same way
    assert results["EncryptionConfiguration"] == {"EncryptionOption": "SSE_S3"}
    bucket = doc["Resources"]["StorageArtifacts08431D1F"]["Properties"]
    assert bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"][0][
        "ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"


# --------------------------------------------------------------------------- the refresh


def test_refresh_plans_unloads_each_date_on_athena_and_commits(doc):
    definition = _definition(doc)
    states = definition["States"]
    assert definition["StartAt"] == "Start" and states["Start"]["Next"] == "Plan"
    assert states["Start"]["Result"] == {"count": 1} and states["Start"]["ResultPath"] == "$.round"
    assert states["Plan"]["Next"] == "UnloadEachDate" and states["UnloadEachDate"]["Next"] == "Commit"
    assert states["Commit"]["Next"] == "MoreDates"
    assert states["Plan"]["Parameters"] == {"action": "plan", "execution.$": "$$.Execution.Id"}
    each = states["UnloadEachDate"]
    assert each["Type"] == "Map" and each["ItemsPath"] == "$.plan.items" and each["MaxConcurrency"] == 5
    unload = each["ItemProcessor"]["States"]["Unload"]
    assert unload["Resource"] == "arn:${AWS::Partition}:states:::athena:startQueryExecution.sync"
    assert unload["Parameters"]["QueryString.$"] == "$.sql"
    assert unload["Parameters"]["WorkGroup"] == "LtvForecast-warehouse"
    (retry,) = unload["Retry"]
    assert retry["ErrorEquals"] == ["Athena.TooManyRequestsException", "Athena.AmazonAthenaException"]
    assert unload["Catch"] == [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "UnloadFailed"}]
    failed = each["ItemProcessor"]["States"]["UnloadFailed"]["Parameters"]
    assert failed["error.$"] == "$.error.Error" and failed["date.$"] == "$.date"
    assert states["Commit"]["Parameters"] == {"action": "commit", "datasets.$": "$.plan.datasets",
                                              "results.$": "$.results", "removed.$": "$.plan.removed"}
    failing, more = states["MoreDates"]["Choices"]
    assert (failing["Variable"], failing["Next"]) == ("$.commit.failed_count", "Failed")
    assert more["Next"] == "NextRound" and states["NextRound"]["Next"] == "Plan"
    assert [(c["Variable"], c.get("NumericGreaterThan", c.get("NumericLessThan"))) for c in more["And"]] == [
        ("$.plan.deferred", 0), ("$.round.count", 20)]
    assert states["NextRound"]["Parameters"] == {"count.$": "States.MathAdd($.round.count, 1)"}
    assert states["MoreDates"]["Default"] == "Done"
    assert states["Failed"]["Error"] == "WarehouseRefreshFailed"
    assert definition["TimeoutSeconds"] == 12 * 3600


def test_the_daily_schedule_starts_the_refresh(doc):
    (rule,) = [r["Properties"] for r in resources(doc, "AWS::Events::Rule").values()
               if "ScheduleExpression" in r["Properties"]]
    assert rule["ScheduleExpression"] == DEFAULTS["dailyPrepareSchedule"]
    (target,) = rule["Targets"]
    assert target["Arn"] == {"Ref": _machine(doc)[0]}
    assert target["Input"] == "{}"
    assert "EventDeadLetters" in target["DeadLetterConfig"]["Arn"]["Fn::GetAtt"][0]
    assert target["RetryPolicy"]["MaximumRetryAttempts"] == 8
    role = target["RoleArn"]["Fn::GetAtt"][0]  # EventBridge's own role, to start this machine only
    (start,) = _statements(doc, f"{role[:-8]}DefaultPolicy")
    assert start["Action"] == ["states:StartExecution"] and start["Resource"] == [f"${{{_machine(doc)[0]}}}"]


def test_refresh_lambda_lists_and_writes_state_but_reads_no_data(doc):
    (function,) = [f["Properties"] for k, f in resources(doc, "AWS::Lambda::Function").items() if "RefreshLambda" in k]
    env = {k: flatten(v) for k, v in function["Environment"]["Variables"].items()}
    assert env["LTV_WAREHOUSE"] == "s3://${StorageArtifacts08431D1F}/warehouse"
    assert env["LTV_GLUE_DATABASE"] == "ltvforecast_warehouse"
    assert env["LTV_REFRESH_STATE_MACHINE_ARN"].endswith(":stateMachine:LtvForecast-warehouse-refresh")
    assert function["Timeout"] == 600
    statements = _statements(doc, "RefreshLambdaRole")
    bucket = "${StorageArtifacts08431D1F.Arn}"
    assert _granted(statements, "s3:GetObject") == [f"{bucket}/warehouse/*/state.json"]
    assert sorted(_granted(statements, "s3:PutObject")) == sorted(
        f"{bucket}/warehouse/*/{name}" for name in ("state.json", "inputs.manifest", "warehouse.json"))
    assert _granted(statements, "s3:DeleteObject") == [f"{bucket}/warehouse/*/user_day/*"]
    assert _granted(statements, "states:ListExecutions")[0].endswith(
        ":stateMachine:LtvForecast-warehouse-refresh")


def test_state_machine_role_is_scoped_to_the_workgroup_the_table_and_the_prefixes(doc):
    key, machine = _machine(doc)
    role = machine["Properties"]["RoleArn"]["Fn::GetAtt"][0]
    assert "WarehouseStateMachineRole" in role
    statements = _statements(doc, "WarehouseStateMachineRole")
    actions = {a for s in statements for a in s["Action"]}
    athena = [a for a in actions if a.startswith("athena:")]
    assert sorted(athena) == ["athena:GetDataCatalog", "athena:GetQueryExecution", "athena:StartQueryExecution",
                              "athena:StopQueryExecution"]
    (workgroup,) = _granted(statements, "athena:StartQueryExecution")
    assert workgroup.endswith(":workgroup/LtvForecast-warehouse")
    assert _granted(statements, "athena:GetDataCatalog")[0].endswith(":datacatalog/AwsDataCatalog")
    assert all(a.startswith("glue:Get") or a == "glue:BatchGetPartition" for a in actions if a.startswith("glue:"))
    glue = _granted(statements, "glue:GetTable")
    assert sorted(r.rsplit(":", 1)[1] for r in glue) == ["catalog", "database/ltvforecast_warehouse",
                                                          "table/ltvforecast_warehouse/events"]
    bucket = "${StorageArtifacts08431D1F.Arn}"
    assert sorted(_granted(statements, "s3:GetObject")) == [f"{bucket}/scratch/athena/*",
                                                             f"{bucket}/warehouse/*/events/*"]
    assert sorted(_granted(statements, "s3:PutObject")) == [f"{bucket}/scratch/athena/*",
                                                             f"{bucket}/warehouse/*/user_day/*"]
    assert _granted(statements, "lambda:InvokeFunction") == ["${WarehouseRefreshLambdaFunction46F0AB1D.Arn}"]
    assert not any(a.startswith(("lakeformation:", "s3:Delete", "glue:Create", "glue:Delete", "glue:Update"))
                   or a == "s3:CreateBucket" for a in actions)
    for statement in statements:  # "*" only where an action has no resource-level permissions
        if "*" in statement["Resource"]:
            assert all(a.startswith(("logs:", "xray:")) for a in statement["Action"]), statement
    # CDK's own grants for the Athena task (S3 on every bucket, Glue writes) never reached the role
    assert len([p for k, p in resources(doc, "AWS::IAM::Policy").items() if "WarehouseStateMachineRole" in k]) == 1
