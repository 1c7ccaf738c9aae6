"""A cloud in a box for the end-to-end test (imported as ``tests.e2e.cloud``).

:class:`Cloud` is a moto server on 127.0.0.1 that boto3 reaches over HTTP (``AWS_ENDPOINT_URL``),
holding what the synthesised template deploys: its buckets, the forecast pipeline (its
definition as the ``sagemaker`` SDK wrote it), the workflow state machine (executed by moto's
Step Functions interpreter) and its Lambda functions, plus the Slack secret the operator creates.
Lambda invocations reach the real handler modules, in this process, with the environment the
template gives each function.

:class:`LocalSageMaker` plays SageMaker: it runs a processing job request (the
``CreateProcessingJob`` shape) as local processes of the job's entry point, one per instance,
with ``/opt/ml/processing`` remapped and the inputs and outputs moved to and from the moto
bucket the way SageMaker moves them; :meth:`LocalSageMaker.run_pipeline` does that for every
step of a pipeline definition document, in order, with its ``Get``/``Std:Join`` expressions
evaluated against the execution's parameters and the earlier steps' outputs.
"""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
import threading
import urllib.request
from pathlib import Path
from typing import Any, Callable

import boto3
from aws_lambda_powertools.utilities import parameters
from moto.awslambda_simple.models import LambdaSimpleBackend
from moto.server import ThreadedMotoServer

import ltvcore.api
from sagemaker_jobs import paths
from tests.infra.support import ACCOUNT, REGION, flatten, lambda_context, load_handler, resources

__all__ = ["Cloud", "JobFailed", "LocalSageMaker", "api_event"]

PSEUDO = {"AWS::Partition": "aws", "AWS::Region": REGION, "AWS::AccountId": ACCOUNT,
          "AWS::URLSuffix": "amazonaws.com", "AWS::StackName": "LtvForecast"}
CREDENTIALS = {"AWS_DEFAULT_REGION": REGION, "AWS_REGION": REGION, "AWS_ACCESS_KEY_ID": "testing",
               "AWS_SECRET_ACCESS_KEY": "testing", "AWS_SESSION_TOKEN": "testing"}


class Cloud:
    """The moto server with the template deployed on it (see the module docstring)."""

    def __init__(self, template: dict, monkeypatch: Any) -> None:
        self.template = template
        logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no line per request
        self.server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self.server.start()
        host, port = self.server.get_host_and_port()
        self.endpoint = f"http://{host}:{port}"
        monkeypatch.delenv("AWS_PROFILE", raising=False)
        for key, value in {**CREDENTIALS, "AWS_ENDPOINT_URL": self.endpoint,
                           # moto's aws-sdk:* task integrations call the server back on this port
                           "MOTO_PORT": str(port)}.items():
            monkeypatch.setenv(key, value)
        self._moto_config({"stepfunctions": {"execute_state_machine": True}, "lambda": {"use_docker": False}})
        self._lock = threading.Lock()
        self.stand_ins: dict[str, Callable[[dict], Any]] = {}
        self.functions = resources(template, "AWS::Lambda::Function")
        self.handlers = {logical: self._handler_name(f) for logical, f in self.functions.items()}
        self.environments = {logical: {k: flatten(v, self.resolve) for k, v in
                                       f["Properties"].get("Environment", {}).get("Variables", {}).items()}
                             for logical, f in self.functions.items()}
        self._forget_clients()
        monkeypatch.setattr(LambdaSimpleBackend, "invoke", self._invoke_patch())

    # ------------------------------------------------------------------ the template's values
    def resolve(self, value: dict) -> str:
        """An intrinsic as the value it has once deployed here."""
        if "Ref" in value:
            name = value["Ref"]
            if name in PSEUDO:
                return PSEUDO[name]
            kind = self.template["Resources"][name]["Type"]
            if kind == "AWS::StepFunctions::StateMachine":
                return f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:{name}"
            return name.lower()  # a bucket's, a function's physical name
        if "Fn::GetAtt" in value:
            logical, attribute = value["Fn::GetAtt"]
            assert attribute == "Arn", value
            kind = self.template["Resources"][logical]["Type"]
            if kind == "AWS::Lambda::Function":
                return f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{logical.lower()}"
            assert kind == "AWS::IAM::Role", value
            return f"arn:aws:iam::{ACCOUNT}:role/{logical}"
        if "Fn::Sub" in value:
            text, names = (value["Fn::Sub"], {}) if isinstance(value["Fn::Sub"], str) else value["Fn::Sub"]
            values = {**PSEUDO, **{k: flatten(v, self.resolve) for k, v in names.items()}}
            return re.sub(r"\$\{([^}]+)\}", lambda m: values[m.group(1)], text)
        raise AssertionError(f"unexpected intrinsic {value}")

    def logical(self, kind: str, fragment: str) -> str:
        (found,) = [key for key in resources(self.template, kind) if fragment in key]
        return found

    def bucket(self, fragment: str = "Artifacts") -> str:
        return self.resolve({"Ref": self.logical("AWS::S3::Bucket", fragment)})

    def function(self, service: str) -> str:
        """The logical id of the function whose handler is ``lambdas/<service>``."""
        (found,) = [logical for logical, name in self.handlers.items() if name == service]
        return found

    @staticmethod
    def _handler_name(function: dict) -> str:
        service = function["Properties"]["Environment"]["Variables"]["POWERTOOLS_SERVICE_NAME"]
        return service.removeprefix("ltv-")

    # ------------------------------------------------------------------ deploying
    def deploy(self, *, workflow: Callable[[dict], dict], stand_ins: dict[str, Callable[[dict], Any]],
               slack_secret: dict) -> None:
        """Create the template's buckets, functions, pipeline and workflow state machine (its
        definition passed through ``workflow`` first), the ``stand_ins`` as functions of their
        own, and the Slack secret the notify function reads."""
        s3 = boto3.client("s3")
        for logical in resources(self.template, "AWS::S3::Bucket"):
            s3.create_bucket(Bucket=self.resolve({"Ref": logical}))
            s3.put_bucket_versioning(Bucket=self.resolve({"Ref": logical}),
                                     VersioningConfiguration={"Status": "Enabled"})
        iam = boto3.client("iam")
        role = iam.create_role(RoleName="lambda", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
        lam = boto3.client("lambda")
        self.stand_ins = stand_ins
        for name in [*(logical.lower() for logical in self.functions), *stand_ins]:
            lam.create_function(FunctionName=name, Runtime="python3.12", Role=role, Handler="handler.handler",
                                Code={"ZipFile": b"PK\x05\x06" + b"\x00" * 18})
        sagemaker = boto3.client("sagemaker")
        for pipeline in resources(self.template, "AWS::SageMaker::Pipeline").values():
            props = pipeline["Properties"]
            sagemaker.create_pipeline(
                PipelineName=props["PipelineName"], RoleArn=flatten(props["RoleArn"], self.resolve),
                PipelineDefinition=self.resolve(props["PipelineDefinition"]["PipelineDefinitionBody"]))
        logical = self.logical("AWS::StepFunctions::StateMachine", "Workflow")
        machine = self.template["Resources"][logical]["Properties"]
        definition = json.loads(flatten(machine["DefinitionString"], self.resolve))
        created = boto3.client("stepfunctions").create_state_machine(
            name=logical, definition=json.dumps(workflow(definition)),
            roleArn=flatten(machine["RoleArn"], self.resolve))
        assert created["stateMachineArn"] == self.resolve({"Ref": logical})
        notify = self.environments[self.function("notify")]
        boto3.client("secretsmanager").create_secret(Name=notify["LTV_SLACK_SECRET_NAME"],
                                                     SecretString=json.dumps(slack_secret))

    # ------------------------------------------------------------------ Lambda
    def invoke(self, logical: str, event: dict) -> Any:
        """What Lambda does with ``event``: the function's handler, in its environment."""
        with self._lock:
            saved = {key: os.environ.get(key) for key in self.environments[logical]}
            os.environ.update(self.environments[logical])
            try:
                return load_handler(self.handlers[logical]).handler(event, lambda_context(logical.lower()))
            finally:
                for key, value in saved.items():
                    if value is None:
                        os.environ.pop(key, None)
                    else:
                        os.environ[key] = value

    def _invoke_patch(self) -> Callable[..., bytes]:
        by_name = {logical.lower(): logical for logical in self.functions}
        cloud = self

        def invoke(backend, function_name, qualifier, body, headers, response_headers):
            name = function_name.rsplit(":", 1)[-1]
            event = json.loads(body or b"{}")
            try:
                if name in cloud.stand_ins:
                    result = cloud.stand_ins[name](event)
                else:
                    result = cloud.invoke(by_name[name], event)
            except Exception as error:  # reported the way Lambda reports an unhandled error
                response_headers["x-amz-function-error"] = "Unhandled"
                return json.dumps({"errorType": type(error).__name__, "errorMessage": str(error)}).encode()
            return json.dumps(result).encode()

        return invoke

    def _forget_clients(self) -> None:
        """Clients made before this server (cached per container) must not be reused."""
        for name in set(self.handlers.values()):
            module = load_handler(name)
            for attribute in vars(module).values():
                if callable(getattr(attribute, "cache_clear", None)) and \
                        getattr(attribute, "__module__", "") == module.__name__:
                    attribute.cache_clear()
        parameters.clear_caches()
        ltvcore.api._app = None  # the API's cold start happens on this server

    def _moto_config(self, config: dict) -> None:
        request = urllib.request.Request(f"{self.endpoint}/moto-api/config", data=json.dumps(config).encode(),
                                         method="POST", headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as response:
            response.read()

    def close(self) -> None:
        with urllib.request.urlopen(urllib.request.Request(f"{self.endpoint}/moto-api/reset", method="POST"),
                                    timeout=10) as response:
            response.read()
        self._moto_config({"stepfunctions": {"execute_state_machine": False}, "lambda": {"use_docker": True}})
        self._forget_clients()
        self.server.stop()


class JobFailed(RuntimeError):
    """A processing job's instance exited non-zero; the message is what SageMaker would show."""


class LocalSageMaker:
    """Processing jobs as local processes on the moto bucket (see the module docstring)."""

    def __init__(self, workdir: Path, environment: dict[str, str]) -> None:
        self.workdir = workdir
        self.environment = environment  # the process environment SageMaker's container starts with
        self.jobs: list[dict] = []  # every job request run, with its name

    def run_pipeline(self, definition: dict, parameters: dict[str, str]) -> list[str]:
        """Every step of ``definition`` in order; returns the steps' names."""
        values = {p["Name"]: p.get("DefaultValue") for p in definition["Parameters"]} | parameters
        outputs: dict[tuple[str, str], str] = {}
        names = []
        for step in definition["Steps"]:
            assert step["Type"] == "Processing", step["Type"]
            request = _evaluate(step["Arguments"], values, outputs)
            self.run_job(f"pipelines-{step['Name'].lower()}", request)
            for output in request["ProcessingOutputConfig"]["Outputs"]:
                outputs[(step["Name"], output["OutputName"])] = output["S3Output"]["S3Uri"]
            names.append(step["Name"])
        return names

    def run_job(self, name: str, request: dict) -> None:
        s3 = boto3.client("s3")
        count = request["ProcessingResources"]["ClusterConfig"]["InstanceCount"]
        self.jobs.append({"name": name, **request})
        for index in range(count):
            root = self.workdir / f"{len(self.jobs):02d}-{name}" / f"instance-{index}"
            for entry in request.get("ProcessingInputs", []):
                _download(s3, entry["S3Input"], root, index, count)
            app = request["AppSpecification"]
            command = [sys.executable if part == "python3" else part for part in app["ContainerEntrypoint"]]
            message = root / "message"
            done = subprocess.run(
                [*command, *app.get("ContainerArguments", [])], cwd=root, capture_output=True, text=True,
                timeout=180, env={**self.environment, **request.get("Environment", {}),
                                  "LTV_PROCESSING_ROOT": str(root), "LTV_JOB_MESSAGE_FILE": str(message)})
            if done.returncode != 0:
                reason = message.read_text() if message.exists() else done.stderr[-2000:]
                raise JobFailed(f"{name} instance {index} exited {done.returncode}: {reason}")
            for output in request.get("ProcessingOutputConfig", {}).get("Outputs", []):
                _upload(s3, output["S3Output"], root)


def _evaluate(value: Any, parameters: dict[str, Any], outputs: dict[tuple[str, str], str]) -> Any:
    """A pipeline definition's expressions (``Get``, ``Std:Join``) as their values."""
    if isinstance(value, list):
        return [_evaluate(item, parameters, outputs) for item in value]
    if not isinstance(value, dict):
        return value
    if set(value) == {"Get"}:
        path = value["Get"]
        if path.startswith("Parameters."):
            return parameters[path.removeprefix("Parameters.")]
        step_output = re.fullmatch(r"Steps\.(\w+)\.ProcessingOutputConfig\.Outputs\['(\w+)'\]\.S3Output\.S3Uri", path)
        assert step_output, f"unsupported expression {path}"
        return outputs[(step_output[1], step_output[2])]  # a KeyError: a step ran before its input's
    if set(value) == {"Std:Join"}:
        join = value["Std:Join"]
        return join["On"].join(str(_evaluate(item, parameters, outputs)) for item in join["Values"])
    return {key: _evaluate(item, parameters, outputs) for key, item in value.items()}


def _local(root: Path, container_path: str) -> Path:
    prefix = paths.CONTAINER_ROOT + "/"
    assert container_path.startswith(prefix), container_path
    return root / container_path.removeprefix(prefix)


def _split(uri: str) -> tuple[str, str]:
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    return bucket, key


def _download(s3: Any, spec: dict, root: Path, index: int, count: int) -> None:
    """What SageMaker copies to an instance before the job starts (``File`` mode)."""
    assert spec.get("S3InputMode", "File") == "File" and spec.get("S3CompressionType", "None") == "None"
    bucket, key = _split(spec["S3Uri"])
    if spec["S3DataType"] == "ManifestFile":  # [{"prefix": …}, relative key, …]
        manifest = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
        source_bucket, base = _split(manifest[0]["prefix"])
        objects = [(source_bucket, base + relative, relative) for relative in manifest[1:]]
    else:
        assert spec["S3DataType"] == "S3Prefix", spec
        listed = [entry["Key"] for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=key)
                  for entry in page.get("Contents", [])]
        objects = [(bucket, found, found[len(key):].lstrip("/") or found.rsplit("/", 1)[-1])
                   for found in sorted(listed)]
    if spec["S3DataDistributionType"] == "ShardedByS3Key":
        objects = objects[index::count]
    assert objects, f"no objects for {spec['S3Uri']}"  # SageMaker fails such a job too
    target = _local(root, spec["LocalPath"])
    for source_bucket, source_key, relative in objects:
        path = target / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(s3.get_object(Bucket=source_bucket, Key=source_key)["Body"].read())


def _upload(s3: Any, spec: dict, root: Path) -> None:
    """What SageMaker uploads when the job ends (``EndOfJob``)."""
    assert spec["S3UploadMode"] == "EndOfJob"
    bucket, key = _split(spec["S3Uri"])
    folder = _local(root, spec["LocalPath"])
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        s3.put_object(Bucket=bucket, Key=f"{key.rstrip('/')}/{path.relative_to(folder).as_posix()}",
                      Body=path.read_bytes())


def api_event(method: str, path: str, *, resource: str, body: Any = None,
              path_parameters: dict[str, str] | None = None, email: str = "ana@example.com") -> dict:
    """A REST API (v1) proxy event as API Gateway sends it for a signed-in person's request
    (the sign-in's authoriser context carries the verified e-mail)."""
    domain = "abc123.execute-api.us-east-1.amazonaws.com"
    headers = {"Host": domain, "Accept": "application/json", "Content-Type": "application/json",
               "X-Forwarded-Proto": "https"}
    return {
        "resource": resource, "path": path, "httpMethod": method, "headers": headers,
        "multiValueHeaders": {k: [v] for k, v in headers.items()},
        "queryStringParameters": None, "multiValueQueryStringParameters": None,
        "pathParameters": path_parameters, "stageVariables": None,
        "requestContext": {
            "resourceId": "r1", "resourcePath": resource, "httpMethod": method, "path": f"/v1{path}",
            "stage": "v1", "domainName": domain, "apiId": "abc123", "accountId": ACCOUNT,
            "requestId": "c6af9ac6-7b61-11e6-9a41-93e8deadbeef", "protocol": "HTTP/1.1",
            "identity": {"sourceIp": "10.0.0.1", "userArn": None, "caller": None},
            "authorizer": {"principalId": "ana", "username": "ana", "email": email, "sub": "5b1c"},
        },
        "body": None if body is None else json.dumps(body), "isBase64Encoded": False,
    }
