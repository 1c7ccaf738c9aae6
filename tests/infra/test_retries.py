"""Retries that match what fails: every error name a Retry or Catch uses is one its task can
raise (botocore's model, by Step Functions' naming rules); events and asynchronous invocations
nobody handled end in the encrypted, TLS-only dead-letter queue, which raises an alarm."""

from __future__ import annotations

import pytest

from tests.infra import shapes
from tests.infra.support import flatten, resources, state_machine_definitions


@pytest.fixture(scope="module")
def doc(default_template):
    return default_template


def test_every_retried_or_caught_error_is_one_the_task_can_raise(doc):
    used = set()
    for key, definition in state_machine_definitions(doc).items():
        for name, state in shapes.task_states(definition):
            possible = shapes.error_names(state["Resource"])
            for rule in [*state.get("Retry", []), *state.get("Catch", [])]:
                unknown = set(rule["ErrorEquals"]) - possible
                assert not unknown, f"{key} {name} {state['Resource']}: {sorted(unknown)}"
                used |= set(rule["ErrorEquals"])
    # the names this project relies on, by integration
    assert {"SageMaker.SageMakerException", "SageMaker.ConflictException",
            "SageMaker.AmazonSageMakerException", "SageMaker.ResourceLimitExceededException",
            "Athena.TooManyRequestsException", "Lambda.ServiceException", "States.ALL"} <= used


def test_the_two_sagemaker_integrations_name_their_errors_differently():
    """The optimised integration's base error is not an aws-sdk: one, and a modelled shape
    without the suffix (ResourceLimitExceeded) gets "Exception" appended."""
    sdk = shapes.error_names("arn:aws:states:::aws-sdk:sagemaker:startPipelineExecution.waitForTaskToken")
    job = shapes.error_names("arn:aws:states:::sagemaker:createProcessingJob.sync")
    assert "SageMaker.AmazonSageMakerException" in job and "SageMaker.AmazonSageMakerException" not in sdk
    assert "SageMaker.SageMakerException" in sdk and "SageMaker.SageMakerException" not in job
    assert {"SageMaker.ResourceLimitExceededException", "SageMaker.ResourceNotFoundException"} <= sdk & job
    assert "SageMaker.ResourceLimitExceeded" not in sdk
    assert "S3.NoSuchKeyException" in shapes.error_names("arn:aws:states:::aws-sdk:s3:getObject")
    assert "States.Timeout" in sdk and "States.Anything" not in sdk


def test_asynchronous_invocations_retry_then_keep_what_failed(doc):
    """EventBridge's retries end when Lambda accepts the event; Lambda's own are configured."""
    configs = {flatten(c["Properties"]["FunctionName"]): c["Properties"]
               for c in resources(doc, "AWS::Lambda::EventInvokeConfig").values()}
    callback = next(v for k, v in configs.items() if "PipelineCallback" in k)
    notify = next(v for k, v in configs.items() if "NotifyLambda" in k)
    assert callback["MaximumRetryAttempts"] == 2  # answering a token twice is harmless
    assert notify["MaximumRetryAttempts"] == 1  # a retry may post the Slack message twice
    (queue,) = resources(doc, "AWS::SQS::Queue")
    for config in (callback, notify):
        assert config["MaximumEventAgeInSeconds"] == 6 * 3600 and config["Qualifier"] == "$LATEST"
        assert config["DestinationConfig"]["OnFailure"]["Destination"] == {"Fn::GetAtt": [queue, "Arn"]}
    for fragment in ("PipelineCallbackLambdaRole", "NotifyLambdaRole"):
        (policy,) = [p for key, p in resources(doc, "AWS::IAM::Policy").items() if fragment in key]
        sends = [s for s in policy["Properties"]["PolicyDocument"]["Statement"]
                 if "sqs:SendMessage" in (s["Action"] if isinstance(s["Action"], list) else [s["Action"]])]
        assert [s["Resource"] for s in sends] == [{"Fn::GetAtt": [queue, "Arn"]}], fragment


def test_every_rule_target_retries_into_the_encrypted_tls_only_dead_letter_queue(doc):
    (queue,) = resources(doc, "AWS::SQS::Queue")
    rules = resources(doc, "AWS::Events::Rule")
    assert len(rules) == 3  # pipeline status, execution ends, the daily refresh
    for key, rule in rules.items():
        for target in rule["Properties"]["Targets"]:
            assert target["DeadLetterConfig"]["Arn"] == {"Fn::GetAtt": [queue, "Arn"]}, key
            assert target["RetryPolicy"] == {"MaximumEventAgeInSeconds": 6 * 3600,
                                             "MaximumRetryAttempts": 8}, key
    props = resources(doc, "AWS::SQS::Queue")[queue]["Properties"]
    assert props["SqsManagedSseEnabled"] is True and props["MessageRetentionPeriod"] == 14 * 24 * 3600
    (policy,) = [p["Properties"] for p in resources(doc, "AWS::SQS::QueuePolicy").values()]
    deny = [s for s in policy["PolicyDocument"]["Statement"] if s["Effect"] == "Deny"]
    assert deny and deny[0]["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    alarm = next(a["Properties"] for k, a in resources(doc, "AWS::CloudWatch::Alarm").items()
                 if "DeadLetters" in k)
    assert alarm["MetricName"] == "ApproximateNumberOfMessagesVisible" and alarm["Threshold"] == 1
