"""cdk-nag's AwsSolutions rules on every synth, and every acknowledged finding, in one place.

Each acknowledgement names one finding (for IAM4/IAM5 the exact policy or resource) on one
construct, with the reason it is accepted. Any other finding fails the synth
(``ValidationFailed``; details in ``cdk.out/validation-report.json``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import aws_cdk as cdk
from cdk_nag import AwsSolutionsChecks
from constructs import IConstruct

from infra.processing import COMMITTED
from infra.storage import Storage
from ltvcore.lifecycle.registry import MODELS_DIR, STAGES_DIR
from ltvcore.warehouse import layout
from ltvcore.warehouse.athena import MANIFEST

if TYPE_CHECKING:
    from infra.login import Login
    from infra.stack import LtvForecastStack

__all__ = ["acknowledge", "attach"]

XRAY = "X-Ray tracing (xray:PutTraceSegments, xray:PutTelemetryRecords) has no resource-level permissions"


def attach(app: cdk.App) -> None:
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))


def acknowledge(stack: LtvForecastStack) -> None:
    storage, pipelines, workflow = stack.storage, stack.pipelines, stack.workflow
    notify, api = stack.notifications.notify, stack.api

    def objects(prefix: str) -> str:
        return _resource(stack, storage.arn(prefix))

    role = pipelines.processing_role
    _ack(role, objects(f"{Storage.RUNS}/*"),
         "publish commits each new run under runs/<run_id>/ (never overwriting one)")
    for function_role in (role, workflow.validate.role, notify.role, api.handler.role):
        _ack(function_role, objects(f"{Storage.RUN_INDEX}/*"),
             "reads and adds run index entries (one immutable object per run event, named by "
             "time and run id at run time)")
    for name in COMMITTED:
        _ack(role, objects(f"{Storage.WAREHOUSE}/*/{name}"),
             "prepare reads the requested dataset's committed aggregates (any dataset; never events/)")
    _ack(role, objects(f"{Storage.SCRATCH_RUNS}/*"), "pipeline intermediates of each run")
    _ack(role, objects(f"{MODELS_DIR}/*"), "the forecast step loads the registered model a request "
         "names (models/<name>/<version>/, content-addressed, known at run time); read only")
    _ack(role, "IAM5[Resource::*]", "ecr:GetAuthorizationToken and cloudwatch:PutMetricData "
         "(limited by a namespace condition) have no resource-level permissions")
    _ack(role, _resource(stack, pipelines.job_logs_arn),
         "SageMaker writes each job's log streams into this AWS-defined log group")
    _ack(pipelines.pipeline_role, _resource(stack, pipelines.pipeline_jobs_arn),
         "SageMaker names a pipeline's jobs pipelines-<execution>-<step>-<hash> at run time")

    from infra.bundling import PYTHON_VERSION
    from infra.function import HandlerFunction

    for handler in (c for c in stack.node.find_all() if isinstance(c, HandlerFunction)):
        _ack(handler.function, "L1", f"python{PYTHON_VERSION}: the product's one Python "
             "(.python-version), which the processing image and the tests run too; Lambda "
             "supports it until 2028")

    login = api.login
    for function in (workflow.validate, workflow.callback, notify, api.handler, login.handler,
                     login.authorizer_function):
        _ack(function.role, "IAM5[Resource::*]", XRAY)
    for function in (workflow.validate, notify, api.handler):
        _ack(function.role, objects(f"{Storage.RUNS}/*"),
             "reads any run: run ids are content digests known only at run time")
        _ack(function.role, objects(f"{Storage.RUNS}/*/_status.json"),
             "writes only the status marker (_status.json) of a run, whichever run it is")
    _ack(workflow.validate.role, objects(f"{Storage.SCRATCH_RUNS}/*/request.json"),
         "writes each run's request for the pipeline's forecast step")
    _ack(notify.role, objects(f"{Storage.NOTIFICATIONS}/*"),
         "records each run's notification outcome under notifications/<run_id>/")
    _ack(api.handler.role, objects(f"{Storage.WAREHOUSE}/*/{layout.STATE}"),
         "reads any dataset's state.json: the digest the run id rests on, written by the refresh")
    _ack(api.handler.role, objects(f"{Storage.WAREHOUSE}/*/{layout.INSTALLS}/*"),
         "reads any dataset's installs columns: the form's and the request's `by` choices")
    _ack(api.handler.role, objects(f"{MODELS_DIR}/*"),
         "reads the model registry (every name's versions and stage events) for the models page "
         "and the form's champions")
    _ack(api.handler.role, objects(f"{MODELS_DIR}/*/{STAGES_DIR}/*"),
         "promoting adds one write-once stage event under models/<name>/stages/ (any model name)")
    _ack(api.handler.role, _resource(stack, api.executions_arn),
         "describes this state machine's executions, each named by a run id")
    _ack(workflow.callback.role, _resource(stack, pipelines.pipeline_jobs_arn),
         "reads the failed step's job for its exit message")
    _ack(workflow.callback.role, _resource(stack, pipelines.forecast_executions_arn),
         "reads the executions of the forecast pipeline, whose ids SageMaker assigns")

    record = objects(workflow.pipeline_record_pattern)
    _ack(workflow.callback.role, record,
         "records each run's pipeline execution under scratch/runs/<run_id>/pipeline.json")
    _ack(notify.role, record, "reads the pipeline execution recorded for the run that ended")
    _ack(notify.role, _resource(stack, pipelines.forecast_executions_arn),
         "stops the forecast pipeline's execution of a timed-out or stopped run (ids SageMaker assigns)")
    _ack(workflow.dead_letters, "SQS3", "the dead-letter queue of the EventBridge rule targets "
         "and the Lambdas' asynchronous on-failure destination itself: EventBridge and Lambda, "
         "not an SQS redrive policy, send to it")

    machine_role = workflow.state_machine.role
    _ack(machine_role, record, "reads the pipeline execution recorded for the run that timed out")
    _ack(machine_role, _resource(stack, pipelines.forecast_executions_arn),
         "stops the forecast pipeline's execution the run gave up on (ids SageMaker assigns)")
    _ack(machine_role, "IAM5[Resource::*]", "X-Ray tracing and CloudWatch Logs delivery "
         "(logs:CreateLogDelivery and related) have no resource-level permissions")
    for function in (workflow.validate, notify):
        _ack(machine_role, _resource(stack, f"{function.function.function_arn}:*"),
             "invokes its own Lambda function, any version (CDK's grant includes the qualifier)")
    _ack(machine_role, _resource(stack, workflow.publish_jobs_arn),
         "publish jobs are named ltv-publish-<uuid> at run time")

    rest_api = api.api
    _ack(rest_api, "IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
         "AmazonAPIGatewayPushToCloudWatchLogs]",
         "the account-level role API Gateway needs to write execution logs; AWS documents this policy")
    _ack(rest_api, "COG4", "people's routes use a Lambda REQUEST authoriser that verifies the Cognito "
         "user pool's ID token (from a cookie, which page navigations carry and a COGNITO_USER_POOLS "
         "authoriser cannot read); tools' /api routes use IAM (SigV4); see infra/api.py")
    _ack(api.auth, "APIG4", "the sign-in routes (/auth/login, callback, logout, signed-out) are the way "
         "to a session: they only redirect to the hosted UI or say 'signed out', on a Lambda that "
         "reads no data")
    _ack(rest_api.deployment_stage, "APIG3", "every route needs a signed-in person or an IAM "
         "signature, and the stage throttles; a WAF web ACL would add cost without a threat it "
         "mitigates here")
    _login(login)
    _warehouse(stack, objects)


def _login(login: Login) -> None:
    pool = login.user_pool
    _ack(pool, "COG8", "the Plus feature plan buys threat protection; people sign in through the "
         "company identity provider (its risk policies apply), or as administrator-created users "
         "with a strong password and TOTP required")


def _warehouse(stack: LtvForecastStack, objects: Callable[[str], str]) -> None:
    warehouse = stack.warehouse
    dataset = f"{Storage.WAREHOUSE}/*"
    lam = warehouse.refresh.role
    _ack(lam, "IAM5[Resource::*]", XRAY)
    _ack(lam, objects(f"{dataset}/{layout.STATE}"), "reads and rewrites each dataset's state.json")
    _ack(lam, objects(f"{dataset}/{MANIFEST}"), "writes each dataset's manifest of committed objects")
    _ack(lam, objects(f"{dataset}/{layout.MARKER}"), "marks each dataset folder as a warehouse")
    _ack(lam, objects(f"{dataset}/{layout.USER_DAY}/*"),
         "clears a date's aggregate before Athena writes it again (UNLOAD needs an empty folder)")
    role = warehouse.role
    _ack(role, objects(f"{dataset}/{layout.EVENTS}/*"), "Athena reads the events of the dates it aggregates")
    _ack(role, objects(f"{dataset}/{layout.USER_DAY}/*"), "Athena writes each aggregated date's objects")
    _ack(role, objects(f"{Storage.ATHENA_RESULTS}/*"), "Athena's query results and metadata, per query id")
    _ack(role, "IAM5[Resource::*]", "X-Ray tracing and CloudWatch Logs delivery "
         "(logs:CreateLogDelivery and related) have no resource-level permissions")


def _ack(scope: IConstruct, finding: str, reason: str) -> None:
    cdk.Validations.of(scope).acknowledge(
        cdk.Acknowledgment(id=f"AwsSolutions::AwsSolutions-{finding}", reason=reason))


def _resource(stack: cdk.Stack, value: str) -> str:
    """The IAM5 finding for a resource, written as cdk-nag writes it: intrinsics become
    ``<AWS::Region>``, ``<LogicalId.Arn>``, … (whether the stack's region is known or not)."""
    return f"IAM5[Resource::{_render(stack.resolve(value))}]"


def _render(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and "Fn::Join" in value:
        separator, parts = value["Fn::Join"]
        return separator.join(_render(part) for part in parts)
    if isinstance(value, dict) and "Ref" in value:
        return f"<{value['Ref']}>"
    if isinstance(value, dict) and "Fn::GetAtt" in value:
        return "<{}.{}>".format(*value["Fn::GetAtt"])
    raise ValueError(f"cannot render {value!r} as cdk-nag does")
