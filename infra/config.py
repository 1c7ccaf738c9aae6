"""Deployment settings: every name and size of the stack, read once from the CDK context.

Each setting has a documented default (``DEFAULTS``, mirrored in ``cdk.json``) and can be
overridden per deployment with ``npx cdk deploy -c ltv:<key>=<value>``. Values given on the
command line arrive as strings, so each is converted and checked here, once, with a message
naming the key.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, fields
from typing import Any

from constructs import Node

__all__ = ["DEFAULTS", "DeploymentConfig", "PREFIX"]

PREFIX = "ltv:"

DEFAULTS: dict[str, Any] = {
    # CloudFormation stack name; also prefixes the SageMaker pipeline names.
    "stackName": "LtvForecast",
    # SageMaker processing: prepare/forecast/report steps of the pipeline.
    "processingInstanceType": "ml.m5.xlarge",
    # Instances of the forecast step = shards of the groups (ShardedByS3Key).
    "forecastShardCount": 1,
    "processingVolumeGb": 30,
    "processingMaxRuntimeMinutes": 120,
    # The publish job started by the state machine (I/O only: a small instance is enough).
    "publishInstanceType": "ml.t3.medium",
    # How long the state machine waits for the pipeline's callback before failing the run.
    "pipelineTimeoutMinutes": 240,
    # SageMaker step caching of the deterministic steps (ISO 8601 days).
    "stepCacheDays": 7,
    # Scratch data (pipeline intermediates) expires after this; must exceed stepCacheDays.
    "scratchExpirationDays": 14,
    # EventBridge schedule of the daily prepare (cohort aggregation) over the raw events (UTC).
    "dailyPrepareSchedule": "cron(0 5 * * ? *)",
    # Secrets Manager secret holding the Slack webhook config (created outside CDK).
    "slackSecretName": "ltv-forecast/slack",
    # Lifetime of the report link in Slack messages (pre-signed with the Lambda's credentials).
    "reportLinkHours": 1,
    # S3 Object Lock (governance mode) on the artifact bucket; decided when the bucket is created.
    "objectLock": False,
    "objectLockRetentionDays": 365,
    # Days CloudWatch keeps Lambda, state machine and API access logs.
    "logRetentionDays": 90,
    # Days S3 keeps noncurrent versions of scratch/warehouse objects (never run artifacts).
    "noncurrentVersionDays": 30,
    # API Gateway stage throttling (requests per second, burst).
    "apiThrottleRateLimit": 10,
    "apiThrottleBurstLimit": 20,
    # Optional e-mail subscribed to the alarm topic ("" = none; subscribe later).
    "alarmEmail": "",
    # pip-install the Lambdas' third-party dependencies when bundling (tests turn it off).
    "bundleLambdaDependencies": True,
}

_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9-]{0,40}$")
_SECRET = re.compile(r"^[A-Za-z0-9/_+=.@-]{1,512}$")
_SCHEDULE = re.compile(r"^(cron|rate)\(.+\)$")


@dataclass(frozen=True)
class DeploymentConfig:
    """Typed, validated deployment settings (see ``DEFAULTS`` for the meaning of each)."""

    stackName: str
    processingInstanceType: str
    forecastShardCount: int
    processingVolumeGb: int
    processingMaxRuntimeMinutes: int
    publishInstanceType: str
    pipelineTimeoutMinutes: int
    stepCacheDays: int
    scratchExpirationDays: int
    dailyPrepareSchedule: str
    slackSecretName: str
    reportLinkHours: int
    objectLock: bool
    objectLockRetentionDays: int
    logRetentionDays: int
    noncurrentVersionDays: int
    apiThrottleRateLimit: int
    apiThrottleBurstLimit: int
    alarmEmail: str
    bundleLambdaDependencies: bool

    @classmethod
    def from_node(cls, node: Node) -> DeploymentConfig:
        """Read ``ltv:<key>`` context values (cdk.json or ``-c``), defaults for the rest."""
        values = {}
        for item in fields(cls):
            raw = node.try_get_context(PREFIX + item.name)
            values[item.name] = DEFAULTS[item.name] if raw is None else raw
        return cls.from_mapping(values)

    @classmethod
    def from_mapping(cls, values: dict[str, Any]) -> DeploymentConfig:
        unknown = set(values) - set(DEFAULTS)
        if unknown:
            raise ValueError(f"unknown setting(s) {sorted(unknown)}; known: {sorted(DEFAULTS)}")
        merged = {**DEFAULTS, **values}
        converted = {}
        for item in fields(cls):
            default = DEFAULTS[item.name]
            converted[item.name] = _convert(item.name, merged[item.name], type(default))
        config = cls(**converted)
        config._check()
        return config

    def _check(self) -> None:
        if not _NAME.match(self.stackName):
            _fail("stackName", self.stackName, "letters, digits and '-', starting with a letter, at most 41")
        for key in ("processingInstanceType", "publishInstanceType"):
            if not re.fullmatch(r"ml\.[a-z0-9]+\.[a-z0-9]+", getattr(self, key)):
                _fail(key, getattr(self, key), "a SageMaker instance type such as ml.m5.xlarge")
        _range("forecastShardCount", self.forecastShardCount, 1, 100)
        _range("processingVolumeGb", self.processingVolumeGb, 1, 16384)
        _range("processingMaxRuntimeMinutes", self.processingMaxRuntimeMinutes, 1, 7 * 24 * 60)
        _range("pipelineTimeoutMinutes", self.pipelineTimeoutMinutes, 5, 7 * 24 * 60)
        _range("stepCacheDays", self.stepCacheDays, 1, 365)
        _range("scratchExpirationDays", self.scratchExpirationDays, self.stepCacheDays + 1, 3650)
        if not _SCHEDULE.match(self.dailyPrepareSchedule):
            _fail("dailyPrepareSchedule", self.dailyPrepareSchedule, "an EventBridge cron(...) or rate(...)")
        if not _SECRET.match(self.slackSecretName):
            _fail("slackSecretName", self.slackSecretName, "a Secrets Manager secret name")
        _range("reportLinkHours", self.reportLinkHours, 1, 12)
        _range("objectLockRetentionDays", self.objectLockRetentionDays, 1, 36500)
        _range("logRetentionDays", self.logRetentionDays, 1, 3653)
        _range("noncurrentVersionDays", self.noncurrentVersionDays, 1, 3650)
        _range("apiThrottleRateLimit", self.apiThrottleRateLimit, 1, 10000)
        _range("apiThrottleBurstLimit", self.apiThrottleBurstLimit, 1, 5000)
        if self.alarmEmail and "@" not in self.alarmEmail:
            _fail("alarmEmail", self.alarmEmail, "an e-mail address or empty")

    # SageMaker writes pipeline names lower-case in ARNs: choose them lower-case.
    @property
    def pipeline_name(self) -> str:
        return f"{self.stackName.lower()}-forecast"

    @property
    def daily_pipeline_name(self) -> str:
        return f"{self.stackName.lower()}-daily-prepare"


def _fail(key: str, value: Any, expected: str) -> None:
    raise ValueError(f"context {PREFIX}{key}={value!r}: expected {expected}")


def _range(key: str, value: int, low: int, high: int) -> None:
    if not low <= value <= high:
        _fail(key, value, f"a whole number in [{low}, {high}]")


def _convert(key: str, value: Any, kind: type) -> Any:
    if kind is bool:
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in ("true", "1", "yes"):
            return True
        if text in ("false", "0", "no"):
            return False
        _fail(key, value, "true or false")
    if kind is int:
        if isinstance(value, bool):
            _fail(key, value, "a whole number")
        try:
            number = int(str(value).strip())
        except ValueError:
            _fail(key, value, "a whole number")
        return number
    return str(value)
