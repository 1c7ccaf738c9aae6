"""The HTTP API: API Gateway (REST) → the API Lambda, routes of docs/interface.md, HTTP API.

Authorisation is IAM (SigV4): the API is internal, every engineer and tool already has an IAM
identity (SSO roles), API Gateway records that identity as the requester without a user
directory of ours to run, and no route is reachable anonymously. Cognito would be the choice
for people without AWS access; that is not this product's audience.

API Gateway validates what it can before any Lambda runs (the JSON shape of ``POST
/forecasts``, the ``run_id`` path parameter) and answers with ``400 {"error": …}`` like the
Lambda does; the stage throttles and writes JSON access logs.
"""

from __future__ import annotations

from aws_cdk import ArnFormat, Duration, RemovalPolicy, Stack
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from infra.config import DeploymentConfig
from infra.function import HandlerFunction, log_retention
from infra.storage import Storage
from ltvcore.warehouse import layout

__all__ = ["ForecastApi", "STAGE"]

STAGE = "v1"
_ERROR_TEMPLATE = '{"error": "$context.error.validationErrorString"}'


def _nullable(kind: apigw.JsonSchemaType, **options) -> apigw.JsonSchema:
    return apigw.JsonSchema(type=[kind, apigw.JsonSchemaType.NULL], **options)


FORECAST_BODY = apigw.JsonSchema(
    schema=apigw.JsonSchemaVersion.DRAFT4,
    title="ForecastRequest",
    type=apigw.JsonSchemaType.OBJECT,
    required=["dataset"],
    properties={
        "dataset": apigw.JsonSchema(type=apigw.JsonSchemaType.STRING, min_length=1, max_length=128),
        "by": _nullable(apigw.JsonSchemaType.ARRAY, min_items=1, max_items=10,
                        items=apigw.JsonSchema(type=apigw.JsonSchemaType.STRING)),
        "as_of": _nullable(apigw.JsonSchemaType.STRING, pattern=r"^\d{4}-\d{2}-\d{2}$"),
        "observe_days": _nullable(apigw.JsonSchemaType.INTEGER),
        "horizons": _nullable(apigw.JsonSchemaType.ARRAY, min_items=1, max_items=20,
                              items=apigw.JsonSchema(type=apigw.JsonSchemaType.INTEGER)),
        "confidence": _nullable(apigw.JsonSchemaType.NUMBER),
        "model": _nullable(apigw.JsonSchemaType.STRING),
        "retention": _nullable(apigw.JsonSchemaType.STRING),
        "window_days": _nullable(apigw.JsonSchemaType.INTEGER),
        "notify": _nullable(apigw.JsonSchemaType.ARRAY, max_items=20,
                            items=apigw.JsonSchema(type=apigw.JsonSchemaType.STRING)),
    },
)


class ForecastApi(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, config: DeploymentConfig,
                 storage: Storage, state_machine: sfn.StateMachine,
                 code_environment: dict[str, str]) -> None:
        super().__init__(scope, construct_id)
        self.handler = HandlerFunction(
            self, "Handler", name="api", config=config, timeout=Duration.seconds(29),
            description="ltv-forecast HTTP API (form, submit, runs)",
            environment={
                "LTV_STORE": storage.uri(),
                "LTV_DATA_DIR": storage.uri(Storage.WAREHOUSE),
                "LTV_STATE_MACHINE_ARN": state_machine.state_machine_arn,
                "LTV_LINK_SECONDS": str(config.reportLinkHours * 3600),
                **code_environment,
            })
        role = self.handler.role
        # A request is named from the dataset's state.json (its digest, written by the refresh):
        # the API reads no aggregate and no event, only that and the installs' columns (``by``).
        storage.grant_runs(role, read=[f"{Storage.WAREHOUSE}/*/{layout.STATE}",
                                       f"{Storage.WAREHOUSE}/*/{layout.INSTALLS}/*"],
                           write=[f"{Storage.RUNS}/*/_status.json"])
        state_machine.grant_start_execution(role)
        self.executions_arn = Stack.of(self).format_arn(
            service="states", resource="execution", resource_name=f"{state_machine.state_machine_name}:*",
            arn_format=ArnFormat.COLON_RESOURCE_NAME)
        role.add_to_principal_policy(iam.PolicyStatement(
            actions=["states:DescribeExecution"], resources=[self.executions_arn]))

        self.access_logs = logs.LogGroup(self, "AccessLogs", removal_policy=RemovalPolicy.RETAIN,
                                         retention=log_retention(config.logRetentionDays))
        self.api = apigw.RestApi(
            self, "Api",
            rest_api_name=f"{config.stackName}-api",
            description="ltv-forecast: submit LTV forecasts and read their runs (IAM-signed requests)",
            endpoint_types=[apigw.EndpointType.REGIONAL],
            cloud_watch_role=True,
            cloud_watch_role_removal_policy=RemovalPolicy.RETAIN,
            default_method_options=apigw.MethodOptions(authorization_type=apigw.AuthorizationType.IAM),
            deploy_options=apigw.StageOptions(
                stage_name=STAGE,
                throttling_rate_limit=config.apiThrottleRateLimit,
                throttling_burst_limit=config.apiThrottleBurstLimit,
                access_log_destination=apigw.LogGroupLogDestination(self.access_logs),
                access_log_format=apigw.AccessLogFormat.json_with_standard_fields(
                    caller=True, http_method=True, ip=True, protocol=True, request_time=True,
                    resource_path=True, response_length=True, status=True, user=True),
                logging_level=apigw.MethodLoggingLevel.ERROR,
                data_trace_enabled=False,  # request bodies stay out of the logs
                metrics_enabled=True,
                tracing_enabled=True,
            ),
        )
        for response in (apigw.ResponseType.BAD_REQUEST_BODY, apigw.ResponseType.BAD_REQUEST_PARAMETERS):
            self.api.add_gateway_response(
                f"{response.response_type}Response", type=response, status_code="400",
                templates={"application/json": _ERROR_TEMPLATE})

        integration = apigw.LambdaIntegration(self.handler.function, proxy=True)
        checks_parameters = self.api.add_request_validator(
            "ParametersValidator", validate_request_parameters=True)
        checks_body = self.api.add_request_validator(
            "BodyValidator", validate_request_body=True, validate_request_parameters=True)
        body_model = self.api.add_model("ForecastRequestModel", content_type="application/json",
                                        model_name="ForecastRequest", schema=FORECAST_BODY)

        self.api.root.add_method("GET", integration, request_validator=checks_parameters)
        forecasts = self.api.root.add_resource("forecasts")
        forecasts.add_method("GET", integration, request_validator=checks_parameters)
        forecasts.add_method("POST", integration, request_validator=checks_body,
                             request_models={"application/json": body_model})
        run = forecasts.add_resource("{run_id}")
        run.add_method("GET", integration, request_validator=checks_parameters,
                       request_parameters={"method.request.path.run_id": True})
        # run.html links downloads and the report iframe here; the Lambda answers 302 to a
        # pre-signed S3 URL (ltvcore/api/routes/files.py), so no file passes through the API.
        run.add_resource("files").add_resource("{name}").add_method(
            "GET", integration, request_validator=checks_parameters,
            request_parameters={"method.request.path.run_id": True,
                                "method.request.path.name": True})

    @property
    def url(self) -> str:
        return self.api.url
