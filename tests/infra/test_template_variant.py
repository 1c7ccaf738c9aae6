"""Context settings reach the template: an audit deployment (Object Lock) with four shards,
its own stack name and a tighter Athena scan limit."""

from __future__ import annotations

import json

import pytest

from tests.infra.support import resources, synth

VARIANT = {"ltv:objectLock": "true", "ltv:objectLockRetentionDays": "2555",
           "ltv:forecastShardCount": "4", "ltv:processingInstanceType": "ml.c5.2xlarge",
           "ltv:dailyPrepareSchedule": "cron(30 2 * * ? *)", "ltv:apiThrottleRateLimit": "3",
           "ltv:pipelineTimeoutMinutes": "90", "ltv:processingMaxRuntimeMinutes": "10",
           "ltv:slackSecretName": "team/slack-webhooks",
           "ltv:alarmEmail": "ops@example.com", "ltv:athenaScanLimitGb": "5", "ltv:stackName": "Ltv-Audit",
           # as `-c` passes it: JSON text
           "ltv:identityProvider": json.dumps({"type": "OIDC", "name": "CompanyOkta",
                                               "issuer": "https://company.okta.example",
                                               "clientId": "0oa1b2c3", "clientSecretName": "ltv/okta-client"}),
           "ltv:loginDomainPrefix": "ltv-audit-sign-in", "ltv:sessionHours": "12"}


@pytest.fixture(scope="module")
def doc(tmp_path_factory):
    _stack, template = synth(tmp_path_factory.mktemp("cdk"), VARIANT)
    return template.to_json()


def test_object_lock_governance_is_set_at_creation(doc):
    artifacts = next(b["Properties"] for b in resources(doc, "AWS::S3::Bucket").values()
                     if "VersioningConfiguration" in b["Properties"])
    assert artifacts["ObjectLockEnabled"] is True
    assert artifacts["ObjectLockConfiguration"] == {
        "ObjectLockEnabled": "Enabled",
        "Rule": {"DefaultRetention": {"Mode": "GOVERNANCE", "Days": 2555}}}


def test_shards_and_sizes_reach_the_pipeline(doc):
    (forecast,) = [p for p in resources(doc, "AWS::SageMaker::Pipeline").values()
                   if p["Properties"]["PipelineName"] == "ltv-audit-forecast"]
    body = json.loads(forecast["Properties"]["PipelineDefinition"]["PipelineDefinitionBody"]["Fn::Sub"][0])
    steps = {s["Name"]: s["Arguments"] for s in body["Steps"]}
    assert steps["Forecast"]["ProcessingResources"]["ClusterConfig"] == {
        "InstanceType": "ml.c5.2xlarge", "InstanceCount": 4, "VolumeSizeInGB": 30}
    for name in ("Prepare", "Forecast", "Report"):
        assert steps[name]["Environment"]["LTV_SHARD_COUNT"] == "4"


def test_schedule_throttle_timeout_secret_and_email(doc):
    schedule = next(r["Properties"] for r in resources(doc, "AWS::Events::Rule").values()
                    if "ScheduleExpression" in r["Properties"])
    assert schedule["ScheduleExpression"] == "cron(30 2 * * ? *)"
    stage = next(iter(resources(doc, "AWS::ApiGateway::Stage").values()))["Properties"]
    assert stage["MethodSettings"][0]["ThrottlingRateLimit"] == 3
    assert '"TimeoutSeconds":5400' in json.dumps(doc).replace(" ", "").replace('\\"', '"')
    notify = next(f["Properties"] for key, f in resources(doc, "AWS::Lambda::Function").items() if "Notify" in key)
    assert notify["Environment"]["Variables"]["LTV_SLACK_SECRET_NAME"] == "team/slack-webhooks"
    (subscription,) = resources(doc, "AWS::SNS::Subscription").values()
    assert subscription["Properties"]["Endpoint"] == "ops@example.com"


def test_warehouse_names_follow_the_stack_and_the_scan_limit_its_setting(doc):
    (workgroup,) = resources(doc, "AWS::Athena::WorkGroup").values()
    assert workgroup["Properties"]["Name"] == "Ltv-Audit-warehouse"
    assert workgroup["Properties"]["WorkGroupConfiguration"]["BytesScannedCutoffPerQuery"] == 5 * 2**30
    (database,) = resources(doc, "AWS::Glue::Database").values()
    assert database["Properties"]["DatabaseInput"]["Name"] == "ltv_audit_warehouse"  # Glue: no '-'
    names = {m["Properties"]["StateMachineName"] for m in resources(doc, "AWS::StepFunctions::StateMachine").values()
             if "StateMachineName" in m["Properties"]}
    assert names == {"Ltv-Audit-warehouse-refresh"}


def test_sign_in_federates_to_the_configured_oidc_provider(doc):
    ((oidc, provider),) = resources(doc, "AWS::Cognito::UserPoolIdentityProvider").items()
    props = provider["Properties"]
    assert (props["ProviderName"], props["ProviderType"]) == ("CompanyOkta", "OIDC")
    details = props["ProviderDetails"]
    assert details["oidc_issuer"] == "https://company.okta.example" and details["client_id"] == "0oa1b2c3"
    # resolved by CloudFormation at deploy time: the secret itself is never in the template
    assert details["client_secret"] == "{{resolve:secretsmanager:ltv/okta-client:SecretString:::}}"
    assert "email" in details["authorize_scopes"].split()
    assert props["AttributeMapping"] == {"email": "email"}
    (client,) = resources(doc, "AWS::Cognito::UserPoolClient").values()
    # the provider's name (a Ref: created first), not the pool's own users
    assert client["Properties"]["SupportedIdentityProviders"] == [{"Ref": oidc}]
    assert client["Properties"]["IdTokenValidity"] == 12 * 60
    (domain,) = resources(doc, "AWS::Cognito::UserPoolDomain").values()
    assert domain["Properties"]["Domain"] == "ltv-audit-sign-in"
    auth = next(f["Properties"] for key, f in resources(doc, "AWS::Lambda::Function").items() if "AuthLambda" in key)
    assert auth["Environment"]["Variables"]["LTV_AUTH_IDENTITY_PROVIDER"] == {"Ref": oidc}
    assert auth["Environment"]["Variables"]["LTV_AUTH_SESSION_SECONDS"] == str(12 * 3600)
