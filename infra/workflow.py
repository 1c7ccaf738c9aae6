"""The forecast workflow: one Step Functions execution per attempt of a run, named by the run id
(``<run id>-<attempt>`` from the second attempt of a failed run: ``ltvcore.api.attempts``).

    Start → Validate → RunPipeline (.waitForTaskToken) → Publish (.sync) → NotifySuccess → Done
    any failure (Catch) → NotifyFailure → Failed
    RunPipeline's failure (Catch) → ReadPipelineRecord → StopPipeline → NotifyFailure → Failed

``RunPipeline`` starts the SageMaker pipeline with the task token as the execution description;
an EventBridge rule on the pipeline's status changes invokes the callback Lambda, which answers
with ``SendTaskSuccess``/``SendTaskFailure``. A task timeout bounds the wait, so a lost callback
fails the run instead of hanging it. ``Publish`` runs the publish entry point as a processing
job (manifest last, and only if the run computed is the run requested); it is idempotent (a
published run is never rewritten), hence retried on API errors.

Every run ends, and ends recorded. The callback Lambda records each pipeline execution's ARN
when it starts executing (``scratch/runs/<run_id>/pipeline.json``), so a RunPipeline timeout
stops the pipeline it gave up on. An execution-level timeout, a manual stop or an uncaught
failure bypasses every Catch: an EventBridge rule on the execution's status change sends it to
the notify Lambda, which marks the run failed, tells Slack and stops the recorded pipeline.
The timeouts derive from the steps' own limits (``DeploymentConfig.pipeline_wait_minutes``).
"""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda_destinations as destinations
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from infra.config import PUBLISH_TIMEOUT_MINUTES, DeploymentConfig
from infra.function import HandlerFunction, log_retention
from infra.processing import ProcessingPipelines
from infra.storage import Storage
from sagemaker_jobs import definition as definitions
from sagemaker_jobs import paths

__all__ = ["ForecastWorkflow"]

PIPELINE_STATUS = "SageMaker Model Building Pipeline Execution Status Change"
EXECUTION_STATUS = "Step Functions Execution Status Change"
# Ends that bypass the state machine's own failure path (FAILED ones after it are ignored by notify).
UNHANDLED_ENDS = ["TIMED_OUT", "ABORTED", "FAILED"]
PIPELINE_RECORD = "pipeline.json"  # scratch/runs/<run_id>/pipeline.json, written by the callback
# The two integrations name SageMaker's errors differently (tests/infra/test_validators.py checks
# every name against botocore's model). ``aws-sdk:`` tasks raise ``SageMaker.<shape>Exception``
# for modelled errors and the SDK's base ``SageMaker.SageMakerException`` for the rest, which is
# where throttling and 5xx service errors land (SageMaker models neither). The optimised
# ``sagemaker:`` integration names the rest ``SageMaker.AmazonSageMakerException``. Quota errors
# (ResourceLimitExceeded) pass once running jobs end, so both integrations retry them too.
SAGEMAKER_SDK_RETRY = ["SageMaker.SageMakerException", "SageMaker.ResourceLimitExceededException"]
SAGEMAKER_JOB_RETRY = ["SageMaker.AmazonSageMakerException", "SageMaker.ResourceLimitExceededException"]
PUBLISH_JOB_PREFIX = "ltv-publish-"


class ForecastWorkflow(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, config: DeploymentConfig,
                 storage: Storage, pipelines: ProcessingPipelines, notify: HandlerFunction,
                 code_environment: dict[str, str]) -> None:
        super().__init__(scope, construct_id)
        self.config = config
        self.storage = storage
        self.pipelines = pipelines
        self.pipeline_record_pattern = f"{Storage.SCRATCH_RUNS}/*/{PIPELINE_RECORD}"
        # Events EventBridge could not deliver (after its retries), and asynchronous invocations
        # the Lambdas could not handle (after theirs), are kept, not lost: a run whose end was
        # never recorded can be found and replayed from here.
        self.dead_letters = sqs.Queue(
            self, "EventDeadLetters", encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True, retention_period=Duration.days(14))
        self.validate = HandlerFunction(
            self, "ValidateLambda", name="validate", config=config,
            description="ltv-forecast: validate a run's execution input and mark it running",
            environment={"LTV_STORE": storage.uri(), "LTV_SCRATCH_RUNS": storage.uri(Storage.SCRATCH_RUNS),
                         **code_environment})
        storage.grant_runs(self.validate.role, write=[f"{Storage.RUNS}/*/_status.json",
                                                      f"{Storage.SCRATCH_RUNS}/*/request.json"])

        self.state_machine = self._state_machine(notify)

        self.callback = HandlerFunction(
            self, "PipelineCallbackLambda", name="pipeline_callback", config=config,
            description="ltv-forecast: answer the waiting workflow when its pipeline ends",
            environment={"LTV_SCRATCH_RUNS": storage.uri(Storage.SCRATCH_RUNS)})
        self.state_machine.grant_task_response(self.callback.role)
        # Only the record: the callback reads no run.
        self.callback.role.add_to_policy(iam.PolicyStatement(
            actions=["s3:PutObject"], resources=[storage.arn(self.pipeline_record_pattern)]))
        self.callback.role.add_to_policy(iam.PolicyStatement(
            actions=["sagemaker:DescribePipelineExecution", "sagemaker:ListPipelineExecutionSteps"],
            resources=[pipelines.forecast_executions_arn]))
        self.callback.role.add_to_policy(iam.PolicyStatement(
            actions=["sagemaker:DescribeProcessingJob"], resources=[pipelines.pipeline_jobs_arn]))
        self.pipeline_status_rule = events.Rule(
            self, "PipelineStatus",
            description="forecast pipeline ended: tell the waiting workflow",
            event_pattern=events.EventPattern(
                source=["aws.sagemaker"], detail_type=[PIPELINE_STATUS],
                detail={"pipelineArn": [pipelines.forecast_arn],
                        "currentPipelineExecutionStatus": ["Executing", "Succeeded", "Failed",
                                                           "Stopped"]}),
            targets=[targets.LambdaFunction(self.callback.function, retry_attempts=8,
                                            max_event_age=Duration.hours(6),
                                            dead_letter_queue=self.dead_letters)])
        # EventBridge invokes asynchronously: its retries end once Lambda accepts the event, and
        # Lambda's own then apply. Answering a token twice is harmless (the second is dropped as
        # a late callback), so the callback may retry; what still fails is kept with the
        # undelivered events, with the error, for a person to replay.
        self.callback.function.configure_async_invoke(
            retry_attempts=2, max_event_age=Duration.hours(6),
            on_failure=destinations.SqsDestination(self.dead_letters))
        self._ends_outside_the_definition(notify)

    def _ends_outside_the_definition(self, notify: HandlerFunction) -> None:
        """Timed out, stopped or uncaught: the notify Lambda records it, tells Slack, stops the pipeline."""
        self.execution_status_rule = events.Rule(
            self, "ExecutionEnded",
            description="forecast execution ended outside its failure path: mark the run failed",
            event_pattern=events.EventPattern(
                source=["aws.states"], detail_type=[EXECUTION_STATUS],
                detail={"stateMachineArn": [self.state_machine.state_machine_arn],
                        "status": UNHANDLED_ENDS}),
            targets=[targets.LambdaFunction(notify.function, retry_attempts=8,
                                            max_event_age=Duration.hours(6),
                                            dead_letter_queue=self.dead_letters)])
        # Also asynchronous (this rule, and the API announcing a reused run): a retry that follows
        # a delivered message would post it twice, so one retry only.
        notify.function.configure_async_invoke(
            retry_attempts=1, max_event_age=Duration.hours(6),
            on_failure=destinations.SqsDestination(self.dead_letters))
        notify.role.add_to_policy(iam.PolicyStatement(
            actions=["s3:GetObject"], resources=[self.storage.arn(self.pipeline_record_pattern)]))
        notify.role.add_to_policy(iam.PolicyStatement(
            actions=["sagemaker:StopPipelineExecution"],
            resources=[self.pipelines.forecast_executions_arn]))

    # ------------------------------------------------------------------ the definition
    def _state_machine(self, notify: HandlerFunction) -> sfn.StateMachine:
        config, pipelines = self.config, self.pipelines
        # The caught error is in the execution history, the run's status and the Slack message;
        # the execution fails under one name (a Fail state may not re-raise "States.*" names).
        failed = sfn.Fail(self, "Failed", error="ForecastFailed",
                          cause="The forecast run failed: GET /forecasts/{run_id} and the Slack "
                                "message say why; this execution's history has the details")
        notify_failure = tasks.LambdaInvoke(
            self, "NotifyFailure", lambda_function=notify.function, payload_response_only=True,
            payload=_notify_payload("failed"), result_path="$.notification",
            comment="mark the run failed in the store, tell Slack")
        notify_failure.add_catch(failed, result_path="$.notify_error")
        notify_failure.next(failed)

        def on_failure(state: sfn.TaskStateBase | sfn.CustomState) -> None:
            state.add_catch(notify_failure, errors=[sfn.Errors.ALL], result_path="$.error")

        start = sfn.Pass(self, "Start", parameters={"input": sfn.JsonPath.object_at("$")},
                         comment="keep the execution input under $.input")
        validate = tasks.LambdaInvoke(
            self, "Validate", lambda_function=self.validate.function, payload_response_only=True,
            payload=sfn.TaskInput.from_object({
                "execution_name": sfn.JsonPath.string_at("$$.Execution.Name"),
                "input": sfn.JsonPath.object_at("$.input")}),
            result_path="$.validated")
        on_failure(validate)

        run_id = sfn.JsonPath.string_at("$.validated.run_id")
        run_pipeline = tasks.CallAwsService(
            self, "RunPipeline", service="sagemaker", action="startPipelineExecution",
            iam_action="sagemaker:StartPipelineExecution", iam_resources=[pipelines.forecast_arn],
            integration_pattern=sfn.IntegrationPattern.WAIT_FOR_TASK_TOKEN,
            parameters={
                "PipelineName": config.pipeline_name,
                "PipelineExecutionDisplayName": run_id,
                "PipelineExecutionDescription": sfn.JsonPath.task_token,
                "PipelineParameters": [
                    {"Name": definitions.RUN_KEY, "Value": run_id},
                    {"Name": definitions.DATASET, "Value": sfn.JsonPath.string_at("$.validated.dataset")},
                    {"Name": definitions.AS_OF, "Value": sfn.JsonPath.string_at("$.validated.as_of")},
                    {"Name": definitions.INPUT_DIGEST,
                     "Value": sfn.JsonPath.string_at("$.validated.input_digest")},
                ],
            },
            result_path="$.pipeline",
            # No heartbeat: nothing could send one while the pipeline runs; the timeout covers
            # every step's own stopping condition (DeploymentConfig.pipeline_wait_minutes).
            task_timeout=sfn.Timeout.duration(Duration.minutes(config.pipeline_wait_minutes)),
            comment="start the SageMaker pipeline; its status-change callback ends the wait")
        # A call that failed on the service side may still have started a pipeline: the retry
        # then starts a second one, whose callback carries the live token (the first one's
        # token died with the failed attempt, and its callback is dropped quietly). A
        # ClientRequestToken would instead hand back the first pipeline, with the dead token,
        # and the run would wait until its timeout.
        run_pipeline.add_retry(errors=SAGEMAKER_SDK_RETRY, interval=Duration.seconds(30),
                               max_attempts=3, backoff_rate=2)
        run_pipeline.add_catch(self._stop_pipeline(notify_failure, run_id), errors=[sfn.Errors.ALL],
                               result_path="$.error")

        publish = sfn.CustomState(self, "Publish", state_json=self._publish_state())
        publish.add_retry(errors=SAGEMAKER_JOB_RETRY, interval=Duration.seconds(30),
                          max_attempts=3, backoff_rate=2)
        on_failure(publish)

        done = sfn.Pass(self, "Done", parameters={
            "run_id": run_id,
            "location": sfn.JsonPath.format(f"{self.storage.uri(Storage.RUNS)}/{{}}", run_id)})
        done.next(sfn.Succeed(self, "Succeeded"))
        notify_success = tasks.LambdaInvoke(
            self, "NotifySuccess", lambda_function=notify.function, payload_response_only=True,
            payload=_notify_payload("succeeded"), result_path="$.notification",
            comment="tell Slack; a notification failure never fails the published run")
        notify_success.add_catch(done, errors=[sfn.Errors.ALL], result_path="$.notify_error")

        definition = (start.next(validate).next(run_pipeline).next(publish)
                      .next(notify_success).next(done))
        # Kept after a destroy (the executions' history), so it must not have a fixed name: a
        # retained group named /aws/vendedlogs/states/<stack>-forecast made the next deploy
        # fail with "already exists". CloudFormation names it, new on every fresh deploy.
        log_group = logs.LogGroup(
            self, "Logs", retention=log_retention(config.logRetentionDays),
            removal_policy=RemovalPolicy.RETAIN)
        machine = sfn.StateMachine(
            self, "StateMachine",
            comment="ltv-forecast: one execution per attempt of a run, named by the run id",
            definition_body=sfn.DefinitionBody.from_chainable(definition),
            state_machine_type=sfn.StateMachineType.STANDARD,
            timeout=Duration.minutes(config.execution_timeout_minutes),
            tracing_enabled=True,
            logs=sfn.LogOptions(destination=log_group, level=sfn.LogLevel.ALL,
                                include_execution_data=False))
        self._grant_publish(machine)
        return machine

    def _stop_pipeline(self, notify_failure: sfn.IChainable, run_id: str) -> sfn.IChainable:
        """RunPipeline failed: stop the pipeline it started, if it still runs, then notify.

        A failed or stopped pipeline has ended already (StopPipelineExecution then fails, and a
        validation, timeout or start error left no pipeline or no record): each of these is
        caught into the notification, keeping the original ``$.error``.
        """
        bucket = self.storage.bucket.bucket_name
        read = tasks.CallAwsService(
            self, "ReadPipelineRecord", service="s3", action="getObject",
            iam_action="s3:GetObject", iam_resources=[self.storage.arn(self.pipeline_record_pattern)],
            parameters={"Bucket": bucket, "Key": sfn.JsonPath.format(
                f"{Storage.SCRATCH_RUNS}/{{}}/{PIPELINE_RECORD}", run_id)},
            result_selector={"record": sfn.JsonPath.string_to_json(sfn.JsonPath.string_at("$.Body"))},
            result_path="$.pipeline_record",
            comment="the pipeline execution the callback recorded when it started executing")
        stop = tasks.CallAwsService(
            self, "StopPipeline", service="sagemaker", action="stopPipelineExecution",
            iam_action="sagemaker:StopPipelineExecution",
            iam_resources=[self.pipelines.forecast_executions_arn],
            parameters={"PipelineExecutionArn": sfn.JsonPath.string_at(
                            "$.pipeline_record.record.pipeline_execution_arn"),
                        "ClientRequestToken": sfn.JsonPath.uuid()},
            result_path=sfn.JsonPath.DISCARD,
            comment="stop the pipeline the run gave up on: no step keeps running, or paying")
        # Throttled or concurrently modified: worth two quick tries, since a pipeline left running
        # keeps paying. Stopping one that ended fails with an unmodelled error too, so the
        # retries stay short: the notification waits for them.
        stop.add_retry(errors=["SageMaker.ConflictException", "SageMaker.SageMakerException"],
                       interval=Duration.seconds(2), max_attempts=2, backoff_rate=2)
        for state in (read, stop):
            state.add_catch(notify_failure, errors=[sfn.Errors.ALL], result_path="$.stop_error")
        return read.next(stop).next(notify_failure)

    def _publish_state(self) -> dict:
        """``createProcessingJob.sync`` running ``sagemaker_jobs.publish`` (no L2 task exists)."""
        config, storage, pipelines = self.config, self.storage, self.pipelines
        run_folder = f"s3://{storage.bucket.bucket_name}/{Storage.SCRATCH_RUNS}/{{}}"
        return {
            "Type": "Task",
            "Comment": "publish the run: manifest last, committed to runs/<run_id> (never rewritten)",
            "Resource": f"arn:{Stack.of(self).partition}:states:::sagemaker:createProcessingJob.sync",
            "Parameters": {
                "ProcessingJobName.$": f"States.Format('{PUBLISH_JOB_PREFIX}{{}}', States.UUID())",
                "RoleArn": pipelines.processing_role.role_arn,
                "AppSpecification": {"ImageUri": pipelines.image.image_uri,
                                     "ContainerEntrypoint": ["python3", "-m", "sagemaker_jobs.publish"]},
                "ProcessingResources": {"ClusterConfig": {
                    "InstanceCount": 1, "InstanceType": config.publishInstanceType, "VolumeSizeInGB": 10}},
                "ProcessingInputs": [{"InputName": "run", "S3Input": {
                    "S3Uri.$": f"States.Format('{run_folder}/run', $.validated.run_id)",
                    "LocalPath": paths.container(paths.PUBLISH_INPUT), "S3DataType": "S3Prefix",
                    "S3InputMode": "File", "S3DataDistributionType": "FullyReplicated"}}],
                "ProcessingOutputConfig": {"Outputs": [{"OutputName": "result", "S3Output": {
                    "S3Uri.$": f"States.Format('{run_folder}/publish', $.validated.run_id)",
                    "LocalPath": paths.container(paths.PUBLISH_OUTPUT), "S3UploadMode": "EndOfJob"}}]},
                "Environment": {"LTV_STORE": storage.uri(),
                                "LTV_RUN_ID.$": "$.validated.run_id",
                                "LTV_REQUESTED_BY.$": "$.validated.requested_by",
                                **pipelines.environment},
                "StoppingCondition": {"MaxRuntimeInSeconds": 1800},
                "Tags": [{"Key": "ltv:run-id", "Value.$": "$.validated.run_id"}],
            },
            "ResultSelector": {"job.$": "$.ProcessingJobName", "status.$": "$.ProcessingJobStatus"},
            "ResultPath": "$.publish",
            "TimeoutSeconds": PUBLISH_TIMEOUT_MINUTES * 60,
        }

    def _grant_publish(self, machine: sfn.StateMachine) -> None:
        stack = Stack.of(self)
        self.publish_jobs_arn = stack.format_arn(service="sagemaker", resource="processing-job",
                                                 resource_name=f"{PUBLISH_JOB_PREFIX}*")
        machine.add_to_role_policy(iam.PolicyStatement(
            actions=["sagemaker:CreateProcessingJob", "sagemaker:DescribeProcessingJob",
                     "sagemaker:StopProcessingJob", "sagemaker:AddTags"],
            resources=[self.publish_jobs_arn]))
        machine.add_to_role_policy(iam.PolicyStatement(
            actions=["events:PutTargets", "events:PutRule", "events:DescribeRule"],
            resources=[stack.format_arn(service="events", resource="rule",
                                        resource_name="StepFunctionsGetEventsForSageMakerProcessingJobsRule")]))
        machine.add_to_role_policy(iam.PolicyStatement(
            actions=["iam:PassRole"], resources=[self.pipelines.processing_role.role_arn],
            conditions={"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}}))


def _notify_payload(status: str) -> sfn.TaskInput:
    return sfn.TaskInput.from_object({
        "status": status,
        "execution_name": sfn.JsonPath.string_at("$$.Execution.Name"),
        "execution_arn": sfn.JsonPath.string_at("$$.Execution.Id"),
        "state": sfn.JsonPath.object_at("$"),
    })

