"""The HTTP API: API Gateway (REST) → the API Lambda, routes of docs/interface.md, HTTP API.

Two ways in, no anonymous one (docs/deploy.md, "Signing in"):

* **People** (the browser routes: the form, runs, files, models, promote) sign in with the
  company's identity provider through Cognito's hosted UI (infra/login.py). A Lambda REQUEST
  authoriser verifies the Cognito ID token from the HttpOnly session cookie (or an
  ``Authorization: Bearer`` header) on every request; page navigations and links from Slack
  carry the cookie, which a header-only ``COGNITO_USER_POOLS`` authoriser could not read. An
  unsigned request gets 401 with a page that forwards to ``/auth/login`` and back.
* **Tools** keep IAM (SigV4) under ``/api/…``: the same JSON routes, the same Lambda, the IAM
  identity recorded as the requester.

``/auth/{login,callback,logout,signed-out}`` have no authoriser because they are the way to one:
they only redirect (or say "signed out"), run on a Lambda whose role reads nothing, and expose
no data. The requester (``requested_by``, who promoted a model) is the authoriser's verified
``email`` (or username), or the IAM identity: never a client header.

API Gateway validates what it can before any Lambda runs (the JSON shape of ``POST
/forecasts``, the path parameters) and answers with ``400 {"error": …}`` like the Lambda does;
the stage throttles and writes JSON access logs.
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
from infra.login import AUTH_PATHS, Login
from infra.storage import Storage
from ltvcore.lifecycle.registry import MODELS_DIR, STAGES_DIR
from ltvcore.warehouse import layout

__all__ = ["ForecastApi", "STAGE", "TOOLS_PREFIX"]

STAGE = "v1"
TOOLS_PREFIX = "api"
"""Path prefix of the IAM-authorised twin of the JSON routes (lambdas/api strips it)."""
_ERROR_TEMPLATE = '{"error": "$context.error.validationErrorString"}'
# The 401 of the browser routes: a page that forwards to the sign-in and back to where it was
# (a fetch() sees the status; the form sends the person to the same sign-in).
SIGN_IN_PAGE = (
    '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Sign in - LTV forecast</title>'
    '</head><body style="font-family:system-ui,sans-serif;margin:3rem"><h1>Sign in</h1>'
    '<p>The LTV forecast needs you to <a id="sign-in" href="/$context.stage/auth/login">sign in</a>.</p>'
    '<script>(function(){var a=document.getElementById("sign-in");'
    'a.href+="?next="+encodeURIComponent(location.pathname+location.search);location.replace(a.href);})();'
    '</script></body></html>')


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
                 storage: Storage, state_machine: sfn.StateMachine, notify: HandlerFunction,
                 code_environment: dict[str, str]) -> None:
        super().__init__(scope, construct_id)
        self.handler = HandlerFunction(
            self, "Handler", name="api", config=config, timeout=Duration.seconds(29),
            description="ltv-forecast HTTP API (form, submit, runs)",
            environment={
                "LTV_STORE": storage.uri(),
                "LTV_DATA_DIR": storage.uri(Storage.WAREHOUSE),
                "LTV_STATE_MACHINE_ARN": state_machine.state_machine_arn,
                "LTV_NOTIFY_FUNCTION": notify.function.function_name,
                "LTV_LINK_SECONDS": str(config.reportLinkHours * 3600),
                **code_environment,
            })
        role = self.handler.role
        # A request is named from the dataset's state.json (its digest, written by the refresh):
        # the API reads no aggregate and no event, only that and the installs' columns (``by``).
        # The model registry (ltvcore.lifecycle): the models page reads every version; promoting
        # adds a stage event and can change nothing else.
        storage.grant_runs(role, read=[f"{Storage.WAREHOUSE}/*/{layout.STATE}",
                                       f"{Storage.WAREHOUSE}/*/{layout.INSTALLS}/*",
                                       f"{MODELS_DIR}/*"],
                           write=[f"{Storage.RUNS}/*/_status.json", f"{MODELS_DIR}/*/{STAGES_DIR}/*"])
        state_machine.grant_start_execution(role)
        self.executions_arn = Stack.of(self).format_arn(
            service="states", resource="execution", resource_name=f"{state_machine.state_machine_name}:*",
            arn_format=ArnFormat.COLON_RESOURCE_NAME)
        role.add_to_principal_policy(iam.PolicyStatement(
            actions=["states:DescribeExecution"], resources=[self.executions_arn]))
        # A succeeded run resubmitted with ``notify`` is announced by the workflow's own notify
        # Lambda (one Slack path); the unqualified function only, where grant_invoke adds ":*".
        role.add_to_principal_policy(iam.PolicyStatement(
            actions=["lambda:InvokeFunction"], resources=[notify.function.function_arn]))

        self.access_logs = logs.LogGroup(self, "AccessLogs", removal_policy=RemovalPolicy.RETAIN,
                                         retention=log_retention(config.logRetentionDays))
        self.api = apigw.RestApi(
            self, "Api",
            rest_api_name=f"{config.stackName}-api",
            description="ltv-forecast: submit LTV forecasts and read their runs (sign-in; IAM under /api)",
            endpoint_types=[apigw.EndpointType.REGIONAL],
            cloud_watch_role=True,
            cloud_watch_role_removal_policy=RemovalPolicy.RETAIN,
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

        self.login = Login(self, "Login", config=config, api=self.api, stage=STAGE)
        self.api.add_gateway_response(
            "UnauthorizedResponse", type=apigw.ResponseType.UNAUTHORIZED, status_code="401",
            response_headers={"Content-Type": "'text/html; charset=utf-8'",
                              "Cache-Control": "'no-store'"},
            templates={"application/json": SIGN_IN_PAGE, "text/html": SIGN_IN_PAGE})

        self.integration = apigw.LambdaIntegration(self.handler.function, proxy=True)
        self.checks_parameters = self.api.add_request_validator(
            "ParametersValidator", validate_request_parameters=True)
        self.checks_body = self.api.add_request_validator(
            "BodyValidator", validate_request_body=True, validate_request_parameters=True)
        self.body_model = self.api.add_model("ForecastRequestModel", content_type="application/json",
                                             model_name="ForecastRequest", schema=FORECAST_BODY)

        signed_in = apigw.MethodOptions(authorization_type=apigw.AuthorizationType.CUSTOM,
                                        authorizer=self.login.authorizer)
        self.api.root.add_method("GET", self.integration, request_validator=self.checks_parameters,
                                 authorization_type=signed_in.authorization_type,
                                 authorizer=signed_in.authorizer)
        self._routes(self.api.root, signed_in, browser=True)
        self._routes(self.api.root.add_resource(TOOLS_PREFIX),
                     apigw.MethodOptions(authorization_type=apigw.AuthorizationType.IAM), browser=False)

        self.auth = self.api.root.add_resource("auth")
        sign_in = apigw.LambdaIntegration(self.login.handler.function, proxy=True)
        for path in AUTH_PATHS:
            self.auth.add_resource(path).add_method(
                "GET", sign_in, authorization_type=apigw.AuthorizationType.NONE,
                request_validator=self.checks_parameters)

    def _routes(self, root: apigw.IResource, access: apigw.MethodOptions, *, browser: bool) -> None:
        """The JSON routes (and, for people, the HTML-only plots page) under ``root``."""
        def method(resource: apigw.IResource, verb: str, *path: str, body: bool = False) -> None:
            resource.add_method(
                verb, self.integration, authorization_type=access.authorization_type,
                authorizer=access.authorizer,
                request_validator=self.checks_body if body else self.checks_parameters,
                request_models={"application/json": self.body_model} if body else None,
                request_parameters={f"method.request.path.{name}": True for name in path} or None)

        forecasts = root.add_resource("forecasts")
        method(forecasts, "GET")
        method(forecasts, "POST", body=True)
        run = forecasts.add_resource("{run_id}")
        method(run, "GET", "run_id")
        # run.html links downloads and the report iframe here; the Lambda answers 302 to a
        # pre-signed S3 URL (ltvcore/api/routes/files.py), so no file passes through the API.
        method(run.add_resource("files").add_resource("{name}"), "GET", "run_id", "name")
        models = root.add_resource("models")
        method(models, "GET")
        version = models.add_resource("{name}").add_resource("{version}")
        method(version.add_resource("promote"), "POST", "name", "version")
        if browser:
            method(version.add_resource("plots.html"), "GET", "name", "version")

    @property
    def url(self) -> str:
        return self.api.url
