"""Inline suppressions (`# strongroom-lint: ignore SR401 reason`) and baseline files.

An inline comment on the finding's line or on the line above suppresses the named rules
(comma-separated) for that line; a reason is required, or the comment suppresses nothing and
becomes an SR003 finding. A baseline is a JSON file of finding fingerprints (rule, file and
subject, not the line), so adopting the linter on an existing repository fails only on new findings.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from strongroom.lint.findings import Finding

_COMMENT = re.compile(r"#\s*strongroom-lint:\s*ignore\s+(SR\d{3}(?:\s*,\s*SR\d{3})*)(.*)$")
BASELINE_VERSION = 1


class BaselineError(ValueError):
    pass


def inline(texts: dict[str, str]) -> tuple[dict[tuple[str, int], dict[str, str]], list[Finding]]:
    """{(file, line): {rule: reason}} for each suppression comment (applying to its line and the next)."""
    table: dict[tuple[str, int], dict[str, str]] = {}
    problems: list[Finding] = []
    for file, text in texts.items():
        if "strongroom-lint" not in text:
            continue
        for n, line in enumerate(text.splitlines(), 1):
            m = _COMMENT.search(line)
            if not m:
                continue
            rules = [r.strip() for r in m.group(1).split(",")]
            reason = m.group(2).strip(" -:—")
            if not reason:
                problems.append(Finding("SR003", file, n, f"`strongroom-lint: ignore {', '.join(rules)}` has no reason: "
                                        "it suppresses nothing until it says why the finding does not apply.",
                                        subject=f"suppress#{','.join(rules)}#{n}"))
                continue
            for at in (n, n + 1):
                table.setdefault((file, at), {}).update({r: reason for r in rules})
    return table, problems


def apply_inline(findings: list[Finding], table: dict[tuple[str, int], dict[str, str]]) -> None:
    for f in findings:
        reason = table.get((f.file, f.line), {}).get(f.rule_id)
        if reason:
            f.suppressed_by = reason


def read_baseline(path: Path) -> set[str]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise BaselineError(f"cannot read baseline {path}: {type(exc).__name__}") from None
    if not isinstance(data, dict) or not isinstance(data.get("findings"), list):
        raise BaselineError(f"{path} is not a strongroom-lint baseline (written by --write-baseline)")
    return {str(f.get("fingerprint")) for f in data["findings"] if isinstance(f, dict)}


def apply_baseline(findings: list[Finding], fingerprints: set[str]) -> None:
    for f in findings:
        if f.suppressed_by is None and f.fingerprint() in fingerprints:
            f.suppressed_by = "baseline"


def baseline_json(findings: list[Finding]) -> str:
    """Every finding not suppressed inline (those already in a baseline given with --baseline stay in it)."""
    items = [{"fingerprint": f.fingerprint(), "ruleId": f.rule_id, "file": f.file}
             for f in findings if f.suppressed_by in (None, "baseline")]
    return json.dumps({"version": BASELINE_VERSION, "findings": items}, indent=2) + "\n"
