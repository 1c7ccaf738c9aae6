"""The forecast workflow: one Step Functions execution per run, named by the run id.

    Start → Validate → RunPipeline (.waitForTaskToken) → Publish (.sync) → NotifySuccess → Done
    any failure (Catch) → NotifyFailure → Failed

``RunPipeline`` starts the SageMaker pipeline with the task token as the execution description;
an EventBridge rule on the pipeline's status changes invokes the callback Lambda, which answers
with ``SendTaskSuccess``/``SendTaskFailure``. A task timeout bounds the wait, so a lost callback
fails the run instead of hanging it. ``Publish`` runs the publish entry point as a processing
job (manifest last, and only if the run computed is the run requested); it is idempotent (a
published run is never rewritten), hence retried on API errors.
"""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from infra.config import DeploymentConfig
from infra.function import HandlerFunction, log_retention
from infra.processing import ProcessingPipelines
from infra.storage import Storage
from sagemaker_jobs import definition as definitions
from sagemaker_jobs import paths

__all__ = ["ForecastWorkflow"]

PIPELINE_STATUS = "SageMaker Model Building Pipeline Execution Status Change"
SAGEMAKER_API_ERRORS = ["SageMaker.AmazonSageMakerException", "SageMaker.ResourceLimitExceededException"]
PUBLISH_JOB_PREFIX = "ltv-publish-"


class ForecastWorkflow(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, config: DeploymentConfig,
                 storage: Storage, pipelines: ProcessingPipelines, notify: HandlerFunction,
                 code_environment: dict[str, str]) -> None:
        super().__init__(scope, construct_id)
        self.config = config
        self.storage = storage
        self.pipelines = pipelines
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
            description="ltv-forecast: answer the waiting workflow when its pipeline ends")
        self.state_machine.grant_task_response(self.callback.role)
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
                        "currentPipelineExecutionStatus": ["Succeeded", "Failed", "Stopped"]}),
            targets=[targets.LambdaFunction(self.callback.function, retry_attempts=8,
                                            max_event_age=Duration.hours(6))])

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
            task_timeout=sfn.Timeout.duration(Duration.minutes(config.pipelineTimeoutMinutes)),
            comment="start the SageMaker pipeline; its status-change callback ends the wait")
        run_pipeline.add_retry(errors=SAGEMAKER_API_ERRORS, interval=Duration.seconds(30),
                               max_attempts=3, backoff_rate=2)
        on_failure(run_pipeline)

        publish = sfn.CustomState(self, "Publish", state_json=self._publish_state())
        publish.add_retry(errors=SAGEMAKER_API_ERRORS, interval=Duration.seconds(30),
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
        log_group = logs.LogGroup(
            self, "Logs", log_group_name=f"/aws/vendedlogs/states/{config.stackName}-forecast",
            retention=log_retention(config.logRetentionDays),
            removal_policy=RemovalPolicy.RETAIN)
        machine = sfn.StateMachine(
            self, "StateMachine",
            comment="ltv-forecast: one execution per run, named by the run id",
            definition_body=sfn.DefinitionBody.from_chainable(definition),
            state_machine_type=sfn.StateMachineType.STANDARD,
            timeout=Duration.minutes(config.pipelineTimeoutMinutes + 120),
            tracing_enabled=True,
            logs=sfn.LogOptions(destination=log_group, level=sfn.LogLevel.ALL,
                                include_execution_data=False))
        self._grant_publish(machine)
        return machine

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
            "TimeoutSeconds": 3600,
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

