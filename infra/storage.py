"""The artifact bucket (runs, warehouse, scratch) and its access-log bucket.

One key layout::

    runs/<run_id>/...              the artifact store (docs/interface.md, a run's files): never expired
    warehouse/<dataset>/...        a warehouse per dataset (ltvcore.warehouse.layout): events/ by
                                   date and installs/, spend/ (landed by any writer), user_day/ and
                                   state.json (the daily refresh, infra/warehouse.py)
    scratch/runs/<run_id>/...      pipeline intermediates  } expire after
    scratch/athena/...             Athena's query results  } scratchExpirationDays
    notifications/<run_id>/...     what each Slack notification delivered

Versioned, S3-managed encryption, public access blocked, TLS required, server access logs to a
separate bucket. With ``objectLock`` the bucket is created with Object Lock in governance mode
and a default retention (an Object Lock setting can only be chosen when a bucket is created).
"""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from constructs import Construct

from infra.config import DeploymentConfig

__all__ = ["Storage"]


class Storage(Construct):
    RUNS = "runs"
    RUN_INDEX = "index/runs"  # one immutable entry per run event: listings read no bucket scan
    WAREHOUSE = "warehouse"
    SCRATCH = "scratch"
    SCRATCH_RUNS = "scratch/runs"
    ATHENA_RESULTS = "scratch/athena"
    NOTIFICATIONS = "notifications"

    def __init__(self, scope: Construct, construct_id: str, *, config: DeploymentConfig) -> None:
        super().__init__(scope, construct_id)
        self.access_logs = s3.Bucket(
            self, "AccessLogs",
            encryption=s3.BucketEncryption.S3_MANAGED,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            enforce_ssl=True,
            lifecycle_rules=[s3.LifecycleRule(id="expire-access-logs",
                                              expiration=Duration.days(config.logRetentionDays))],
            removal_policy=RemovalPolicy.RETAIN,
        )
        lock = None
        if config.objectLock:
            lock = s3.ObjectLockRetention.governance(Duration.days(config.objectLockRetentionDays))
        self.bucket = s3.Bucket(
            self, "Artifacts",
            versioned=True,
            encryption=s3.BucketEncryption.S3_MANAGED,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            enforce_ssl=True,
            server_access_logs_bucket=self.access_logs,
            server_access_logs_prefix="artifacts/",
            object_lock_enabled=config.objectLock or None,
            object_lock_default_retention=lock,
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="expire-scratch", prefix=f"{self.SCRATCH}/",
                    expiration=Duration.days(config.scratchExpirationDays),
                    noncurrent_version_expiration=Duration.days(1),
                    abort_incomplete_multipart_upload_after=Duration.days(1)),
                # state.json is rewritten with every new date, an aggregate with every late file,
                # and writers may replace raw events: keep only recent old versions of any of them
                s3.LifecycleRule(
                    id="prune-warehouse-versions", prefix=f"{self.WAREHOUSE}/",
                    noncurrent_version_expiration=Duration.days(config.noncurrentVersionDays),
                    abort_incomplete_multipart_upload_after=Duration.days(1)),
            ],
            removal_policy=RemovalPolicy.RETAIN,
        )

    def uri(self, prefix: str = "") -> str:
        """``s3://<bucket>[/<prefix>]`` (a token until deployment)."""
        return f"s3://{self.bucket.bucket_name}" + (f"/{prefix}" if prefix else "")

    def arn(self, pattern: str) -> str:
        """ARN of the objects matching ``pattern`` (e.g. ``runs/*``)."""
        return self.bucket.arn_for_objects(pattern)

    def grant_runs(self, role: iam.IRole, *, write: list[str], read: list[str] | None = None) -> None:
        """List the bucket and read the runs (and ``read``); write only keys matching ``write``.

        Listing is not narrowed by an ``s3:prefix`` condition: without ``s3:ListBucket`` on the
        bucket itself, S3 answers a missing key with 403 instead of 404, and the store tells a
        run that does not exist yet from an error by that 404.
        """
        # Every writer of a run or its marker also writes the run's index entry, and every
        # reader of runs lists them from the index.
        readable = [f"{self.RUNS}/*", f"{self.RUN_INDEX}/*", *(read or [])]
        write = [*write, f"{self.RUN_INDEX}/*"]
        role.add_to_principal_policy(iam.PolicyStatement(
            actions=["s3:ListBucket"], resources=[self.bucket.bucket_arn]))
        role.add_to_principal_policy(iam.PolicyStatement(
            actions=["s3:GetObject"], resources=[self.arn(pattern) for pattern in readable]))
        role.add_to_principal_policy(iam.PolicyStatement(
            actions=["s3:PutObject"], resources=[self.arn(pattern) for pattern in write]))
