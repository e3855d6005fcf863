"""Output: a Rich table for people, JSON for scripts, SARIF 2.1.0 for code scanning."""

from __future__ import annotations

import json
from typing import Any

from strongroom.lint.findings import PRACTICES, RULES, Finding

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"


def to_json(findings: list[Finding]) -> str:
    active = [f for f in findings if not f.suppressed_by]
    return json.dumps({
        "findings": [f.to_json() for f in active],
        "suppressed": [f.to_json() for f in findings if f.suppressed_by],
        "summary": {s: sum(1 for f in active if f.severity == s) for s in ("error", "warning", "note")},
    }, indent=2) + "\n"


def to_sarif(findings: list[Finding], version: str) -> str:
    rules = sorted(RULES.values(), key=lambda r: r.id)
    index = {r.id: i for i, r in enumerate(rules)}
    results: list[dict[str, Any]] = []
    for f in findings:
        result: dict[str, Any] = {
            "ruleId": f.rule_id,
            "ruleIndex": index[f.rule_id],
            "level": f.severity.value,  # type: ignore[union-attr]
            "message": {"text": f.message + (f"\nFix: {f.fix}" if f.fix else "")},
            "locations": [{"physicalLocation": {
                "artifactLocation": {"uri": f.file, "uriBaseId": "%SRCROOT%"},
                "region": {"startLine": max(1, f.line)},
            }}],
            "partialFingerprints": {"strongroomLint/v1": f.fingerprint()},
            "properties": {"practice": f.practice},
        }
        if f.fix:
            result["properties"]["fixCommand"] = f.fix
        if f.suppressed_by:
            result["suppressions"] = [{"kind": "external" if f.suppressed_by == "baseline" else "inSource",
                                       "justification": f.suppressed_by}]
        results.append(result)
    log = {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "strongroom-lint",
                "version": version,
                "rules": [{
                    "id": r.id,
                    "name": "".join(w.capitalize() for w in r.title.replace("(", " ").replace(")", " ").split()
                                    if w.isalnum()),
                    "shortDescription": {"text": r.title},
                    "fullDescription": {"text": r.help},
                    "help": {"text": r.help},
                    "defaultConfiguration": {"level": r.severity.value},
                    "properties": {"practice": r.practice, "practiceName": PRACTICES[r.practice],
                                   "tags": ["security", "kubernetes", "key-vault"], "needsServer": r.needs_server},
                } for r in rules],
            }},
            "results": results,
        }],
    }
    return json.dumps(log, indent=2) + "\n"


def print_table(findings: list[Finding], console: Any) -> None:
    from rich.markup import escape
    from rich.table import Table

    active = [f for f in findings if not f.suppressed_by]
    if not active:
        console.print(f"No findings ({len(findings)} suppressed)." if findings else "No findings.")
        return
    table = Table(show_lines=True)
    for col in ("Rule", "Practice", "Severity", "Location", "Message"):
        table.add_column(col, overflow="fold")
    styles = {"error": "red", "warning": "yellow", "note": "cyan"}
    for f in active:
        sev = f.severity.value  # type: ignore[union-attr]
        msg = escape(f.message) + (f"\n[bold]Fix:[/bold] {escape(f.fix)}" if f.fix else "")
        table.add_row(f.rule_id, f"{f.practice} {PRACTICES[f.practice]}", f"[{styles[sev]}]{sev}[/]",
                      escape(f"{f.file}:{f.line}"), msg)
    console.print(table)
    counts = {s: sum(1 for f in active if f.severity == s) for s in ("error", "warning", "note")}
    suppressed = len(findings) - len(active)
    parts = [f"{n} {word}{'' if n == 1 else 's'}" for word, n in
             (("error", counts["error"]), ("warning", counts["warning"]), ("note", counts["note"]))]
    console.print(", ".join(parts) + (f", {suppressed} suppressed" if suppressed else ""))
