"""The warehouse on AWS: Glue tables over the bucket's layout, an Athena workgroup, and the
daily refresh that aggregates new dates on Athena.

    Start ─► Plan (Lambda) ─► UnloadEachDate (Map, 5 at a time: athena:startQueryExecution.sync)
          ─► Commit (Lambda) ─► MoreDates? ── a date failed ────────────────► Failed
                                           ├─ dates left over (≤ 20 rounds) ─► NextRound ─► Plan
                                           └─ otherwise ─────────────────────► Done

The logic is :mod:`ltvcore.warehouse.athena`: Plan compares each dataset's ``events/`` objects
with its ``state.json`` and returns one ``UNLOAD`` per new or changed date; Commit records the
aggregates' ETags in ``state.json`` and writes the manifest a forecast downloads. No step
reads raw events except Athena, and Athena reads only the dates it aggregates.

One table per kind of data, for every dataset: ``dataset`` is an *injected* projected partition
key (any folder under ``warehouse/`` is a dataset, with no deploy and no catalog update when one
is added) and ``event_date`` a *date* projection, so neither needs partitions registered. A
query must name its dataset with an equality, which every statement of the refresh does.
"""

from __future__ import annotations

from aws_cdk import ArnFormat, Duration, RemovalPolicy, Stack
from aws_cdk import aws_athena as athena
from aws_cdk import aws_glue as glue
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from infra.config import DeploymentConfig
from infra.function import HandlerFunction, log_retention
from infra.storage import Storage
from ltvcore.warehouse import layout
from ltvcore.warehouse.athena import MANIFEST

__all__ = ["PROJECTION_START", "Warehouse"]

PROJECTION_START = "2010-01-01"
"""The first ``event_date`` the tables project (to ``NOW``): earlier events are not queried."""
UNLOAD_CONCURRENCY = 5  # of Athena's 20+ concurrent DML queries per account: leave room for people
UNLOAD_TIMEOUT = Duration.minutes(60)  # one date; Athena's own DML timeout is 30 min by default
REFRESH_TIMEOUT = Duration.hours(12)
MAX_ROUNDS = 20  # of Plan → UnloadEachDate → Commit in one execution (see _state_machine)
ATHENA_RETRY_ERRORS = ["Athena.TooManyRequestsException", "Athena.AmazonAthenaException"]

_PARQUET = {
    "input_format": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat",
    "output_format": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat",
    "serde": "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe",
}
# name → (columns, partitioned by date, the folder under the dataset)
TABLES: dict[str, tuple[list[tuple[str, str]], bool, str]] = {
    "events": ([("user_id", "string"), ("revenue", "double")], True, "events"),
    "user_day": ([("user_id", "string"), ("revenue", "double"), ("events", "bigint")], True, "user_day"),
    "installs": ([("user_id", "string"), ("install_date", "date"), ("campaign", "string")], False, "installs"),
    "spend": ([("campaign", "string"), ("spend", "double")], False, "spend"),
}


class Warehouse(Construct):
    """``database``/``tables``: the Glue catalog; ``workgroup``: Athena; ``refresh``: the Lambda;
    ``state_machine``: the daily refresh (started by :class:`infra.scheduling.DailySchedule`)."""

    def __init__(self, scope: Construct, construct_id: str, *, config: DeploymentConfig,
                 storage: Storage) -> None:
        super().__init__(scope, construct_id)
        self.config = config
        self.storage = storage
        stack = Stack.of(self)
        self.database_name = config.glue_database_name
        self.workgroup_name = config.athena_workgroup_name
        self.database = glue.CfnDatabase(
            self, "Database", catalog_id=stack.account,
            database_input=glue.CfnDatabase.DatabaseInputProperty(
                name=self.database_name,
                description="ltv-forecast warehouse: every dataset's events and daily aggregates"))
        self.tables = {name: self._table(name, *spec) for name, spec in TABLES.items()}
        self.catalog_arn = stack.format_arn(service="glue", resource="catalog")
        self.database_arn = stack.format_arn(service="glue", resource="database",
                                             resource_name=self.database_name)
        self.events_table_arn = stack.format_arn(service="glue", resource="table",
                                                 resource_name=f"{self.database_name}/events")
        self.workgroup = self._workgroup()
        self.workgroup_arn = stack.format_arn(service="athena", resource="workgroup",
                                              resource_name=self.workgroup_name)

        self.state_machine_name = config.refresh_state_machine_name
        # Named, not referenced: the plan Lambda needs the ARN, the machine the Lambda's.
        self.state_machine_arn = stack.format_arn(
            service="states", resource="stateMachine", resource_name=self.state_machine_name,
            arn_format=ArnFormat.COLON_RESOURCE_NAME)
        self.refresh = HandlerFunction(
            self, "RefreshLambda", name="warehouse_refresh", config=config,
            timeout=Duration.minutes(10), memory_mb=1024,
            description="ltv-forecast: plan and commit the daily warehouse refresh",
            environment={"LTV_WAREHOUSE": storage.uri(Storage.WAREHOUSE),
                         "LTV_GLUE_DATABASE": self.database_name,
                         "LTV_GLUE_EVENTS_TABLE": "events",
                         "LTV_REFRESH_STATE_MACHINE_ARN": self.state_machine_arn})
        self._grant_refresh_lambda()
        self.role = iam.Role(self, "StateMachineRole",
                             assumed_by=iam.ServicePrincipal("states.amazonaws.com"),
                             description="ltv-forecast warehouse refresh: Athena over the warehouse")
        self._grant_state_machine()
        self.state_machine = self._state_machine()

    # ------------------------------------------------------------------ catalog and Athena
    def _table(self, name: str, columns: list[tuple[str, str]], by_date: bool, folder: str) -> glue.CfnTable:
        root = self.storage.uri(Storage.WAREHOUSE)
        template = f"{root}/${{dataset}}/{folder}/" + ("event_date=${event_date}/" if by_date else "")
        parameters = {
            "classification": "parquet", "EXTERNAL": "TRUE",
            "projection.enabled": "true",
            "projection.dataset.type": "injected",
            "storage.location.template": template,
        }
        keys = [glue.CfnTable.ColumnProperty(name="dataset", type="string")]
        if by_date:
            keys.append(glue.CfnTable.ColumnProperty(name="event_date", type="date"))
            parameters.update({
                "projection.event_date.type": "date",
                "projection.event_date.format": "yyyy-MM-dd",
                "projection.event_date.range": f"{PROJECTION_START},NOW",
                "projection.event_date.interval": "1",
                "projection.event_date.interval.unit": "DAYS",
            })
        table = glue.CfnTable(
            self, f"{name.title().replace('_', '')}Table", catalog_id=Stack.of(self).account,
            database_name=self.database.ref,
            table_input=glue.CfnTable.TableInputProperty(
                name=name, table_type="EXTERNAL_TABLE", parameters=parameters, partition_keys=keys,
                description=f"warehouse/<dataset>/{folder}/ of every dataset (Parquet)",
                storage_descriptor=glue.CfnTable.StorageDescriptorProperty(
                    columns=[glue.CfnTable.ColumnProperty(name=c, type=t) for c, t in columns],
                    location=f"{root}/", input_format=_PARQUET["input_format"],
                    output_format=_PARQUET["output_format"],
                    serde_info=glue.CfnTable.SerdeInfoProperty(serialization_library=_PARQUET["serde"]))))
        return table

    def _workgroup(self) -> athena.CfnWorkGroup:
        # Enforced: every query of the workgroup writes its results here, encrypted like the
        # bucket (S3-managed keys; a KMS bucket would take SSE_KMS with its key), and stops at
        # the scan limit, whatever the client asks for.
        return athena.CfnWorkGroup(
            self, "WorkGroup", name=self.workgroup_name, state="ENABLED", recursive_delete_option=True,
            description="ltv-forecast warehouse refresh (and ad-hoc queries of the warehouse)",
            work_group_configuration=athena.CfnWorkGroup.WorkGroupConfigurationProperty(
                enforce_work_group_configuration=True,
                publish_cloud_watch_metrics_enabled=True,
                bytes_scanned_cutoff_per_query=self.config.athenaScanLimitGb * 2**30,
                requester_pays_enabled=False,
                engine_version=athena.CfnWorkGroup.EngineVersionProperty(
                    selected_engine_version="Athena engine version 3"),
                result_configuration=athena.CfnWorkGroup.ResultConfigurationProperty(
                    output_location=self.storage.uri(Storage.ATHENA_RESULTS) + "/",
                    expected_bucket_owner=Stack.of(self).account,
                    encryption_configuration=athena.CfnWorkGroup.EncryptionConfigurationProperty(
                        encryption_option="SSE_S3"))))

    # ------------------------------------------------------------------ permissions
    def _grant_refresh_lambda(self) -> None:
        """Plan lists and clears; commit lists and writes the state: no data is read."""
        role, storage = self.refresh.role, self.storage
        dataset = f"{Storage.WAREHOUSE}/*"
        role.add_to_policy(iam.PolicyStatement(actions=["s3:ListBucket"],
                                               resources=[storage.bucket.bucket_arn]))
        role.add_to_policy(iam.PolicyStatement(
            actions=["s3:GetObject"], resources=[storage.arn(f"{dataset}/{layout.STATE}")]))
        role.add_to_policy(iam.PolicyStatement(
            actions=["s3:PutObject"],
            resources=[storage.arn(f"{dataset}/{name}")
                       for name in (layout.STATE, MANIFEST, layout.MARKER)]))
        role.add_to_policy(iam.PolicyStatement(
            actions=["s3:DeleteObject"], resources=[storage.arn(f"{dataset}/{layout.USER_DAY}/*")]))
        role.add_to_policy(iam.PolicyStatement(
            actions=["states:ListExecutions"], resources=[self.state_machine_arn]))

    def _grant_state_machine(self) -> None:
        """What the tasks need, and no more than that.

        The state machine gets its role without automatic grants (``without_policy_updates``):
        CDK's Athena task would add S3 reads on every bucket and Glue writes to the catalog.
        Athena runs each query with these credentials: Glue reads of the events table, reads of
        ``events/``, writes of ``user_day/`` and of the result prefix.
        """
        role, storage = self.role, self.storage
        dataset = f"{Storage.WAREHOUSE}/*"
        role.add_to_policy(iam.PolicyStatement(
            actions=["lambda:InvokeFunction"], resources=[self.refresh.function.function_arn]))
        role.add_to_policy(iam.PolicyStatement(
            actions=["athena:StartQueryExecution", "athena:GetQueryExecution", "athena:StopQueryExecution"],
            resources=[self.workgroup_arn]))
        # Athena resolves the query's catalog (Step Functions' documented policy for this task).
        role.add_to_policy(iam.PolicyStatement(
            actions=["athena:GetDataCatalog"],
            resources=[Stack.of(self).format_arn(service="athena", resource="datacatalog",
                                                 resource_name="AwsDataCatalog")]))
        role.add_to_policy(iam.PolicyStatement(
            actions=["glue:GetDatabase", "glue:GetTable", "glue:GetPartition", "glue:GetPartitions",
                     "glue:BatchGetPartition"],
            resources=[self.catalog_arn, self.database_arn, self.events_table_arn]))
        role.add_to_policy(iam.PolicyStatement(
            actions=["s3:ListBucket", "s3:GetBucketLocation", "s3:ListBucketMultipartUploads"],
            resources=[storage.bucket.bucket_arn]))
        role.add_to_policy(iam.PolicyStatement(
            actions=["s3:GetObject"], resources=[storage.arn(f"{dataset}/{layout.EVENTS}/*"),
                                                 storage.arn(f"{Storage.ATHENA_RESULTS}/*")]))
        role.add_to_policy(iam.PolicyStatement(
            actions=["s3:PutObject", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"],
            resources=[storage.arn(f"{dataset}/{layout.USER_DAY}/*"),
                       storage.arn(f"{Storage.ATHENA_RESULTS}/*")]))
        # Logs delivery and X-Ray, as CDK would grant them: neither has resource-level permissions.
        role.add_to_policy(iam.PolicyStatement(
            actions=["logs:CreateLogDelivery", "logs:GetLogDelivery", "logs:UpdateLogDelivery",
                     "logs:DeleteLogDelivery", "logs:ListLogDeliveries", "logs:PutResourcePolicy",
                     "logs:DescribeResourcePolicies", "logs:DescribeLogGroups"],
            resources=["*"]))
        role.add_to_policy(iam.PolicyStatement(
            actions=["xray:PutTraceSegments", "xray:PutTelemetryRecords", "xray:GetSamplingRules",
                     "xray:GetSamplingTargets"],
            resources=["*"]))

    # ------------------------------------------------------------------ the definition
    def _state_machine(self) -> sfn.StateMachine:
        function = self.refresh.function
        failed = sfn.Fail(self, "Failed", error="WarehouseRefreshFailed",
                          cause="Athena could not aggregate some dates: the Commit state's output "
                                "names them; forecasts of those datasets are refused until a refresh succeeds")
        plan = tasks.LambdaInvoke(
            self, "Plan", lambda_function=function, payload_response_only=True,
            payload=sfn.TaskInput.from_object({"action": "plan",
                                               "execution": sfn.JsonPath.string_at("$$.Execution.Id")}),
            result_path="$.plan",
            comment="the dates whose events are new or changed, one UNLOAD statement each")

        unload = tasks.AthenaStartQueryExecution(
            self, "Unload", query_string=sfn.JsonPath.string_at("$.sql"),
            work_group=self.workgroup_name,
            query_execution_context=tasks.QueryExecutionContext(database_name=self.database_name),
            integration_pattern=sfn.IntegrationPattern.RUN_JOB,
            result_selector={"query_id": sfn.JsonPath.string_at("$.QueryExecution.QueryExecutionId"),
                             "bytes": sfn.JsonPath.number_at("$.QueryExecution.Statistics.DataScannedInBytes")},
            result_path="$.query", task_timeout=sfn.Timeout.duration(UNLOAD_TIMEOUT),
            comment="sql/user_day.sql for one date, written to user_day/event_date=D/")
        # A start that was throttled is safe to repeat: UNLOAD refuses a folder that is not
        # empty, so a retry can never write a date twice. A query that ran and failed is not
        # retried (it may have left objects behind); the next refresh plans its date again.
        unload.add_retry(errors=ATHENA_RETRY_ERRORS, interval=Duration.seconds(30), max_attempts=4,
                         backoff_rate=2)
        item = {"dataset": sfn.JsonPath.string_at("$.dataset"), "date": sfn.JsonPath.string_at("$.date"),
                "sources": sfn.JsonPath.string_at("$.sources"), "files": sfn.JsonPath.number_at("$.files")}
        unloaded = sfn.Pass(self, "Unloaded", parameters={
            **item, "query_id": sfn.JsonPath.string_at("$.query.query_id"),
            "bytes": sfn.JsonPath.number_at("$.query.bytes")})
        unload_failed = sfn.Pass(self, "UnloadFailed", parameters={
            **item, "error": sfn.JsonPath.string_at("$.error.Error"),
            "cause": sfn.JsonPath.string_at("$.error.Cause")})
        unload.add_catch(unload_failed, errors=[sfn.Errors.ALL], result_path="$.error")
        each_date = sfn.Map(self, "UnloadEachDate", items_path="$.plan.items",
                            max_concurrency=UNLOAD_CONCURRENCY, result_path="$.results",
                            comment="one Athena query per planned date; a failed one is recorded, not fatal")
        each_date.item_processor(unload.next(unloaded))

        commit = tasks.LambdaInvoke(
            self, "Commit", lambda_function=function, payload_response_only=True,
            payload=sfn.TaskInput.from_object({
                "action": "commit", "datasets": sfn.JsonPath.list_at("$.plan.datasets"),
                "results": sfn.JsonPath.list_at("$.results"),
                "removed": sfn.JsonPath.list_at("$.plan.removed")}),
            result_selector={"committed": sfn.JsonPath.number_at("$.committed"),
                             "failed_count": sfn.JsonPath.number_at("$.failed_count"),
                             "bytes_scanned": sfn.JsonPath.number_at("$.bytes_scanned")},
            result_path="$.commit",
            comment="state.json and the forecast's manifest of every dataset, from the aggregates' ETags")
        done = sfn.Succeed(self, "Done")
        # A backlog is planned again at once, for at most MAX_ROUNDS rounds: an execution holds
        # 25,000 history events and a round of MAX_DATES dates costs about ten per date. What is
        # left then waits for the next refresh, which starts where this one stopped.
        start = sfn.Pass(self, "Start", result=sfn.Result.from_object({"count": 1}), result_path="$.round",
                         comment="the refresh takes no input; rounds of Plan are counted")
        again = sfn.Pass(self, "NextRound", parameters={"count": sfn.JsonPath.math_add(
            sfn.JsonPath.number_at("$.round.count"), 1)}, result_path="$.round")
        following = (sfn.Choice(self, "MoreDates")
                     .when(sfn.Condition.number_greater_than("$.commit.failed_count", 0), failed)
                     .when(sfn.Condition.and_(sfn.Condition.number_greater_than("$.plan.deferred", 0),
                                              sfn.Condition.number_less_than("$.round.count", MAX_ROUNDS)),
                           again.next(plan))
                     .otherwise(done))
        definition = start.next(plan).next(each_date).next(commit).next(following)

        # Operational logs (the runs' audit trail is the bucket): removed with the stack, so a
        # rollback never leaves a fixed-name group behind for the next deploy to collide with.
        log_group = logs.LogGroup(
            self, "Logs", log_group_name=f"/aws/vendedlogs/states/{self.state_machine_name}",
            retention=log_retention(self.config.logRetentionDays), removal_policy=RemovalPolicy.DESTROY)
        machine = sfn.StateMachine(
            self, "StateMachine", state_machine_name=self.state_machine_name,
            comment="ltv-forecast: aggregate the warehouse's new dates on Athena",
            definition_body=sfn.DefinitionBody.from_chainable(definition),
            state_machine_type=sfn.StateMachineType.STANDARD, timeout=REFRESH_TIMEOUT,
            role=self.role.without_policy_updates(), tracing_enabled=True,
            logs=sfn.LogOptions(destination=log_group, level=sfn.LogLevel.ALL, include_execution_data=False))
        machine.node.add_dependency(self.role, self.workgroup, *self.tables.values())
        return machine
