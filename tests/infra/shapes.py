"""Request arguments checked against botocore's service models (``data/<service>/*/service-2.json``).

A small walker of an operation's input shape: required members (but idempotency tokens, which
the SDKs fill in), unknown keys, and the types of
strings (with their enums), integers, booleans, numbers, lists, maps and structures. What a
template cannot know until run time counts as a string of unknown content: an ASL value under a
``.$`` key (a JSONPath, a context path or an intrinsic function; a bare path may also select an
object, so it passes for any shape), and a SageMaker pipeline expression (``{"Get": ...}``,
``{"Std:Join": ...}``). CloudFormation references are plain strings by then (``flatten``).
Also the error names a task can raise, for its Retry and Catch (Step Functions' naming rules).
"""

from __future__ import annotations

import re
from functools import cache
from typing import Any

import botocore.loaders

__all__ = ["STATES_ERRORS", "Model", "error_names", "model", "task_arguments", "task_operation",
           "task_states"]

STATES_ERRORS = frozenset({
    "States.ALL", "States.HeartbeatTimeout", "States.Timeout", "States.TaskFailed",
    "States.Permissions", "States.ResultPathMatchFailure", "States.ParameterPathFailure",
    "States.QueryEvaluationError", "States.BranchFailed", "States.NoChoiceMatched",
    "States.IntrinsicFailure", "States.ExceedToleratedFailureThreshold", "States.ItemReaderFailed",
    "States.ResultWriterFailed", "States.Runtime"})
"""The ``States.*`` names of the Amazon States Language (the only ones a Retry/Catch may use)."""

# Optimised integrations call through the AWS SDK for Java 1.x: errors that the model does not
# name arrive as that SDK's service base exception, or as its client-side ones (Step Functions'
# documentation and CDK's LambdaInvoke defaults use these names). aws-sdk: integrations use the
# 2.x SDK, whose base exception is ``<serviceId>Exception``.
_SDK_V1_BASE = {"lambda": "AWSLambdaException", "sagemaker": "AmazonSageMakerException",
                "athena": "AmazonAthenaException", "s3": "AmazonS3Exception"}
_SDK_V1_CLIENT = ("SdkClientException", "ClientExecutionTimeoutException")
# Step Functions' service names where they differ from botocore's.
_BOTOCORE_NAME = {"sfn": "stepfunctions", "states": "stepfunctions"}
_PIPELINE_EXPRESSIONS = frozenset({"Get", "Std:Join", "Std:JsonGet"})
_FUNCTION = re.compile(r"^arn:[^:]+:lambda:[^:]*:[^:]*:function:[^:]+$")
_RESOURCE = re.compile(r"^arn:[^:]+:states:::(aws-sdk:)?([a-z0-9-]+):([A-Za-z0-9]+)(\.[A-Za-z]+)?$")


class Model:
    """One botocore service model: its input shapes and its exceptions."""

    def __init__(self, service: str) -> None:
        data = botocore.loaders.create_loader().load_service_model(service, "service-2")
        self.service = service
        self.service_id = str(data["metadata"]["serviceId"]).replace(" ", "")
        self.shapes: dict[str, Any] = data["shapes"]
        self.operations: dict[str, Any] = data["operations"]

    def exceptions(self) -> set[str]:
        return {name for name, shape in self.shapes.items() if shape.get("exception")}

    def check(self, operation: str, arguments: Any, *, optional: tuple[str, ...] = (),
              free: tuple[str, ...] = ()) -> list[str]:
        """Problems of ``arguments`` as the input of ``operation`` (empty: valid).

        ``optional``: top-level required members someone else fills in (a pipeline names its
        jobs). ``free``: top-level members whose content is not the model's to judge (the
        Lambda integration's ``Payload`` is JSON, not bytes).
        """
        if operation not in self.operations:
            return [f"{self.service} has no operation {operation}"]
        shape = self.operations[operation].get("input", {}).get("shape")
        if shape is None:
            return [] if not arguments else [f"{operation} takes no input"]
        return self._walk(shape, arguments, operation, optional=optional, free=free)

    # -- the walk -------------------------------------------------------------
    def _walk(self, name: str, value: Any, where: str, *, optional: tuple[str, ...] = (),
              free: tuple[str, ...] = (), dynamic: bool = False) -> list[str]:
        shape = self.shapes[name]
        kind = shape["type"]
        if dynamic or _is_expression(value):
            plain_path = dynamic and isinstance(value, str) and value.startswith("$")
            if kind in ("string", "blob", "timestamp") or plain_path:
                return []
            return [f"{where}: a run-time string where {name} ({kind}) is expected"]
        if kind == "structure":
            return self._structure(name, shape, value, where, optional, free)
        if kind == "list":
            if not isinstance(value, list):
                return [f"{where}: a list ({name}) is expected, got {type(value).__name__}"]
            problems = _length(shape, len(value), where)
            for index, item in enumerate(value):
                problems += self._walk(shape["member"]["shape"], item, f"{where}[{index}]")
            return problems
        if kind == "map":
            if not isinstance(value, dict):
                return [f"{where}: a map ({name}) is expected, got {type(value).__name__}"]
            problems = _length(shape, len(value), where)
            for key, item in value.items():
                key, item_dynamic = (key[:-2], True) if key.endswith(".$") else (key, False)
                problems += self._walk(shape["key"]["shape"], key, f"{where} key {key!r}")
                problems += self._walk(shape["value"]["shape"], item, f"{where}.{key}",
                                       dynamic=item_dynamic)
            return problems
        return _scalar(name, shape, value, where)

    def _structure(self, name: str, shape: dict[str, Any], value: Any, where: str,
                   optional: tuple[str, ...], free: tuple[str, ...]) -> list[str]:
        if not isinstance(value, dict):
            return [f"{where}: a structure ({name}) is expected, got {type(value).__name__}"]
        members = shape.get("members", {})
        given: dict[str, tuple[Any, bool]] = {}
        for key, item in value.items():
            member, is_dynamic = (key[:-2], True) if key.endswith(".$") else (key, False)
            given[member] = (item, is_dynamic)
        problems = [f"{where}: {key!r} is not a member of {name} (members: {', '.join(sorted(members))})"
                    for key in given if key not in members]
        # An idempotency token is filled in by the SDK when missing (a new one per call).
        problems += [f"{where}: required member {key!r} of {name} is missing"
                     for key in shape.get("required", []) if key not in given and key not in optional
                     and not members.get(key, {}).get("idempotencyToken")]
        for key, (item, is_dynamic) in given.items():
            if key in members and key not in free:
                problems += self._walk(members[key]["shape"], item, f"{where}.{key}",
                                       dynamic=is_dynamic)
        return problems


def _is_expression(value: Any) -> bool:
    return isinstance(value, dict) and len(value) == 1 and next(iter(value)) in _PIPELINE_EXPRESSIONS


def _length(shape: dict[str, Any], length: int, where: str) -> list[str]:
    if "min" in shape and length < shape["min"]:
        return [f"{where}: {length} items, at least {shape['min']} expected"]
    if "max" in shape and length > shape["max"]:
        return [f"{where}: {length} items, at most {shape['max']} expected"]
    return []


def _scalar(name: str, shape: dict[str, Any], value: Any, where: str) -> list[str]:
    kind = shape["type"]
    if kind == "string":
        if not isinstance(value, str):
            return [f"{where}: a string ({name}) is expected, got {value!r}"]
        if "enum" in shape and value not in shape["enum"]:
            return [f"{where}: {value!r} is not one of {name}'s values {shape['enum']}"]
        if "${" not in value:  # an unresolved CloudFormation reference has no length yet
            return [f"{where}: {problem}" for problem in _string_length(shape, value)]
        return []
    if kind in ("integer", "long"):
        if isinstance(value, bool) or not isinstance(value, int):
            return [f"{where}: an integer ({name}) is expected, got {value!r}"]
        if ("min" in shape and value < shape["min"]) or ("max" in shape and value > shape["max"]):
            return [f"{where}: {value} is outside {name}'s range {shape.get('min')}..{shape.get('max')}"]
        return []
    if kind == "boolean":
        return [] if isinstance(value, bool) else [f"{where}: a boolean ({name}) is expected, got {value!r}"]
    if kind in ("double", "float"):
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        return [] if ok else [f"{where}: a number ({name}) is expected, got {value!r}"]
    if kind == "timestamp":
        ok = isinstance(value, (str, int, float)) and not isinstance(value, bool)
        return [] if ok else [f"{where}: a timestamp ({name}) is expected, got {value!r}"]
    if kind == "blob":
        return [] if isinstance(value, str) else [f"{where}: bytes ({name}) are expected, got {value!r}"]
    return [f"{where}: shape type {kind} of {name} is not checked here"]


def _string_length(shape: dict[str, Any], value: str) -> list[str]:
    if "min" in shape and len(value) < shape["min"]:
        return [f"{value!r} is shorter than {shape['min']}"]
    if "max" in shape and len(value) > shape["max"]:
        return [f"{value!r} is longer than {shape['max']}"]
    return []


@cache
def model(service: str) -> Model:
    return Model(_BOTOCORE_NAME.get(service, service))


def task_operation(resource: str) -> tuple[str, str, bool]:
    """``(service, Operation, optimised)`` of a Task state's ``Resource`` (a function's ARN is
    the Lambda integration too: its Parameters are the payload)."""
    if _FUNCTION.match(resource):
        return "lambda", "Invoke", True
    match = _RESOURCE.match(resource)
    if match is None:
        raise ValueError(f"not a Step Functions service integration: {resource}")
    sdk, service, action, _pattern = match.groups()
    return service, action[0].upper() + action[1:], sdk is None


def error_names(resource: str) -> set[str]:
    """Every error name a Task with ``resource`` can raise, by Step Functions' rules: a modelled
    error is ``<Service>.<shape>`` with ``Exception`` appended when the shape lacks it, the rest
    is the SDK's base or client-side exception; plus the ``States.*`` names."""
    service, _operation, optimised = task_operation(resource)
    found = model(service)
    prefix = found.service_id
    names = {name if name.endswith("Exception") else f"{name}Exception" for name in found.exceptions()}
    if optimised:
        names |= {_SDK_V1_BASE[service], *_SDK_V1_CLIENT}
    else:
        names.add(f"{prefix}Exception")
    return {f"{prefix}.{name}" for name in names} | STATES_ERRORS



def task_states(definition: dict[str, Any], where: str = "") -> list[tuple[str, dict[str, Any]]]:
    """Every Task state of an ASL definition, inside Map and Parallel states too."""
    found: list[tuple[str, dict[str, Any]]] = []
    for name, state in definition.get("States", {}).items():
        if state["Type"] == "Task":
            found.append((f"{where}{name}", state))
        for inner in [state.get("ItemProcessor"), state.get("Iterator"), *state.get("Branches", [])]:
            if inner:
                found += task_states(inner, f"{where}{name}/")
    return found


def task_arguments(state: dict[str, Any]) -> tuple[str, str, dict[str, Any], tuple[str, ...]]:
    """``(service, Operation, arguments, free members)`` of the API call a Task state makes."""
    service, operation, _optimised = task_operation(state["Resource"])
    arguments = state.get("Parameters", {})
    if _FUNCTION.match(state["Resource"]):
        arguments = {"FunctionName": state["Resource"], "Payload": arguments}
    # the Lambda integration's Payload is JSON (or a path), not the API's bytes
    return service, operation, arguments, ("Payload",) if service == "lambda" else ()
