"""One Lambda function running ``lambdas/<name>/handler.py``, set up the same way everywhere:
JSON logs in its own log group (with retention), X-Ray active tracing, Powertools settings,
and an execution role that can write only its own logs."""

from __future__ import annotations

from collections.abc import Mapping

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from infra.bundling import LAMBDA_RUNTIME, handler_code
from infra.config import DeploymentConfig

__all__ = ["HandlerFunction", "log_retention"]


class HandlerFunction(Construct):
    """``function``: the Lambda; ``role``: its execution role; ``log_group``: its logs."""

    def __init__(self, scope: Construct, construct_id: str, *, name: str, description: str,
                 config: DeploymentConfig, environment: Mapping[str, str] | None = None,
                 timeout: Duration = Duration.seconds(30), memory_mb: int = 512) -> None:
        super().__init__(scope, construct_id)
        self.log_group = logs.LogGroup(
            self, "Logs", retention=log_retention(config.logRetentionDays),
            removal_policy=RemovalPolicy.RETAIN)
        # A role of its own instead of AWSLambdaBasicExecutionRole: log writes to its group only.
        self.role = iam.Role(self, "Role", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
                             description=f"ltv-forecast {name} Lambda")
        self.role.add_to_policy(iam.PolicyStatement(
            actions=["logs:CreateLogStream", "logs:PutLogEvents"],
            resources=[self.log_group.log_group_arn]))  # the group's ARN covers its streams (":*")
        self.function = lambda_.Function(
            self, "Function",
            description=description,
            runtime=LAMBDA_RUNTIME,
            architecture=lambda_.Architecture.X86_64,
            handler="handler.handler",
            code=handler_code(name, with_dependencies=config.bundleLambdaDependencies),
            role=self.role,
            timeout=timeout,
            memory_size=memory_mb,
            tracing=lambda_.Tracing.ACTIVE,
            log_group=self.log_group,
            logging_format=lambda_.LoggingFormat.JSON,
            application_log_level_v2=lambda_.ApplicationLogLevel.INFO,
            system_log_level_v2=lambda_.SystemLogLevel.WARN,
            environment={
                "POWERTOOLS_SERVICE_NAME": f"ltv-{name}",
                "POWERTOOLS_METRICS_NAMESPACE": "LtvForecast",
                **(environment or {}),
            },
        )



_RETENTION = {1: "ONE_DAY", 3: "THREE_DAYS", 5: "FIVE_DAYS", 7: "ONE_WEEK", 14: "TWO_WEEKS",
              30: "ONE_MONTH", 60: "TWO_MONTHS", 90: "THREE_MONTHS", 120: "FOUR_MONTHS",
              150: "FIVE_MONTHS", 180: "SIX_MONTHS", 365: "ONE_YEAR", 400: "THIRTEEN_MONTHS",
              545: "EIGHTEEN_MONTHS", 731: "TWO_YEARS", 1096: "THREE_YEARS", 1827: "FIVE_YEARS",
              2192: "SIX_YEARS", 2557: "SEVEN_YEARS", 2922: "EIGHT_YEARS", 3288: "NINE_YEARS",
              3653: "TEN_YEARS"}


def log_retention(days: int) -> logs.RetentionDays:
    """The shortest CloudWatch Logs retention that keeps logs at least ``days``."""
    return getattr(logs.RetentionDays, _RETENTION[min(d for d in _RETENTION if d >= days)])
