"""The synthesised template meets issue 4's requirements (one synth for the whole module)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from aws_cdk.assertions import Match

from infra.bundling import PYTHON_VERSION
from infra.config import DEFAULTS, PIPELINE_STEPS, DeploymentConfig
from tests.infra.support import flatten, resources, synth


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    stack, template = synth(tmp_path_factory.mktemp("cdk"))
    return stack, template, template.to_json()


@pytest.fixture(scope="module")
def template(built):
    return built[1]


@pytest.fixture(scope="module")
def doc(built):
    return built[2]


def _machine(doc) -> dict:
    """The forecast workflow's state machine (the warehouse refresh has tests/infra/test_warehouse.py)."""
    (machine,) = [m for key, m in resources(doc, "AWS::StepFunctions::StateMachine").items() if "Workflow" in key]
    return machine


def _definition(doc) -> dict:
    return json.loads(flatten(_machine(doc)["Properties"]["DefinitionString"]))


def _function(doc, fragment: str) -> dict:
    matches = [r for key, r in resources(doc, "AWS::Lambda::Function").items() if fragment in key]
    assert len(matches) == 1, fragment
    return matches[0]["Properties"]


# --------------------------------------------------------------------------- storage


def test_artifact_bucket_is_versioned_encrypted_private_and_logged(template, doc):
    template.has_resource_properties("AWS::S3::Bucket", {
        "VersioningConfiguration": {"Status": "Enabled"},
        "BucketEncryption": {"ServerSideEncryptionConfiguration": [
            {"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]},
        "PublicAccessBlockConfiguration": {"BlockPublicAcls": True, "BlockPublicPolicy": True,
                                           "IgnorePublicAcls": True, "RestrictPublicBuckets": True},
        "LoggingConfiguration": {"DestinationBucketName": Match.any_value(),
                                 "LogFilePrefix": "artifacts/"},
    })
    buckets = resources(doc, "AWS::S3::Bucket")
    assert len(buckets) == 2  # the artifact bucket and its separate access-log bucket
    for bucket in buckets.values():
        assert bucket["DeletionPolicy"] == "Retain"


def test_every_bucket_requires_tls(doc):
    policies = resources(doc, "AWS::S3::BucketPolicy")
    assert len(policies) == 2
    for policy in policies.values():
        denies = [s for s in policy["Properties"]["PolicyDocument"]["Statement"] if s["Effect"] == "Deny"]
        assert any(s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}} for s in denies)


def test_lifecycle_expires_scratch_only_never_runs(doc):
    artifacts = next(b for b in resources(doc, "AWS::S3::Bucket").values()
                     if "VersioningConfiguration" in b["Properties"])
    rules = artifacts["Properties"]["LifecycleConfiguration"]["Rules"]
    expiring = [r for r in rules if "ExpirationInDays" in r]
    assert [r["Prefix"] for r in expiring] == ["scratch/"]  # pipeline intermediates, Athena results
    assert expiring[0]["ExpirationInDays"] == DEFAULTS["scratchExpirationDays"]
    assert all(r["Prefix"] not in ("", "runs/") and not r["Prefix"].startswith("runs") for r in rules)
    assert "ObjectLockEnabled" not in artifacts["Properties"]  # the default: no Object Lock


# --------------------------------------------------------------------------- workflow


def test_state_machine_order_and_task_types(doc):
    definition = _definition(doc)
    states = definition["States"]
    order, name = [], definition["StartAt"]
    while name:
        order.append(name)
        name = states[name].get("Next")
    assert order == ["Start", "Validate", "RunPipeline", "Publish", "NotifySuccess", "Done", "Succeeded"]
    run = states["RunPipeline"]
    assert run["Resource"].endswith(":states:::aws-sdk:sagemaker:startPipelineExecution.waitForTaskToken")
    assert run["Parameters"]["PipelineExecutionDescription.$"] == "$$.Task.Token"
    assert run["TimeoutSeconds"] == DeploymentConfig.from_mapping({}).pipeline_wait_minutes * 60
    names = [p["Name"] for p in run["Parameters"]["PipelineParameters"]]
    assert names == ["RunKey", "Dataset", "AsOf", "InputDigest"]
    assert states["Publish"]["Resource"].endswith(":states:::sagemaker:createProcessingJob.sync")
    assert states["Publish"]["Parameters"]["AppSpecification"]["ContainerEntrypoint"] == [
        "python3", "-m", "sagemaker_jobs.publish"]
    assert states["Publish"]["Parameters"]["Environment"]["LTV_RUN_ID.$"] == "$.validated.run_id"


def test_every_failure_path_ends_in_the_failure_notification(doc):
    states = _definition(doc)["States"]
    for name in ("Validate", "Publish"):
        catches = states[name]["Catch"]
        assert catches == [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error",
                            "Next": "NotifyFailure"}], name
    # RunPipeline's failure first stops the pipeline it started, then notifies
    assert states["RunPipeline"]["Catch"] == [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error",
                                               "Next": "ReadPipelineRecord"}]
    assert states["ReadPipelineRecord"]["Next"] == "StopPipeline"
    assert states["StopPipeline"]["Next"] == "NotifyFailure"
    for name in ("ReadPipelineRecord", "StopPipeline"):  # the original $.error is kept
        assert states[name]["Catch"] == [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.stop_error",
                                          "Next": "NotifyFailure"}], name
    assert states["NotifyFailure"]["Next"] == "Failed"
    assert states["NotifyFailure"]["Catch"][0]["Next"] == "Failed"
    assert states["Failed"]["Type"] == "Fail" and states["Failed"]["Error"] == "ForecastFailed"
    # both paths reach the same notify Lambda
    assert states["NotifySuccess"]["Resource"] == states["NotifyFailure"]["Resource"]
    # a failed Slack delivery never turns a published run into a failed one
    assert states["NotifySuccess"]["Catch"][0]["Next"] == "Done"


def test_retries_with_backoff_on_safe_steps_only(doc):
    states = _definition(doc)["States"]
    for name in ("Validate", "NotifySuccess", "NotifyFailure"):
        (retry,) = states[name]["Retry"]
        assert "Lambda.ServiceException" in retry["ErrorEquals"] and retry["BackoffRate"] == 2
    # API errors only, by the names each integration raises (tests/infra/test_validators.py
    # holds them to botocore's model): a pipeline or job that ran and failed is not retried
    expected = {"RunPipeline": ["SageMaker.SageMakerException", "SageMaker.ResourceLimitExceededException"],
                "Publish": ["SageMaker.AmazonSageMakerException", "SageMaker.ResourceLimitExceededException"]}
    for name, errors in expected.items():
        (retry,) = states[name]["Retry"]
        assert retry["ErrorEquals"] == errors
        assert retry["BackoffRate"] == 2 and retry["IntervalSeconds"] == 30
    (retry,) = states["StopPipeline"]["Retry"]  # short: the failure notification waits for it
    assert retry["ErrorEquals"] == ["SageMaker.ConflictException", "SageMaker.SageMakerException"]
    assert retry["IntervalSeconds"] * (1 + retry["BackoffRate"]) <= 10
    assert "Retry" not in states["ReadPipelineRecord"]  # NoSuchKey: nothing was recorded


def test_state_machines_traced_and_logged(doc):
    machines = resources(doc, "AWS::StepFunctions::StateMachine")
    assert len(machines) == 2  # the forecast workflow and the warehouse refresh
    for machine in machines.values():
        props = machine["Properties"]
        assert props["TracingConfiguration"] == {"Enabled": True}
        assert props["LoggingConfiguration"]["Level"] == "ALL"
        assert props["LoggingConfiguration"]["IncludeExecutionData"] is False


def test_pipeline_status_rule_calls_back(doc):
    rules = [r["Properties"] for r in resources(doc, "AWS::Events::Rule").values()
             if r["Properties"].get("EventPattern", {}).get("source") == ["aws.sagemaker"]]
    (rule,) = rules
    pattern = rule["EventPattern"]
    assert pattern["source"] == ["aws.sagemaker"]
    assert pattern["detail-type"] == ["SageMaker Model Building Pipeline Execution Status Change"]
    # Executing: the callback records the execution's ARN for the stop paths
    assert pattern["detail"]["currentPipelineExecutionStatus"] == ["Executing", "Succeeded", "Failed",
                                                                   "Stopped"]
    assert "ltvforecast-forecast" in flatten(pattern["detail"]["pipelineArn"][0])
    assert "PipelineCallback" in rule["Targets"][0]["Arn"]["Fn::GetAtt"][0]
    assert "EventDeadLetters" in rule["Targets"][0]["DeadLetterConfig"]["Arn"]["Fn::GetAtt"][0]


def test_timeouts_cover_every_step_of_the_pipeline(doc):
    """The wait outlasts the steps' stopping conditions; the execution outlasts wait + publish."""
    states = _definition(doc)["States"]
    steps = _pipeline(doc, "forecast")["Steps"]
    assert len(steps) == PIPELINE_STEPS  # sequential: Prepare → Forecast → Report
    step_seconds = sum(s["Arguments"]["StoppingCondition"]["MaxRuntimeInSeconds"] for s in steps)
    assert step_seconds == PIPELINE_STEPS * DEFAULTS["processingMaxRuntimeMinutes"] * 60
    wait = states["RunPipeline"]["TimeoutSeconds"]
    assert wait >= step_seconds + PIPELINE_STEPS * 10 * 60  # room for instance start-up per step
    assert "HeartbeatSeconds" not in states["RunPipeline"]  # nothing could send one
    execution = _definition(doc)["TimeoutSeconds"]
    assert execution >= wait + states["Publish"]["TimeoutSeconds"] + 15 * 60  # Catch paths fit


def test_stop_pipeline_path_and_its_least_privilege(doc):
    states = _definition(doc)["States"]
    read, stop = states["ReadPipelineRecord"], states["StopPipeline"]
    assert read["Resource"].endswith(":states:::aws-sdk:s3:getObject")
    assert read["Parameters"]["Key.$"] == "States.Format('scratch/runs/{}/pipeline.json', $.validated.run_id)"
    assert stop["Resource"].endswith(":states:::aws-sdk:sagemaker:stopPipelineExecution")
    assert stop["Parameters"]["PipelineExecutionArn.$"] == "$.pipeline_record.record.pipeline_execution_arn"
    assert stop["Parameters"]["ClientRequestToken.$"] == "States.UUID()"
    policies = resources(doc, "AWS::IAM::Policy")

    def statements(fragment: str, action: str) -> list[dict]:
        (policy,) = [p for key, p in policies.items() if fragment in key]
        return [s for s in policy["Properties"]["PolicyDocument"]["Statement"]
                if action in (s["Action"] if isinstance(s["Action"], list) else [s["Action"]])]

    for fragment in ("WorkflowStateMachineRole", "NotifyLambdaRole"):
        (statement,) = statements(fragment, "sagemaker:StopPipelineExecution")
        assert flatten(statement["Resource"]).endswith(":pipeline/ltvforecast-forecast/execution/*")
        reads = [flatten(r) for s in statements(fragment, "s3:GetObject")
                 for r in (s["Resource"] if isinstance(s["Resource"], list) else [s["Resource"]])]
        assert any(r.endswith("/scratch/runs/*/pipeline.json") for r in reads), fragment
        assert not any(r.endswith("/scratch/runs/*") for r in reads), fragment
    (put,) = statements("PipelineCallbackLambdaRole", "s3:PutObject")
    assert flatten(put["Resource"]).endswith("/scratch/runs/*/pipeline.json")


def test_execution_ends_outside_the_definition_reach_the_notify_lambda(doc):
    (rule,) = [r["Properties"] for r in resources(doc, "AWS::Events::Rule").values()
               if r["Properties"].get("EventPattern", {}).get("source") == ["aws.states"]]
    pattern = rule["EventPattern"]
    assert pattern["detail-type"] == ["Step Functions Execution Status Change"]
    assert pattern["detail"]["status"] == ["TIMED_OUT", "ABORTED", "FAILED"]
    (machine,) = [k for k in resources(doc, "AWS::StepFunctions::StateMachine") if "Workflow" in k]
    assert pattern["detail"]["stateMachineArn"] == [{"Ref": machine}]
    (target,) = rule["Targets"]
    assert "NotifyLambda" in target["Arn"]["Fn::GetAtt"][0]
    assert "EventDeadLetters" in target["DeadLetterConfig"]["Arn"]["Fn::GetAtt"][0]
    assert target["RetryPolicy"]["MaximumRetryAttempts"] == 8
    (queue,) = resources(doc, "AWS::SQS::Queue").values()
    assert queue["Properties"]["SqsManagedSseEnabled"] is True


def test_callback_may_answer_only_this_state_machine(doc):
    policies = resources(doc, "AWS::IAM::Policy")
    callback = next(p for key, p in policies.items() if "PipelineCallback" in key)
    statements = callback["Properties"]["PolicyDocument"]["Statement"]
    task = next(s for s in statements if "states:SendTaskSuccess" in s["Action"])
    assert set(task["Action"]) >= {"states:SendTaskSuccess", "states:SendTaskFailure"}
    assert "StateMachine" in json.dumps(task["Resource"])


# --------------------------------------------------------------------------- SageMaker


def _pipeline(doc, suffix: str) -> dict:
    pipelines = {r["Properties"]["PipelineName"]: r for r in resources(doc, "AWS::SageMaker::Pipeline").values()}
    body = pipelines[f"ltvforecast-{suffix}"]["Properties"]["PipelineDefinition"]["PipelineDefinitionBody"]
    text, values = body["Fn::Sub"]
    assert set(values) == {"ImageUri", "ProcessingRoleArn", "ArtifactBucket"}
    return json.loads(text)


def test_forecast_pipeline_steps_caching_and_sharding(doc):
    definition = _pipeline(doc, "forecast")
    steps = {s["Name"]: s for s in definition["Steps"]}
    assert list(steps) == ["Prepare", "Forecast", "Report"]
    for step in steps.values():
        assert step["Type"] == "Processing"
        assert step["CacheConfig"] == {"Enabled": True, "ExpireAfter": f"P{DEFAULTS['stepCacheDays']}D"}
        assert step["Arguments"]["AppSpecification"]["ImageUri"] == "${ImageUri}"
        assert step["Arguments"]["RoleArn"] == "${ProcessingRoleArn}"
    forecast = steps["Forecast"]["Arguments"]
    assert forecast["ProcessingResources"]["ClusterConfig"]["InstanceCount"] == DEFAULTS["forecastShardCount"]
    shard_input = next(i for i in forecast["ProcessingInputs"] if i["InputName"] == "shard")
    assert shard_input["S3Input"]["S3DataDistributionType"] == "ShardedByS3Key"
    assert shard_input["S3Input"]["S3Uri"] == {
        "Get": "Steps.Prepare.ProcessingOutputConfig.Outputs['shards'].S3Output.S3Uri"}
    prepare_args = steps["Prepare"]["Arguments"]["AppSpecification"]["ContainerArguments"]
    assert {"Get": "Parameters.InputDigest"} in prepare_args  # the data's digest keys the cache
    assert [p["Name"] for p in definition["Parameters"]] == ["RunKey", "Dataset", "AsOf", "InputDigest"]


def test_the_pipeline_reads_the_committed_aggregates_never_raw_events(doc):
    """One pipeline only (the daily SageMaker prepare is gone); Prepare's input is the manifest
    the refresh commits, which lists aggregates, installs, spend and state.json."""
    pipelines = resources(doc, "AWS::SageMaker::Pipeline")
    assert [p["Properties"]["PipelineName"] for p in pipelines.values()] == ["ltvforecast-forecast"]
    steps = {s["Name"]: s["Arguments"] for s in _pipeline(doc, "forecast")["Steps"]}
    (data,) = steps["Prepare"]["ProcessingInputs"]
    assert data["S3Input"]["S3DataType"] == "ManifestFile"
    assert data["S3Input"]["S3Uri"] == {"Std:Join": {"On": "/", "Values": [
        "s3:/", "${ArtifactBucket}", "warehouse", {"Get": "Parameters.Dataset"}, "inputs.manifest"]}}
    text = json.dumps(_pipeline(doc, "forecast"))
    assert "events" not in text and "warehouse/raw" not in text and "--all-datasets" not in text
    reads = [flatten(r) for key, p in resources(doc, "AWS::IAM::Policy").items() if "ProcessingRole" in key
             for s in p["Properties"]["PolicyDocument"]["Statement"] if "s3:GetObject" in s["Action"]
             for r in (s["Resource"] if isinstance(s["Resource"], list) else [s["Resource"]])]
    assert any(r.endswith("/warehouse/*/user_day/*") for r in reads)
    assert not any("/events" in r or r.endswith("/warehouse/*") for r in reads)


def test_the_forecast_step_can_load_registered_models_read_only(doc):
    """A request may name NAME@champion: the step opens the registry in $LTV_STORE (the bucket)."""
    steps = {s["Name"]: s["Arguments"] for s in _pipeline(doc, "forecast")["Steps"]}
    assert steps["Forecast"]["Environment"]["LTV_STORE"] == "s3://${ArtifactBucket}"
    statements = [s for key, p in resources(doc, "AWS::IAM::Policy").items() if "ProcessingRole" in key
                  for s in p["Properties"]["PolicyDocument"]["Statement"]]

    def targets(action: str) -> list[str]:
        return [flatten(r) for s in statements
                if action in (s["Action"] if isinstance(s["Action"], list) else [s["Action"]])
                for r in (s["Resource"] if isinstance(s["Resource"], list) else [s["Resource"]])]

    assert any(r.endswith("/models/*") for r in targets("s3:GetObject"))
    assert not any("/models/" in r for r in targets("s3:PutObject"))


def test_processing_image_is_an_asset_built_from_the_dockerfile(built):
    stack = built[0]
    outdir = Path(stack.node.root.outdir)
    manifest = json.loads((outdir / f"{stack.stack_name}.assets.json").read_text())
    (docker,) = manifest["dockerImages"].values()
    assert docker["source"]["dockerFile"] == "sagemaker_jobs/Dockerfile"
    assert docker["source"]["platform"] == "linux/amd64"
    context = outdir / docker["source"]["directory"]  # staged at synth: no Docker needed
    assert sorted(p.name for p in context.iterdir()) == ["README.md", "ltvcore", "pyproject.toml",
                                                          "sagemaker_jobs"]
    assert not list(context.rglob("__pycache__"))
    # The forecast step runs every model, so the image carries PyMC (and a compiler for it).
    dockerfile = (context / "sagemaker_jobs" / "Dockerfile").read_text()
    extras = re.search(r'pip install "\.\[([a-z,]+)\]"', dockerfile).group(1).split(",")
    assert {"aws", "bayes"} <= set(extras)
    assert "g++" in dockerfile


# --------------------------------------------------------------------------- API


def _api_paths(doc) -> dict[str, str]:
    """Logical id of each API Gateway resource → its path (``/forecasts/{run_id}``)."""
    api_resources = resources(doc, "AWS::ApiGateway::Resource")

    def path(logical: str) -> str:
        props = api_resources[logical]["Properties"]
        parent = props["ParentId"]
        prefix = path(parent["Ref"]) if "Ref" in parent else ""
        return f"{prefix}/{props['PathPart']}"

    return {logical: path(logical) for logical in api_resources}


def _methods(doc) -> dict[tuple[str, str], dict]:
    """(HTTP method, path) → the method's properties."""
    paths = _api_paths(doc)
    methods = {}
    for method in resources(doc, "AWS::ApiGateway::Method").values():
        props = method["Properties"]
        path = paths[props["ResourceId"]["Ref"]] if "Ref" in props["ResourceId"] else "/"
        methods[(props["HttpMethod"], path)] = props
    return methods


BROWSER_ROUTES = {("GET", "/"), ("GET", "/forecasts"), ("POST", "/forecasts"), ("GET", "/forecasts/{run_id}"),
                  ("GET", "/forecasts/{run_id}/files/{name}"), ("GET", "/models"),
                  ("POST", "/models/{name}/{version}/promote"), ("GET", "/models/{name}/{version}/plots.html")}
PAGES_ONLY = ("/", "/models/{name}/{version}/plots.html")  # HTML for people: no /api twin
TOOL_ROUTES = {(verb, f"/api{path}") for verb, path in BROWSER_ROUTES if path not in PAGES_ONLY}
SIGN_IN_ROUTES = {("GET", f"/auth/{name}") for name in ("login", "callback", "logout", "signed-out")}


def test_every_route_needs_a_person_or_an_iam_signature_but_the_sign_in(doc):
    methods = _methods(doc)
    assert set(methods) == BROWSER_ROUTES | TOOL_ROUTES | SIGN_IN_ROUTES
    (authorizer_id,) = resources(doc, "AWS::ApiGateway::Authorizer")
    for route in BROWSER_ROUTES:
        props = methods[route]
        assert props["AuthorizationType"] == "CUSTOM", route
        assert props["AuthorizerId"] == {"Ref": authorizer_id}, route
    for route in TOOL_ROUTES:
        assert methods[route]["AuthorizationType"] == "AWS_IAM", route
    anonymous = {route for route, props in methods.items() if props["AuthorizationType"] == "NONE"}
    assert anonymous == SIGN_IN_ROUTES  # they only redirect, on a Lambda that reads nothing
    for route, props in methods.items():
        assert props["Integration"]["Type"] == "AWS_PROXY"
        target = props["Integration"]["Uri"]["Fn::Join"][1][-2]["Fn::GetAtt"][0]
        assert ("AuthLambda" in target) == (route in SIGN_IN_ROUTES), route
        assert "ApiHandler" in target or route in SIGN_IN_ROUTES, route


def test_the_sign_in_lambda_may_read_nothing(doc):
    policies = [p for key, p in resources(doc, "AWS::IAM::Policy").items()
                if "AuthLambda" in key or "AuthorizerLambda" in key]
    assert len(policies) == 2
    for policy in policies:
        actions = {a for s in policy["Properties"]["PolicyDocument"]["Statement"]
                   for a in (s["Action"] if isinstance(s["Action"], list) else [s["Action"]])}
        assert actions <= {"logs:CreateLogStream", "logs:PutLogEvents", "xray:PutTraceSegments",
                           "xray:PutTelemetryRecords"}, actions


def test_the_authoriser_verifies_every_request_uncached(doc):
    (authorizer,) = resources(doc, "AWS::ApiGateway::Authorizer").values()
    props = authorizer["Properties"]
    assert props["Type"] == "REQUEST" and props["AuthorizerResultTtlInSeconds"] == 0
    assert "AuthorizerLambda" in json.dumps(props["AuthorizerUri"])
    env = _function(doc, "AuthorizerLambda")["Environment"]["Variables"]
    (pool,) = resources(doc, "AWS::Cognito::UserPool")
    (client,) = resources(doc, "AWS::Cognito::UserPoolClient")
    assert env["LTV_AUTH_CLIENT_ID"] == {"Ref": client}
    assert flatten(env["LTV_AUTH_ISSUER"]) == f"https://cognito-idp.${{AWS::Region}}.${{AWS::URLSuffix}}/${{{pool}}}"
    assert "LTV_AUTH_JWKS_URL" not in env  # the pool's own, derived from the issuer


def test_an_unsigned_browser_request_gets_the_sign_in_page(doc):
    (response,) = [r["Properties"] for r in resources(doc, "AWS::ApiGateway::GatewayResponse").values()
                   if r["Properties"]["ResponseType"] == "UNAUTHORIZED"]
    assert response["StatusCode"] == "401"
    assert response["ResponseParameters"]["gatewayresponse.header.Content-Type"] == "'text/html; charset=utf-8'"
    for page in response["ResponseTemplates"].values():
        assert 'href="/$context.stage/auth/login"' in page and "location.replace" in page


def test_user_pool_is_closed_strong_and_kept(doc):
    (pool,) = resources(doc, "AWS::Cognito::UserPool").values()
    props = pool["Properties"]
    assert props["AdminCreateUserConfig"]["AllowAdminCreateUserOnly"] is True  # no self sign-up
    assert props["MfaConfiguration"] == "ON" and props["EnabledMfas"] == ["SOFTWARE_TOKEN_MFA"]
    policy = props["Policies"]["PasswordPolicy"]
    assert policy["MinimumLength"] >= 14 and all(policy[k] for k in (
        "RequireLowercase", "RequireUppercase", "RequireNumbers", "RequireSymbols"))
    assert props["DeletionProtection"] == "ACTIVE" and pool["DeletionPolicy"] == "Retain"
    assert not resources(doc, "AWS::Cognito::UserPoolIdentityProvider")  # none configured by default


def test_app_client_is_public_code_grant_only_for_the_api_callback(doc):
    (client,) = resources(doc, "AWS::Cognito::UserPoolClient").values()
    props = client["Properties"]
    assert props["GenerateSecret"] is False  # public: the sign-in sends a PKCE challenge instead
    assert props["AllowedOAuthFlows"] == ["code"] and props["AllowedOAuthFlowsUserPoolClient"] is True
    assert props["ExplicitAuthFlows"] == ["ALLOW_REFRESH_TOKEN_AUTH"]  # no password flows
    assert props["AllowedOAuthScopes"] == ["openid", "email", "profile"]
    (api,) = resources(doc, "AWS::ApiGateway::RestApi")
    base = f"https://${{{api}}}.execute-api.${{AWS::Region}}.${{AWS::URLSuffix}}/v1"
    assert [flatten(u) for u in props["CallbackURLs"]] == [f"{base}/auth/callback"]
    assert [flatten(u) for u in props["LogoutURLs"]] == [f"{base}/auth/signed-out"]
    assert props["SupportedIdentityProviders"] == ["COGNITO"]
    assert props["IdTokenValidity"] == DEFAULTS["sessionHours"] * 60
    assert props["TokenValidityUnits"]["IdToken"] == "minutes"
    (domain,) = resources(doc, "AWS::Cognito::UserPoolDomain").values()
    assert flatten(domain["Properties"]["Domain"]) == "ltvforecast-${AWS::AccountId}"
    env = _function(doc, "AuthLambda")["Environment"]["Variables"]
    assert flatten(env["LTV_AUTH_REDIRECT_URI"]) == f"{base}/auth/callback"
    assert flatten(env["LTV_AUTH_LOGOUT_URI"]) == f"{base}/auth/signed-out"
    assert env["LTV_AUTH_SESSION_SECONDS"] == str(DEFAULTS["sessionHours"] * 3600)
    assert env["LTV_AUTH_IDENTITY_PROVIDER"] == ""


def test_run_files_route_is_declared_like_the_others(doc):
    """run.html links /forecasts/{id}/files/{name}: without the route API Gateway answers 403."""
    method = _methods(doc)[("GET", "/forecasts/{run_id}/files/{name}")]
    assert method["AuthorizationType"] == "CUSTOM"
    assert method["Integration"]["Type"] == "AWS_PROXY"
    assert method["RequestParameters"] == {"method.request.path.run_id": True,
                                           "method.request.path.name": True}


def test_the_api_may_read_the_registry_and_write_only_stage_events(doc):
    (policy,) = [p for key, p in resources(doc, "AWS::IAM::Policy").items() if "ApiHandlerRole" in key]

    def targets(action: str) -> list[str]:
        return [flatten(r) for s in policy["Properties"]["PolicyDocument"]["Statement"]
                if action in (s["Action"] if isinstance(s["Action"], list) else [s["Action"]])
                for r in (s["Resource"] if isinstance(s["Resource"], list) else [s["Resource"]])]

    assert any(r.endswith("/models/*") for r in targets("s3:GetObject"))
    writes = targets("s3:PutObject")
    assert any(r.endswith("/models/*/stages/*") for r in writes)
    assert not any(r.endswith("/models/*") for r in writes)


def test_api_validates_requests(template, doc):
    post = _methods(doc)[("POST", "/forecasts")]
    assert "application/json" in post["RequestModels"]
    assert _methods(doc)[("POST", "/api/forecasts")]["RequestModels"] == post["RequestModels"]
    validators = {k: v["Properties"] for k, v in resources(doc, "AWS::ApiGateway::RequestValidator").items()}
    assert validators[post["RequestValidatorId"]["Ref"]]["ValidateRequestBody"] is True
    model = next(iter(resources(doc, "AWS::ApiGateway::Model").values()))["Properties"]
    assert model["Schema"]["required"] == ["dataset"]
    run = _methods(doc)[("GET", "/forecasts/{run_id}")]
    assert run["RequestParameters"] == {"method.request.path.run_id": True}
    template.has_resource_properties("AWS::ApiGateway::GatewayResponse", {
        "ResponseType": "BAD_REQUEST_BODY", "StatusCode": "400",
        "ResponseTemplates": {"application/json": Match.string_like_regexp('"error"')}})


def test_api_stage_throttles_logs_and_traces(template):
    template.has_resource_properties("AWS::ApiGateway::Stage", {
        "StageName": "v1",
        "TracingEnabled": True,
        "AccessLogSetting": {"DestinationArn": Match.any_value(), "Format": Match.string_like_regexp("requestId")},
        "MethodSettings": Match.array_with([Match.object_like({
            "ThrottlingRateLimit": DEFAULTS["apiThrottleRateLimit"],
            "ThrottlingBurstLimit": DEFAULTS["apiThrottleBurstLimit"],
            "DataTraceEnabled": False, "LoggingLevel": "ERROR"})]),
    })


# --------------------------------------------------------------------------- Lambdas, operations


def test_lambdas_traced_json_logged_on_the_products_python(doc):
    functions = resources(doc, "AWS::Lambda::Function")
    assert len(functions) == 7
    for function in functions.values():
        props = function["Properties"]
        assert props["Runtime"] == f"python{PYTHON_VERSION}"
        assert props["TracingConfig"] == {"Mode": "Active"}
        assert props["LoggingConfig"]["LogFormat"] == "JSON"
        assert props["Handler"] == "handler.handler"
    groups = resources(doc, "AWS::Logs::LogGroup")
    assert all("RetentionInDays" in g["Properties"] for g in groups.values())


def test_slack_webhooks_are_never_in_the_template(doc):
    notify = _function(doc, "Notify")
    assert notify["Environment"]["Variables"]["LTV_SLACK_SECRET_NAME"] == DEFAULTS["slackSecretName"]
    assert "hooks.slack.com" not in json.dumps(doc)
    assert not resources(doc, "AWS::SecretsManager::Secret")  # referenced by name, created outside


def test_api_lambda_environment_matches_ltvcore_api_settings(doc):
    env = _function(doc, "ApiHandler")["Environment"]["Variables"]
    assert {"LTV_STORE", "LTV_DATA_DIR", "LTV_STATE_MACHINE_ARN", "LTV_NOTIFY_FUNCTION",
            "LTV_LINK_SECONDS"} <= set(env)
    from ltvcore.api.config import ApiSettings

    aliases = {field.alias for field in ApiSettings.model_fields.values()}
    assert {name for name in env if name.startswith("LTV_")} - {"LTV_GIT_COMMIT"} <= aliases


def test_the_api_may_announce_a_reused_run_through_the_notify_lambda_only(doc):
    env = _function(doc, "ApiHandler")["Environment"]["Variables"]
    (notify,) = [k for k in resources(doc, "AWS::Lambda::Function") if "NotifyLambda" in k]
    assert env["LTV_NOTIFY_FUNCTION"] == {"Ref": notify}
    (policy,) = [p for key, p in resources(doc, "AWS::IAM::Policy").items() if "ApiHandlerRole" in key]
    invokes = [s for s in policy["Properties"]["PolicyDocument"]["Statement"]
               if "lambda:InvokeFunction" in (s["Action"] if isinstance(s["Action"], list) else [s["Action"]])]
    assert [s["Resource"] for s in invokes] == [{"Fn::GetAtt": [notify, "Arn"]}]
    assert flatten(env["LTV_DATA_DIR"]).endswith("/warehouse")  # dataset folders, named by state.json


def test_alarms_on_failed_runs_and_errors_notify_the_topic(doc):
    alarms = {key: a["Properties"] for key, a in resources(doc, "AWS::CloudWatch::Alarm").items()}
    failed = next(a for key, a in alarms.items() if "ExecutionsFailed" in key)
    assert failed["MetricName"] == "ExecutionsFailed" and failed["Namespace"] == "AWS/States"
    assert failed["Threshold"] == 1
    refresh = next(a for key, a in alarms.items() if "WarehouseRefreshFailed" in key)
    assert refresh["MetricName"] == "ExecutionsFailed" and "WarehouseStateMachine" in json.dumps(refresh["Dimensions"])
    assert not any(a.get("Namespace") == "AWS/Sagemaker/ModelBuildingPipeline" for a in alarms.values())
    assert sum(1 for a in alarms.values() if a.get("MetricName") == "Errors") == 7
    for alarm in alarms.values():
        assert len(alarm["AlarmActions"]) == 1


def test_no_wildcard_resource_except_for_actions_without_resource_level_permissions(doc):
    allowed = {"xray:PutTraceSegments", "xray:PutTelemetryRecords", "ecr:GetAuthorizationToken",
               "cloudwatch:PutMetricData", "logs:CreateLogDelivery", "logs:GetLogDelivery",
               "logs:UpdateLogDelivery", "logs:DeleteLogDelivery", "logs:ListLogDeliveries",
               "logs:PutResourcePolicy", "logs:DescribeResourcePolicies", "logs:DescribeLogGroups",
               "xray:GetSamplingRules", "xray:GetSamplingTargets"}
    for key, policy in resources(doc, "AWS::IAM::Policy").items():
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            targets = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
            if "*" in targets:
                actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
                assert set(actions) <= allowed, (key, actions)


def test_outputs_for_engineers(doc):
    assert {"ApiUrl", "ToolsApiUrl", "UserPoolId", "SignInDomain", "ArtifactBucketName", "StoreUri",
            "WarehouseUri", "StateMachineArn", "WarehouseRefreshStateMachineArn", "GlueDatabaseName",
            "AthenaWorkGroupName", "AlarmTopicArn"} <= set(doc["Outputs"])
    assert "DailyPreparePipelineName" not in doc["Outputs"] and "WarehouseRawUri" not in doc["Outputs"]


def test_no_retained_resource_has_a_fixed_name_that_would_block_a_redeploy(template):
    """After a failed first deploy or a destroy, a retained resource with a fixed name makes the
    next deploy fail with "already exists"; retained resources are named by CloudFormation."""
    names = {"AWS::Logs::LogGroup": "LogGroupName", "AWS::S3::Bucket": "BucketName",
             "AWS::DynamoDB::Table": "TableName", "AWS::SecretsManager::Secret": "Name"}
    for logical, resource in template.to_json()["Resources"].items():
        retained = resource.get("DeletionPolicy") == "Retain"
        key = names.get(resource["Type"])
        if retained and key:
            assert key not in resource.get("Properties", {}), logical
