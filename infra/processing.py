"""The SageMaker side: the processing image, the roles, and the forecast pipeline.

The pipeline document is written by the ``sagemaker`` SDK at synth time
(``infra.pipeline_definition``, run in the synth environment of ``infra.synth_env``); the image,
the role and the bucket are CloudFormation values, substituted into the document with
``Fn::Sub`` when the stack deploys. The image is a CDK image asset built from
``sagemaker_jobs/Dockerfile`` by ``cdk deploy`` (synthesising needs no Docker), on the product's
one Python (``PYTHON_VERSION``, passed as the Dockerfile's build argument). The daily
aggregation is not a pipeline: it runs on Athena (infra/warehouse.py), and the jobs read only
what it committed.
"""

from __future__ import annotations

import json

from aws_cdk import ArnFormat, Fn, IgnoreMode, Stack
from aws_cdk import aws_ecr_assets as ecr_assets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_sagemaker as sagemaker
from constructs import Construct

from infra import pipeline_definition as definitions
from infra.bundling import PYTHON_VERSION, ROOT
from infra.config import DeploymentConfig
from infra.storage import Storage
from ltvcore.lifecycle.registry import MODELS_DIR
from ltvcore.warehouse import athena, layout

__all__ = ["ProcessingPipelines"]

# Docker build context: the repository root, reduced to what the image copies.
IMAGE_CONTEXT = ["*", "!pyproject.toml", "!README.md", "!ltvcore", "!sagemaker_jobs",
                 "**/__pycache__", "**/*.pyc"]
_PLACEHOLDERS = {"image": "${ImageUri}", "role": "${ProcessingRoleArn}", "bucket": "${ArtifactBucket}"}


# What the Prepare step downloads from a dataset's folder: the objects its manifest lists.
COMMITTED = [layout.STATE, layout.MARKER, athena.MANIFEST, f"{layout.USER_DAY}/*", f"{layout.INSTALLS}/*",
             f"{layout.SPEND}/*"]


class ProcessingPipelines(Construct):
    """The ``forecast`` pipeline (one execution per request) and the publish job's image and role."""

    def __init__(self, scope: Construct, construct_id: str, *, config: DeploymentConfig,
                 storage: Storage, code_environment: dict[str, str]) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        self.config = config
        self.image = ecr_assets.DockerImageAsset(
            self, "Image", directory=str(ROOT), file="sagemaker_jobs/Dockerfile",
            exclude=IMAGE_CONTEXT, ignore_mode=IgnoreMode.DOCKER,
            build_args={"PYTHON_VERSION": PYTHON_VERSION},
            platform=ecr_assets.Platform.LINUX_AMD64)
        self.environment = {"LTV_CONTAINER_IMAGE": self.image.image_uri, **code_environment}

        self.processing_role = iam.Role(
            self, "ProcessingRole", assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"),
            description="ltv-forecast processing jobs: read the aggregates, write scratch and runs")
        self._grant_processing(storage)
        self.pipeline_jobs_arn = stack.format_arn(service="sagemaker", resource="processing-job",
                                                  resource_name="pipelines-*")
        self.pipeline_role = iam.Role(
            self, "PipelineRole", assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"),
            description="ltv-forecast SageMaker pipelines: start their processing jobs")
        self.pipeline_role.add_to_policy(iam.PolicyStatement(
            actions=["sagemaker:CreateProcessingJob", "sagemaker:DescribeProcessingJob",
                     "sagemaker:StopProcessingJob", "sagemaker:AddTags"],
            resources=[self.pipeline_jobs_arn]))
        self.processing_role.grant_pass_role(self.pipeline_role)

        settings = definitions.JobSettings(
            image_uri=_PLACEHOLDERS["image"], role_arn=_PLACEHOLDERS["role"],
            bucket=_PLACEHOLDERS["bucket"], instance_type=config.processingInstanceType,
            volume_gb=config.processingVolumeGb,
            max_runtime_seconds=config.processingMaxRuntimeMinutes * 60,
            # LTV_STORE: the store a request's registered model (NAME@champion) is loaded from
            environment={"LTV_CONTAINER_IMAGE": _PLACEHOLDERS["image"],
                         "LTV_STORE": f"s3://{_PLACEHOLDERS['bucket']}", **code_environment})
        self.forecast_definition = definitions.forecast_definition(
            settings, shard_count=config.forecastShardCount, cache_days=config.stepCacheDays,
            warehouse_prefix=Storage.WAREHOUSE, manifest=athena.MANIFEST, scratch_runs=Storage.SCRATCH_RUNS)
        values = {"ImageUri": self.image.image_uri, "ProcessingRoleArn": self.processing_role.role_arn,
                  "ArtifactBucket": storage.bucket.bucket_name}
        self.forecast = self._pipeline("Forecast", config.pipeline_name, self.forecast_definition,
                                       values, "Per forecast request: prepare, forecast (sharded), report")
        self.forecast_arn = stack.format_arn(service="sagemaker", resource="pipeline",
                                             resource_name=config.pipeline_name)
        self.forecast_executions_arn = f"{self.forecast_arn}/execution/*"

    def _pipeline(self, construct_id: str, name: str, document: dict, values: dict[str, str],
                  description: str) -> sagemaker.CfnPipeline:
        body = Fn.sub(json.dumps(document, sort_keys=True), values)
        pipeline = sagemaker.CfnPipeline(
            self, construct_id, pipeline_name=name, pipeline_display_name=name,
            pipeline_description=description, role_arn=self.pipeline_role.role_arn,
            pipeline_definition={"PipelineDefinitionBody": body})
        pipeline.node.add_dependency(self.pipeline_role)
        return pipeline

    def _grant_processing(self, storage: Storage) -> None:
        role = self.processing_role
        # The committed aggregates only: no job reads events/, and none writes the warehouse.
        # The forecast step reads a registered model a request names (models/<name>/…), read-only.
        read = [*(f"{Storage.WAREHOUSE}/*/{name}" for name in COMMITTED), f"{Storage.SCRATCH_RUNS}/*",
                f"{MODELS_DIR}/*"]
        write = [f"{Storage.SCRATCH_RUNS}/*", f"{Storage.RUNS}/*"]
        storage.grant_runs(role, read=read, write=write)
        self.image.repository.grant_pull(role)
        self.job_logs_arn = Stack.of(self).format_arn(
            service="logs", resource="log-group", resource_name="/aws/sagemaker/ProcessingJobs:*",
            arn_format=ArnFormat.COLON_RESOURCE_NAME)
        role.add_to_policy(iam.PolicyStatement(
            actions=["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents",
                     "logs:DescribeLogStreams"],
            resources=[self.job_logs_arn]))
        role.add_to_policy(iam.PolicyStatement(
            actions=["cloudwatch:PutMetricData"], resources=["*"],
            conditions={"StringLike": {"cloudwatch:namespace": "/aws/sagemaker/*"}}))
