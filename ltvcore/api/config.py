"""The API's settings, read once from the environment at cold start, and the service they build.

| variable | meaning | default |
|---|---|---|
| ``LTV_STORE`` | artifact store: a directory or ``s3://bucket/prefix`` | ``ltv-runs`` |
| ``LTV_DATA_DIR`` | datasets: a directory or the warehouse ``s3://bucket/prefix`` | ``data`` |
| ``LTV_STATE_MACHINE_ARN`` | set: runs are Step Functions executions; unset: local workers | — |
| ``LTV_NOTIFY_FUNCTION`` | the notify Lambda: a succeeded run resubmitted with ``notify`` is announced again | — |
| ``LTV_LINK_SECONDS`` | lifetime of pre-signed artifact links (S3 store) | ``900`` |
| ``LTV_WORKERS`` | local worker threads | ``2`` |
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ltvcore.api.datasets import open_datasets
from ltvcore.api.launchers import LocalLauncher, StepFunctionsLauncher
from ltvcore.api.service import ForecastService
from ltvcore.runs.store import DEFAULT_STORE, open_store

__all__ = ["ApiSettings", "SettingsError", "build_service"]


class SettingsError(RuntimeError):
    """The environment does not describe a usable API (reported at cold start)."""


class ApiSettings(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True, frozen=True)

    store: str = Field(default=DEFAULT_STORE, alias="LTV_STORE", min_length=1)
    data_dir: str = Field(default="data", alias="LTV_DATA_DIR", min_length=1)
    state_machine_arn: str | None = Field(default=None, alias="LTV_STATE_MACHINE_ARN")
    notify_function: str | None = Field(default=None, alias="LTV_NOTIFY_FUNCTION")
    link_seconds: int = Field(default=900, alias="LTV_LINK_SECONDS", ge=60, le=7 * 24 * 3600)
    workers: int = Field(default=2, alias="LTV_WORKERS", ge=1, le=64)
    on_lambda: bool = Field(default=False, alias="AWS_LAMBDA_FUNCTION_NAME")

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> ApiSettings:
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {name: environ[name] for name in
                  ("LTV_STORE", "LTV_DATA_DIR", "LTV_STATE_MACHINE_ARN", "LTV_NOTIFY_FUNCTION",
                   "LTV_LINK_SECONDS", "LTV_WORKERS") if environ.get(name)}
        values["AWS_LAMBDA_FUNCTION_NAME"] = bool(environ.get("AWS_LAMBDA_FUNCTION_NAME"))
        try:
            return cls.model_validate(values)
        except ValidationError as error:
            first = error.errors()[0]
            raise SettingsError(f"{first['loc'][0]}: {first['msg']}") from None


def build_service(settings: ApiSettings, *, launcher=None) -> ForecastService:
    """The service the settings describe: Step Functions when an ARN is set, else local workers."""
    store = open_store(settings.store)
    if launcher is None:
        if settings.state_machine_arn:
            launcher = StepFunctionsLauncher(settings.state_machine_arn, store,
                                             notify_function=settings.notify_function)
        elif settings.on_lambda:
            raise SettingsError("LTV_STATE_MACHINE_ARN must be set on Lambda "
                                "(a Lambda cannot keep computing after it answers)")
        else:
            launcher = LocalLauncher(store, workers=settings.workers)
    local = isinstance(launcher, LocalLauncher) and not settings.on_lambda
    return ForecastService(store=store, datasets=open_datasets(settings.data_dir),
                           launcher=launcher, link_seconds=settings.link_seconds, local=local)
