"""The daily refresh: an EventBridge schedule starts the warehouse refresh state machine."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from infra.config import DeploymentConfig

__all__ = ["DailySchedule"]


class DailySchedule(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, config: DeploymentConfig,
                 state_machine: sfn.IStateMachine, dead_letters: sqs.IQueue) -> None:
        super().__init__(scope, construct_id)
        # A start EventBridge could not make (after its retries) is kept in the dead-letter
        # queue; a missed day is caught up by the next refresh anyway (it plans every new date).
        self.rule = events.Rule(
            self, "Rule", description="ltv-forecast: daily warehouse refresh (Athena aggregates new dates)",
            schedule=events.Schedule.expression(config.dailyPrepareSchedule),
            targets=[targets.SfnStateMachine(
                state_machine, input=events.RuleTargetInput.from_object({}),
                retry_attempts=8, max_event_age=Duration.hours(6), dead_letter_queue=dead_letters)])
