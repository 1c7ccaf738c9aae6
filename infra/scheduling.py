"""The daily prepare: an EventBridge schedule starts the daily-prepare SageMaker pipeline."""

from __future__ import annotations

from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from constructs import Construct

from infra.config import DeploymentConfig
from infra.processing import ProcessingPipelines

__all__ = ["DailySchedule"]


class DailySchedule(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, config: DeploymentConfig,
                 pipelines: ProcessingPipelines) -> None:
        super().__init__(scope, construct_id)
        self.role = iam.Role(self, "Role", assumed_by=iam.ServicePrincipal("events.amazonaws.com"),
                             description="ltv-forecast: start the daily prepare pipeline")
        self.role.add_to_policy(iam.PolicyStatement(
            actions=["sagemaker:StartPipelineExecution"], resources=[pipelines.daily_arn]))
        # No L2 rule target for SageMaker pipelines: the rule is written at the L1 level.
        self.rule = events.CfnRule(
            self, "Rule", description="ltv-forecast: daily cohort aggregation of the raw events",
            schedule_expression=config.dailyPrepareSchedule, state="ENABLED",
            targets=[events.CfnRule.TargetProperty(
                id="DailyPreparePipeline", arn=pipelines.daily_arn, role_arn=self.role.role_arn,
                sage_maker_pipeline_parameters=events.CfnRule.SageMakerPipelineParametersProperty(
                    pipeline_parameter_list=[]),
                retry_policy=events.CfnRule.RetryPolicyProperty(
                    maximum_retry_attempts=8, maximum_event_age_in_seconds=6 * 3600))])
        self.rule.node.add_dependency(pipelines.daily)
