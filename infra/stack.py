"""The one stack: storage, warehouse (Glue, Athena, daily refresh), processing pipeline,
notifications, workflow, API, schedule, monitoring, composed; and the app around it (context
from cdk.json, cdk-nag attached)."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any

import aws_cdk as cdk
from constructs import Construct

from infra import nag
from infra.api import ForecastApi
from infra.bundling import ROOT, ensure_dependencies
from infra.config import DeploymentConfig
from infra.monitoring import Monitoring
from infra.notifications import Notifications
from infra.processing import ProcessingPipelines
from infra.scheduling import DailySchedule
from infra.storage import Storage
from infra.warehouse import Warehouse
from infra.workflow import ForecastWorkflow

__all__ = ["LtvForecastStack", "build_app", "code_environment"]


def code_environment() -> dict[str, str]:
    """``LTV_GIT_COMMIT`` for every Lambda and job, so all of them (and the run ids they derive)
    name the same code version; empty when the commit is unknown."""
    from ltvcore.runs.manifest import code_info

    commit = code_info().get("git_commit")
    return {"LTV_GIT_COMMIT": commit} if commit else {}


class LtvForecastStack(cdk.Stack):
    def __init__(self, scope: Construct, construct_id: str, *, config: DeploymentConfig,
                 **kwargs: Any) -> None:
        super().__init__(scope, construct_id,
                         description="ltv-forecast: LTV forecasts on SageMaker, API, Slack", **kwargs)
        self.config = config
        code = code_environment()
        self.storage = Storage(self, "Storage", config=config)
        self.warehouse = Warehouse(self, "Warehouse", config=config, storage=self.storage)
        self.pipelines = ProcessingPipelines(self, "Pipelines", config=config, storage=self.storage,
                                             code_environment=code)
        self.notifications = Notifications(self, "Notifications", config=config, storage=self.storage)
        self.workflow = ForecastWorkflow(self, "Workflow", config=config, storage=self.storage,
                                         pipelines=self.pipelines, notify=self.notifications.notify,
                                         code_environment=code)
        self.api = ForecastApi(self, "Api", config=config, storage=self.storage,
                               state_machine=self.workflow.state_machine,
                               notify=self.notifications.notify, code_environment=code)
        self.schedule = DailySchedule(self, "Schedule", config=config,
                                      state_machine=self.warehouse.state_machine,
                                      dead_letters=self.workflow.dead_letters)
        self.monitoring = Monitoring(
            self, "Monitoring", config=config, state_machine=self.workflow.state_machine,
            refresh=self.warehouse.state_machine,
            functions={"Validate": self.workflow.validate.function,
                       "PipelineCallback": self.workflow.callback.function,
                       "Notify": self.notifications.notify.function,
                       "Api": self.api.handler.function,
                       "Auth": self.api.login.handler.function,
                       "Authorizer": self.api.login.authorizer_function.function,
                       "WarehouseRefresh": self.warehouse.refresh.function},
            api=self.api.api, dead_letters=self.workflow.dead_letters)

        outputs = {
            "ApiUrl": (self.api.url, "The form and runs for people (sign-in through the hosted UI)"),
            "ToolsApiUrl": (f"{self.api.url}api/", "The JSON routes for tools (IAM-signed requests)"),
            "UserPoolId": (self.api.login.user_pool.user_pool_id,
                           "Cognito user pool of the sign-in (users, or the federated provider)"),
            "SignInDomain": (self.api.login.hosted_ui_url, "Cognito hosted UI domain (the IdP's "
                             "SAML ACS is <this>/saml2/idpresponse, OIDC redirect <this>/oauth2/idpresponse)"),
            "ArtifactBucketName": (self.storage.bucket.bucket_name, "Runs, warehouse and scratch"),
            "StoreUri": (self.storage.uri(), "LTV_STORE for `ltv runs list` / `ltv audit verify`"),
            "WarehouseUri": (self.storage.uri(Storage.WAREHOUSE),
                             "Each dataset under <this>/<dataset>/: events/event_date=YYYY-MM-DD/*.parquet, "
                             "installs/, spend/"),
            "StateMachineArn": (self.workflow.state_machine.state_machine_arn, "One execution per run"),
            "ForecastPipelineName": (config.pipeline_name, "SageMaker pipeline per request"),
            "WarehouseRefreshStateMachineArn": (self.warehouse.state_machine.state_machine_arn,
                                                "Daily refresh: Athena aggregates new dates"),
            "GlueDatabaseName": (self.warehouse.database_name, "Glue tables events, user_day, installs, spend"),
            "AthenaWorkGroupName": (self.warehouse.workgroup_name, "Encrypted results, bytes-scanned limit"),
            "AlarmTopicArn": (self.monitoring.topic.topic_arn, "Subscribe to receive the alarms"),
        }
        for name, (value, description) in outputs.items():
            cdk.CfnOutput(self, name, value=value, description=description)
        nag.acknowledge(self)


def _cdk_json_context() -> dict[str, Any]:
    with open(ROOT / "cdk.json", encoding="utf-8") as handle:
        return dict(json.load(handle).get("context", {}))


def build_app(context: Mapping[str, Any] | None = None, *, outdir: str | None = None,
              checks: bool = True) -> tuple[cdk.App, LtvForecastStack]:
    """The app as ``cdk synth`` builds it (``python app.py`` too: cdk.json's context is read
    when the CDK CLI did not pass it). ``context`` overrides ``ltv:*`` settings (tests).

    ``checks=False`` skips cdk-nag and CloudFormation's template validation (seconds per
    synth): for tests that assert on a template another test already checks.
    """
    values: dict[str, Any] = {}
    if "CDK_CONTEXT_JSON" not in os.environ:  # the CLI merges cdk.json into it
        values.update(_cdk_json_context())
    values.update(context or {})
    app = cdk.App(outdir=outdir or os.environ.get("CDK_OUTDIR") or str(ROOT / "cdk.out"),
                  context=values, builtin_cloud_formation_validation=checks)
    config = DeploymentConfig.from_node(app.node)
    if config.bundleLambdaDependencies:
        # Before any construct bundles: a failure is one BundlingError line, not a jsii traceback.
        ensure_dependencies()
    stack = LtvForecastStack(app, config.stackName, config=config, env=cdk.Environment(
        account=os.environ.get("CDK_DEFAULT_ACCOUNT"), region=os.environ.get("CDK_DEFAULT_REGION")))
    if checks:
        nag.attach(app)
    return app, stack

