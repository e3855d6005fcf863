"""One lint run: load, build the relations, run the rules, apply suppressions."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from strongroom.lint import graph as graph_mod
from strongroom.lint import manifests, server_checks, suppress
from strongroom.lint.findings import Finding, Severity
from strongroom.lint.rules import Options, gitops, rotation, sync, workload_identity

OFFLINE_RULES = (workload_identity.check, rotation.check, gitops.check, sync.check)


@dataclass
class Result:
    findings: list[Finding] = field(default_factory=list)
    files: int = 0
    documents: int = 0
    notes: list[str] = field(default_factory=list)  # checks that could not run, for stderr


def run(
    paths: list[Path],
    options: Options | None = None,
    *,
    base: Path | None = None,
    backend: server_checks.Backend | None = None,
    last_used: Callable[[str], str | None] | None = None,
    baseline: set[str] | None = None,
    use_kustomize: bool = True,
) -> Result:
    options = options or Options()
    loaded = manifests.load(paths, base, use_kustomize)
    g = graph_mod.build(loaded.docs)
    findings = list(loaded.findings)
    for check in OFFLINE_RULES:
        findings.extend(check(g, options))
    findings.extend(gitops.check_strings(loaded.raw_docs))
    if backend is not None:
        notes: list[str] = []
        try:
            findings.extend(server_checks.least_privilege(g, backend, options, last_used))
        except server_checks.Refused as exc:  # a caller without control-plane read rights
            notes.append(f"least privilege (SR201-SR203) not checked: {exc}")
        findings.extend(server_checks.live_values(loaded.raw_docs, g, backend))
    table, problems = suppress.inline(loaded.texts)
    findings.extend(problems)
    suppress.apply_inline(findings, table)
    if baseline:
        suppress.apply_baseline(findings, baseline)
    findings.sort(key=lambda f: (f.file, f.line, f.rule_id))
    return Result(dedupe(findings), len(loaded.texts), len(loaded.raw_docs),
                  loaded.notes + (notes if backend is not None else []))


def dedupe(findings: list[Finding]) -> list[Finding]:
    """One finding per rule and source line: a Kustomize base rendered on its own and inside each overlay
    points at the same line several times. Server findings differ by what they are about (one per assignment)."""
    seen: set[tuple] = set()
    out = []
    for f in findings:
        key = (f.rule_id, f.file, f.line) + ((f.subject,) if f.rule.needs_server else ())
        if key not in seen:
            seen.add(key)
            out.append(f)
    return out


def failing(findings: list[Finding], fail_on: str) -> bool:
    """Exit 1? `fail_on` is error, warning or never."""
    if fail_on == "never":
        return False
    threshold = Severity(fail_on).rank
    return any(f.severity.rank >= threshold for f in findings if not f.suppressed_by)  # type: ignore[union-attr]
