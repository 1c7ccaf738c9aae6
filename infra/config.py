"""Deployment settings: every name and size of the stack, read once from the CDK context.

Each setting has a documented default (the model's field defaults, ``DEFAULTS``, mirrored in
``cdk.json``) and can be overridden per deployment with ``npx cdk deploy -c ltv:<key>=<value>``.
Values given on the command line arrive as strings, so each is converted and checked here, once,
and a bad one is refused with a message naming the key, the value and what was expected.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from annotated_types import Ge, Le
from constructs import Node
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

__all__ = ["DEFAULTS", "DeploymentConfig", "IdentityProvider", "PIPELINE_STEPS", "PREFIX"]

PREFIX = "ltv:"
_OWN = "ltv_expected"  # error type of this module's validators: their message is the expectation


@dataclass(frozen=True)
class Expected:
    """What a field's value should have been, in the words of the error message."""

    text: str


def _whole_number(value: Any) -> int:
    # pydantic's lax int would take a JSON true as 1 and 4.0 as 4: a count is written in digits.
    if isinstance(value, bool):
        raise PydanticCustomError(_OWN, "a whole number")
    try:
        return int(str(value).strip())
    except ValueError:
        raise PydanticCustomError(_OWN, "a whole number") from None


def _flag(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "1", "yes"):
        return True
    if text in ("false", "0", "no"):
        return False
    raise PydanticCustomError(_OWN, "true or false")


WholeNumber = Annotated[int, BeforeValidator(_whole_number)]
Flag = Annotated[bool, BeforeValidator(_flag)]
StackName = Annotated[str, Field(pattern=r"^[A-Za-z][A-Za-z0-9-]{0,40}$"),
                      Expected("letters, digits and '-', starting with a letter, at most 41")]
InstanceType = Annotated[str, Field(pattern=r"^ml\.[a-z0-9]+\.[a-z0-9]+$"),
                         Expected("a SageMaker instance type such as ml.m5.xlarge")]
Schedule = Annotated[str, Field(pattern=r"^(cron|rate)\(.+\)$"), Expected("an EventBridge cron(...) or rate(...)")]
SecretName = Annotated[str, Field(pattern=r"^[A-Za-z0-9/_+=.@-]{1,512}$"), Expected("a Secrets Manager secret name")]
Email = Annotated[str, Field(pattern=r"^(.*@.*)?$"), Expected("an e-mail address or empty")]

DomainPrefix = Annotated[str, Field(pattern=r"^([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)?$"),
                         Expected("lower-case letters, digits and '-' (a Cognito domain prefix), or empty")]
_RESERVED_IN_DOMAIN = ("aws", "amazon", "cognito")  # Cognito refuses prefixes containing these
HttpsUrl = Annotated[str, Field(pattern=r"^https://[^\s/?#]+[^\s]*$", max_length=2048)]

_WEEK_MINUTES = 7 * 24 * 60

# The forecast pipeline runs Prepare → Forecast → Report one after the other, each bounded by
# processingMaxRuntimeMinutes (its StoppingCondition); SageMaker's instance start and image pull
# come on top of a step's runtime, hence a margin per step. tests/infra/test_template.py checks
# the step count against the synthesised pipeline.
PIPELINE_STEPS = 3
STEP_MARGIN_MINUTES = 15
PUBLISH_TIMEOUT_MINUTES = 60  # the Publish state's TimeoutSeconds
# Validate, the stop of a timed-out pipeline and the notification (Lambda retries included)
# must still fit, so a RunPipeline or Publish timeout ends in the Catch path, not at the edge.
END_MARGIN_MINUTES = 30


def _pipeline_minimum(step_minutes: int) -> int:
    return PIPELINE_STEPS * (step_minutes + STEP_MARGIN_MINUTES)


class IdentityProvider(BaseModel):
    """The company's identity provider the user pool federates to (``ltv:identityProvider``).

    SAML: ``{"type": "SAML", "name", "metadataUrl"}``; OIDC: ``{"type": "OIDC", "name",
    "issuer", "clientId", "clientSecretName"}``, the client secret kept in Secrets Manager under
    that name (a plain-text secret) and resolved by CloudFormation, never written in the
    template. ``emailAttribute`` names the assertion attribute or claim holding the e-mail
    (default: SAML's ``emailaddress`` claim URI, OIDC's ``email``).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    type: Literal["SAML", "OIDC"]
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,30}[A-Za-z0-9]$")
    metadataUrl: HttpsUrl | None = None
    issuer: HttpsUrl | None = None
    clientId: str | None = Field(None, min_length=1, max_length=256, pattern=r"^\S+$")
    clientSecretName: str | None = Field(None, pattern=r"^[A-Za-z0-9/_+=.@-]{1,512}$")
    emailAttribute: str | None = Field(None, min_length=1, max_length=256)

    @model_validator(mode="after")
    def _fields_of_its_type(self) -> IdentityProvider:
        needed = ("metadataUrl",) if self.type == "SAML" else ("issuer", "clientId", "clientSecretName")
        foreign = ("issuer", "clientId", "clientSecretName") if self.type == "SAML" else ("metadataUrl",)
        missing = [name for name in needed if getattr(self, name) is None]
        if missing:
            raise ValueError(f"the {self.type} provider needs {', '.join(missing)}")
        extra = [name for name in foreign if getattr(self, name) is not None]
        if extra:
            raise ValueError(f"{', '.join(extra)} is not a {self.type} setting")
        if self.name.lower() == "cognito":
            raise ValueError("'Cognito' is the user pool's own provider")
        return self

    @property
    def email_attribute(self) -> str:
        if self.emailAttribute:
            return self.emailAttribute
        if self.type == "SAML":
            return "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress"
        return "email"


_PROVIDER_SHAPE = ('{"type": "SAML", "name", "metadataUrl"} or {"type": "OIDC", "name", "issuer", '
                   '"clientId", "clientSecretName"}, or null')


def _identity_provider(value: Any) -> IdentityProvider | None:
    # "-c ltv:identityProvider='{...}'" arrives as text, cdk.json as an object.
    if value is None or isinstance(value, IdentityProvider):
        return value
    if isinstance(value, str):
        if value.strip() in ("", "null", "none"):
            return None
        try:
            value = json.loads(value)
        except ValueError:
            raise PydanticCustomError(_OWN, "JSON: " + _PROVIDER_SHAPE) from None
    if not isinstance(value, dict):
        raise PydanticCustomError(_OWN, _PROVIDER_SHAPE)
    try:
        return IdentityProvider.model_validate(value)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        reason = str(first["msg"]).removeprefix("Value error, ")
        raise PydanticCustomError(_OWN, "{shape} ({where}{reason})",
                                  {"shape": _PROVIDER_SHAPE,
                                   "where": f"{where}: " if where else "", "reason": reason}) from None


Provider = Annotated[IdentityProvider | None, BeforeValidator(_identity_provider)]


class DeploymentConfig(BaseModel):
    """Typed, validated deployment settings; field names are the ``ltv:<key>`` context keys."""

    # Numbers from cdk.json and text from "-c" alike; defaults are checked like given values
    # (scratchExpirationDays' default must still outlive a stepCacheDays given on the command line).
    model_config = ConfigDict(frozen=True, extra="forbid", coerce_numbers_to_str=True, validate_default=True)

    stackName: StackName = Field("LtvForecast", description=(
        "CloudFormation stack name; also prefixes the SageMaker pipeline names."))
    processingInstanceType: InstanceType = Field("ml.m5.xlarge", description=(
        "SageMaker processing: prepare/forecast/report steps of the pipeline."))
    forecastShardCount: WholeNumber = Field(1, ge=1, le=100, description=(
        "Instances of the forecast step = shards of the groups (ShardedByS3Key)."))
    processingVolumeGb: WholeNumber = Field(30, ge=1, le=16384)
    processingMaxRuntimeMinutes: WholeNumber = Field(120, ge=1, le=_WEEK_MINUTES)
    publishInstanceType: InstanceType = Field("ml.t3.medium", description=(
        "The publish job started by the state machine (I/O only: a small instance is enough)."))
    pipelineTimeoutMinutes: WholeNumber = Field(0, ge=0, le=_WEEK_MINUTES, description=(
        "How long the state machine waits for the pipeline's callback before failing the run; "
        "0 = derived: every sequential step's processingMaxRuntimeMinutes plus a margin each."))
    stepCacheDays: WholeNumber = Field(7, ge=1, le=365, description=(
        "SageMaker step caching of the deterministic steps (ISO 8601 days)."))
    scratchExpirationDays: WholeNumber = Field(14, description=(
        "Scratch data (pipeline intermediates) expires after this; must exceed stepCacheDays."))
    dailyPrepareSchedule: Schedule = Field("cron(0 5 * * ? *)", description=(
        "EventBridge schedule of the daily warehouse refresh: Athena aggregates new dates (UTC)."))
    athenaScanLimitGb: WholeNumber = Field(100, ge=1, le=1_000_000, description=(
        "Athena workgroup's bytes-scanned limit per query, in GiB: a query reading more is "
        "cancelled (each refresh query reads one date of one dataset)."))
    slackSecretName: SecretName = Field("ltv-forecast/slack", description=(
        "Secrets Manager secret holding the Slack webhook config (created outside CDK)."))
    reportLinkHours: WholeNumber = Field(1, ge=1, le=12, description=(
        "Lifetime of the report link in Slack messages (pre-signed with the Lambda's credentials)."))
    objectLock: Flag = Field(False, description=(
        "S3 Object Lock (governance mode) on the artifact bucket; decided when the bucket is created."))
    objectLockRetentionDays: WholeNumber = Field(365, ge=1, le=36500)
    logRetentionDays: WholeNumber = Field(90, ge=1, le=3653, description=(
        "Days CloudWatch keeps Lambda, state machine and API access logs."))
    noncurrentVersionDays: WholeNumber = Field(30, ge=1, le=3650, description=(
        "Days S3 keeps noncurrent versions of scratch/warehouse objects (never run artifacts)."))
    apiThrottleRateLimit: WholeNumber = Field(10, ge=1, le=10000, description=(
        "API Gateway stage throttling (requests per second, burst)."))
    apiThrottleBurstLimit: WholeNumber = Field(20, ge=1, le=5000)
    alarmEmail: Email = Field("", description=(
        'Optional e-mail subscribed to the alarm topic ("" = none; subscribe later).'))
    bundleLambdaDependencies: Flag = Field(True, description=(
        "pip-install the Lambdas' third-party dependencies when bundling (tests turn it off)."))
    loginDomainPrefix: DomainPrefix = Field("", description=(
        "Prefix of the Cognito hosted sign-in domain (<prefix>.auth.<region>.amazoncognito.com), "
        "unique in the region; \"\" = <stack name, lower case>-<account id>."))
    identityProvider: Provider = Field(None, description=(
        "The company identity provider (SAML or OIDC) the sign-in federates to; null = the "
        "user pool's own users (created by an administrator, MFA required)."))
    sessionHours: WholeNumber = Field(8, ge=1, le=24, description=(
        "How long a sign-in lasts: the ID token's validity and the session cookie's lifetime."))

    @field_validator("scratchExpirationDays")
    @classmethod
    def _outlives_the_step_cache(cls, value: int, info: ValidationInfo) -> int:
        # A cached step's outputs must still exist when the cache hands them out.
        low = info.data.get("stepCacheDays", 1) + 1  # absent when it was refused itself
        if not low <= value <= 3650:
            raise PydanticCustomError(_OWN, "a whole number in [{low}, 3650]", {"low": low})
        return value

    @field_validator("loginDomainPrefix")
    @classmethod
    def _not_reserved(cls, value: str, info: ValidationInfo) -> str:
        derived = value or str(info.data.get("stackName", "")).lower()
        if any(word in derived for word in _RESERVED_IN_DOMAIN):
            raise PydanticCustomError(_OWN, "a prefix without 'aws', 'amazon' or 'cognito' "
                                      "(set ltv:loginDomainPrefix when the stack name has one)")
        return value

    @field_validator("pipelineTimeoutMinutes")
    @classmethod
    def _outlasts_the_steps(cls, value: int, info: ValidationInfo) -> int:
        # A shorter wait would fail runs whose steps are still within their own stopping condition.
        if value and value < (low := _pipeline_minimum(info.data.get("processingMaxRuntimeMinutes", 1))):
            raise PydanticCustomError(_OWN, "0 (derived) or a whole number of at least {low}", {"low": low})
        return value

    @property
    def pipeline_wait_minutes(self) -> int:
        """The RunPipeline task timeout: the given one, else the longest the steps may take."""
        return self.pipelineTimeoutMinutes or _pipeline_minimum(self.processingMaxRuntimeMinutes)

    @property
    def execution_timeout_minutes(self) -> int:
        """The whole execution: the pipeline wait, publish, and the end states after either."""
        return self.pipeline_wait_minutes + PUBLISH_TIMEOUT_MINUTES + END_MARGIN_MINUTES

    @classmethod
    def from_node(cls, node: Node) -> DeploymentConfig:
        """Read ``ltv:<key>`` context values (cdk.json or ``-c``), defaults for the rest."""
        values = {}
        for name in cls.model_fields:
            raw = node.try_get_context(PREFIX + name)
            if raw is not None:
                values[name] = raw
        return cls.from_mapping(values)

    @classmethod
    def from_mapping(cls, values: dict[str, Any]) -> DeploymentConfig:
        """The settings ``values`` give, defaults for the rest; ``ValueError`` naming a bad key."""
        try:
            return cls.model_validate(values)
        except ValidationError as error:
            raise ValueError(_message(error.errors())) from None

    # SageMaker writes pipeline names lower-case in ARNs: choose them lower-case.
    @property
    def pipeline_name(self) -> str:
        return f"{self.stackName.lower()}-forecast"

    # Glue lower-cases database names and allows only letters, digits and underscores.
    @property
    def glue_database_name(self) -> str:
        return f"{self.stackName.lower().replace('-', '_')}_warehouse"

    @property
    def athena_workgroup_name(self) -> str:
        return f"{self.stackName}-warehouse"

    @property
    def refresh_state_machine_name(self) -> str:
        return f"{self.stackName}-warehouse-refresh"


DEFAULTS: dict[str, Any] = {name: field.default for name, field in DeploymentConfig.model_fields.items()}


def _message(errors: list[Any]) -> str:
    """One line for the first problem: an unknown key first, else the first bad value."""
    unknown = sorted(str(e["loc"][0]) for e in errors if e["type"] == "extra_forbidden")
    if unknown:
        return f"unknown setting(s) {unknown}; known: {sorted(DEFAULTS)}"
    error = errors[0]
    key = str(error["loc"][0])
    metadata = DeploymentConfig.model_fields[key].metadata
    if error["type"] == _OWN:
        expected = error["msg"]
    elif error["type"] in ("greater_than_equal", "less_than_equal"):
        low = next(m.ge for m in metadata if isinstance(m, Ge))
        high = next(m.le for m in metadata if isinstance(m, Le))
        expected = f"a whole number in [{low}, {high}]"
    else:  # a pattern or type: say it the way the field's type documents it
        expected = next(m.text for m in metadata if isinstance(m, Expected))
    return f"context {PREFIX}{key}={error['input']!r}: expected {expected}"
