"""Each offline rule: found once, at its line, in the violations fixture (positive), absent from its clean twin (negative).

Plus the input handling the rules rely on: multi-document YAML, Kustomize rendering traced back to the
source file, Helm values, unknown kinds, broken YAML (a finding, never a traceback), suppressions, baselines.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from strongroom.lint import engine, manifests, suppress
from strongroom.lint.findings import RULES
from strongroom.lint.rules import Options

FIXTURES = Path(__file__).parent / "fixtures"
needs_kubectl = pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl renders Kustomize roots; not on PATH")

# rule -> (file, line) planted in fixtures/violations (lines are the field the user must change)
PLANTED = {
    "SR001": ("broken.yaml", 7),
    "SR002": ("broken-kustomize/kustomization.yaml", 1),
    "SR003": ("apps/config.yaml", 11),
    "SR101": ("apps/legacy-identities.yaml", 10),
    "SR102": ("apps/legacy-identities.yaml", 26),
    "SR103": ("apps/legacy-identities.yaml", 59),
    "SR104": ("apps/web.yaml", 54),
    "SR105": ("apps/web.yaml", 6),
    "SR106": ("apps/worker.yaml", 8),
    "SR301": ("apps/web.yaml", 62),
    "SR302": ("helm/csi-driver-values.yaml", 6),
    "SR303": ("helm/driver-values.yaml", 3),
    "SR401": ("apps/secret.yaml", 8),
    "SR402": ("apps/config.yaml", 9),
    "SR501": ("apps/web.yaml", 32),
    "SR502": ("apps/web.yaml", 37),
}
OFFLINE = sorted(r.id for r in RULES.values() if not r.needs_server)


def lint(name: str, **kw) -> list:
    root = FIXTURES / name
    return engine.run([root], base=root, **kw).findings


@pytest.fixture(scope="module")
def violations() -> list:
    return lint("violations")


@pytest.fixture(scope="module")
def clean() -> list:
    return lint("clean")


def test_every_offline_rule_is_planted():
    assert sorted(PLANTED) == OFFLINE


@pytest.mark.parametrize("rule", OFFLINE)
def test_rule_positive(violations, rule):
    if rule == "SR002" and shutil.which("kubectl") is None:
        pytest.skip("SR002 is a kubectl kustomize failure; kubectl is not on PATH")
    hits = [(f.file, f.line) for f in violations if f.rule_id == rule and not f.suppressed_by]
    assert hits == [PLANTED[rule]]
    f = next(f for f in violations if f.rule_id == rule)
    assert f.message and f.practice == RULES[rule].practice


@pytest.mark.parametrize("rule", OFFLINE)
def test_rule_negative(clean, rule):
    assert [f for f in clean if f.rule_id == rule] == []


def test_twins_side_by_side_do_not_mix(violations):
    """One repository, two environments with the same names: each workload is judged with its own neighbours."""
    both = engine.run([FIXTURES], base=FIXTURES).findings
    assert sorted((f.rule_id, f.file, f.line) for f in both) == sorted(
        (f.rule_id, f"violations/{f.file}", f.line) for f in violations)


def test_findings_never_echo_the_secret_like_strings(violations):
    text = json.dumps([f.to_json() for f in violations])
    assert "ghp_4Qm7Zx2Lk9Rt5Vw1Yb8Nc3Hd6Jf0Gs2PaE1o" not in text
    assert "not-a-real-password" not in text


@needs_kubectl
def test_kustomize_render_is_traced_to_the_source_file(tmp_path):
    """A patch adds the CSI mount; the finding (rendered object) names the source file and line."""
    base = tmp_path / "k"
    base.mkdir()
    (base / "kustomization.yaml").write_text(
        "namespace: shop\nnamePrefix: prod-\nresources:\n  - spc.yaml\n  - app.yaml\n"
        "patches:\n  - path: mount.yaml\n    target:\n      kind: Deployment\n")
    (base / "spc.yaml").write_text(
        "apiVersion: secrets-store.csi.x-k8s.io/v1\nkind: SecretProviderClass\nmetadata:\n  name: cart\nspec:\n"
        "  provider: azure\n  parameters:\n    clientID: \"11111111-1111-1111-1111-111111111111\"\n"
        "    keyvaultName: kv1\n    usePodIdentity: \"true\"\n")
    (base / "app.yaml").write_text(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: cart\nspec:\n  template:\n    metadata:\n"
        "      labels:\n        app: cart\n    spec:\n      containers:\n        - name: c\n          image: x\n")
    (base / "mount.yaml").write_text(
        "- op: add\n  path: /spec/template/spec/volumes\n  value:\n    - name: s\n      csi:\n"
        "        driver: secrets-store.csi.k8s.io\n        volumeAttributes:\n          secretProviderClass: prod-cart\n")
    found = engine.run([tmp_path], base=tmp_path).findings
    by_rule = {f.rule_id: f for f in found}
    # only visible after rendering: the patch adds the mount, the prefix renames the SPC it names
    assert by_rule["SR104"].file == "k/app.yaml" and by_rule["SR104"].line == 8
    assert by_rule["SR101"].file == "k/spc.yaml" and by_rule["SR101"].line == 10
    assert [f.rule_id for f in found].count("SR101") == 1  # rendered, not linted twice
    without = {f.rule_id for f in engine.run([tmp_path], base=tmp_path, use_kustomize=False).findings}
    assert "SR104" not in without  # file by file, the patch's mount is invisible


@needs_kubectl
def test_base_and_overlays_report_a_base_line_once(tmp_path):
    base = tmp_path / "base"
    base.mkdir()
    (base / "kustomization.yaml").write_text("resources:\n  - secret.yaml\n")
    (base / "secret.yaml").write_text("apiVersion: v1\nkind: Secret\nmetadata:\n  name: s\ndata:\n  k: dmFsdWU=\n")
    for name in ("dev", "prod"):
        o = tmp_path / "overlays" / name
        o.mkdir(parents=True)
        (o / "kustomization.yaml").write_text(f"namePrefix: {name}-\nresources:\n  - ../../base\n")
    found = engine.run([tmp_path], base=tmp_path).findings
    assert [(f.rule_id, f.file, f.line) for f in found] == [("SR401", "base/secret.yaml", 5)]


def test_unknown_kinds_and_non_yaml_files_are_skipped(tmp_path):
    (tmp_path / "crd.yaml").write_text("apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: w\nspec:\n  x: 1\n")
    (tmp_path / "notes.txt").write_text("password: hunter2hunter2hunter2\n")
    (tmp_path / "list.yaml").write_text("- 1\n- 2\n---\n\"just a string\"\n---\n")
    assert engine.run([tmp_path], base=tmp_path).findings == []


def test_multi_document_lines(tmp_path):
    docs = "\n---\n".join(
        f"apiVersion: v1\nkind: Secret\nmetadata:\n  name: s{i}\ndata:\n  k: dmFsdWU=" for i in range(3))
    (tmp_path / "m.yaml").write_text(docs)
    found = engine.run([tmp_path], base=tmp_path).findings
    assert [(f.rule_id, f.line) for f in found] == [("SR401", 5), ("SR401", 12), ("SR401", 19)]


def test_chart_templates_are_not_parsed_but_values_are(tmp_path):
    chart = tmp_path / "chart"
    (chart / "templates").mkdir(parents=True)
    (chart / "Chart.yaml").write_text("apiVersion: v2\nname: c\nversion: 0.1.0\n")
    (chart / "templates" / "d.yaml").write_text("{{- if .Values.x }}\nkind: {{ .Values.kind }}\n{{- end }}\n")
    (chart / "values.yaml").write_text("secrets-store-csi-driver:\n  enableSecretRotation: false\n")
    found = engine.run([tmp_path], base=tmp_path).findings
    assert [(f.rule_id, f.file) for f in found] == [("SR302", "chart/values.yaml")]


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300))
def test_any_text_is_a_finding_or_nothing_never_a_traceback(text):
    docs, problems = manifests.parse_text(text, "x.yaml")
    assert all(p.rule_id == "SR001" and p.line >= 1 for p in problems)


def test_hostile_files_are_findings_not_hangs(tmp_path):
    """A repository under review may be hostile: alias bombs, deep nesting and huge files are bounded."""
    bomb = "a: &a [x,x,x,x,x,x,x,x,x,x]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [{','.join(['*' + chr(97 + i)] * 10)}]\n" for i in range(8))
    (tmp_path / "bomb.yaml").write_text(bomb)
    (tmp_path / "deep.yaml").write_text("a: " + "[" * 5000 + "]" * 5000 + "\n")
    (tmp_path / "huge.yaml").write_text("a: b\n" * (manifests.MAX_FILE_BYTES // 5 + 1))
    found = {f.file: f for f in engine.run([tmp_path], base=tmp_path).findings}
    assert {name: f.rule_id for name, f in found.items()} == {"bomb.yaml": "SR001", "deep.yaml": "SR001", "huge.yaml": "SR001"}
    assert "aliases" in found["bomb.yaml"].message and "bytes" in found["huge.yaml"].message


def test_inline_suppression_needs_a_reason(tmp_path):
    body = "apiVersion: v1\nkind: Secret\nmetadata:\n  name: s\n{}data:\n  k: dmFsdWU=\n"
    (tmp_path / "a.yaml").write_text(body.format("# strongroom-lint: ignore SR401 fixture for the e2e tests\n"))
    (tmp_path / "b.yaml").write_text(body.format("# strongroom-lint: ignore SR401\n"))
    found = engine.run([tmp_path], base=tmp_path).findings
    a = [f for f in found if f.file == "a.yaml"]
    b = {f.rule_id: f for f in found if f.file == "b.yaml"}
    assert [(f.rule_id, f.suppressed_by) for f in a] == [("SR401", "fixture for the e2e tests")]
    assert b["SR401"].suppressed_by is None and b["SR003"].line == 5
    assert not engine.failing(a, "error")


def test_baseline_hides_known_findings_and_survives_line_moves(tmp_path):
    repo = tmp_path / "repo"
    shutil.copytree(FIXTURES / "violations", repo)
    before = engine.run([repo], base=repo).findings
    path = tmp_path / "baseline.json"
    path.write_text(suppress.baseline_json(before))
    web = repo / "apps" / "web.yaml"
    web.write_text("# a new comment moves every line\n" + web.read_text())
    after = engine.run([repo], base=repo, baseline=suppress.read_baseline(path)).findings
    assert all(f.suppressed_by for f in after)
    (repo / "apps" / "new.yaml").write_text("apiVersion: v1\nkind: Secret\nmetadata:\n  name: new\ndata:\n  k: dmFsdWU=\n")
    fresh = engine.run([repo], base=repo, baseline=suppress.read_baseline(path)).findings
    assert [(f.rule_id, f.file) for f in fresh if not f.suppressed_by] == [("SR401", "apps/new.yaml")]


def test_rotation_threshold_is_configurable():
    root = FIXTURES / "violations"
    found = engine.run([root / "helm"], base=root, options=Options(max_rotation_interval=2 * 86400)).findings
    assert "SR303" not in {f.rule_id for f in found}
