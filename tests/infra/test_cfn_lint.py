"""cfn-lint on the synthesised template: no error, and no warning but W3005 (CDK's explicit
DependsOn on a role's policy next to a GetAtt of the role, which is how CDK orders them).

cfn-lint is not one of the project's pinned test dependencies: without it this module is skipped
(``pip install cfn-lint==1.58.0`` to run it)."""

from __future__ import annotations

import json

import pytest

from tests.infra.support import synth

cfnlint_api = pytest.importorskip("cfnlint.api")


def test_template_passes_cfn_lint(tmp_path):
    stack, _template = synth(tmp_path)
    path = tmp_path / f"{stack.stack_name}.template.json"
    assert json.loads(path.read_text())["Resources"]
    matches = cfnlint_api.lint_file(path, cfnlint_api.ManualArgs(regions=["us-east-1", "eu-west-1"]))
    found = sorted({(m.rule.id, m.message.split(" at ")[0][:120]) for m in matches if m.rule.id != "W3005"})
    assert found == []
