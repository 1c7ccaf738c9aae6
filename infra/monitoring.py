"""Alarms to an SNS topic: failed or timed-out runs, Lambda errors, API 5xx, a failed or
timed-out warehouse refresh, unhandled events in the dead-letter queue. The topic is encrypted
with a key of its own, because CloudWatch cannot publish to a topic under the AWS-managed SNS
key."""

from __future__ import annotations

from collections.abc import Mapping

from aws_cdk import Duration
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from infra.config import DeploymentConfig

__all__ = ["Monitoring"]

FIVE_MINUTES = Duration.minutes(5)


class Monitoring(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, config: DeploymentConfig,
                 state_machine: sfn.StateMachine, refresh: sfn.StateMachine,
                 functions: Mapping[str, lambda_.IFunction],
                 api: apigw.RestApi, dead_letters: sqs.IQueue) -> None:
        super().__init__(scope, construct_id)
        key = kms.Key(self, "TopicKey", enable_key_rotation=True,
                      description="ltv-forecast alarm topic")
        key.grant(iam.ServicePrincipal("cloudwatch.amazonaws.com"), "kms:Decrypt", "kms:GenerateDataKey*")
        self.topic = sns.Topic(self, "Alarms", display_name="ltv-forecast alarms",
                               master_key=key, enforce_ssl=True)
        if config.alarmEmail:
            self.topic.add_subscription(subscriptions.EmailSubscription(config.alarmEmail))
        self.alarms: dict[str, cloudwatch.Alarm] = {}
        self._alarm("ExecutionsFailed", state_machine.metric_failed(period=FIVE_MINUTES, statistic="Sum"),
                    "A forecast run failed (its requester was notified in Slack)")
        self._alarm("ExecutionsTimedOut", state_machine.metric_timed_out(period=FIVE_MINUTES, statistic="Sum"),
                    "A forecast run hit the state machine's overall timeout")
        for name, function in functions.items():
            self._alarm(f"{name}Errors", function.metric_errors(period=FIVE_MINUTES, statistic="Sum"),
                        f"The {name} Lambda raised errors")
        # An event nobody handled is a run whose end or callback may never be recorded.
        self._alarm("DeadLetters", dead_letters.metric_approximate_number_of_messages_visible(
                        period=FIVE_MINUTES, statistic="Maximum"),
                    "An event or asynchronous invocation was not handled after its retries: "
                    "the EventDeadLetters queue holds it, with the error, to replay")
        self._alarm("ApiServerErrors", api.metric_server_error(period=FIVE_MINUTES, statistic="Sum"),
                    "The HTTP API answered 5xx")
        # Forecasts of a dataset whose dates failed are refused (naming the date) until a
        # refresh succeeds; other datasets' aggregates are committed regardless.
        self._alarm("WarehouseRefreshFailed", refresh.metric_failed(period=Duration.hours(1), statistic="Sum"),
                    "The daily warehouse refresh failed: its Commit output names the dates Athena "
                    "could not aggregate")
        self._alarm("WarehouseRefreshTimedOut", refresh.metric_timed_out(period=Duration.hours(1), statistic="Sum"),
                    "The daily warehouse refresh hit its timeout: the next one picks up what is left")

    def _alarm(self, name: str, metric: cloudwatch.IMetric, description: str) -> None:
        alarm = cloudwatch.Alarm(
            self, name, metric=metric, threshold=1, evaluation_periods=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING, alarm_description=description)
        alarm.add_alarm_action(actions.SnsAction(self.topic))
        self.alarms[name] = alarm
