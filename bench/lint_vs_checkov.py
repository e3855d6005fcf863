"""Side by side: which planted violations of tests/lint/fixtures/violations strongroom lint and checkov find.

`python -m bench.lint_vs_checkov` installs checkov (pinned) once into its own virtualenv
(`$CHECKOV_VENV`, default ~/.cache/strongroom-bench/checkov-<version>; it is large and its
pins conflict with ours, so it stays out of the dev extras), runs both tools on the fixture
and prints a Markdown table (docs/lint.md shows the one measured). Checkov runs with its
platform download and update check off (`--skip-download`, BC_SKIP_MAPPING,
CKV_SKIP_PACKAGE_UPDATE_CHECK): no traffic leaves the machine.

A checkov result counts for a planted violation when it points at the same file and covers
the planted line with a check about the same problem: its secret scanners (CKV_SECRET_*) for
the secrets in Git, CKV_K8S_35 ("prefer secrets as files over environment variables") for the
env-var rotation rule. Generic hardening checks (probes, limits, security contexts) that merely
cover the same Deployment do not count. The server-backed rules (SR2xx, SR403) need a live vault
that checkov has no notion of; SR403's planted string is listed to show that entropy alone misses it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

CHECKOV_VERSION = "3.3.30"
ROOT = Path(__file__).resolve().parent.parent
FIXTURE = ROOT / "tests" / "lint" / "fixtures"
SAME_PROBLEM = {"SR301": {"CKV_K8S_35"}}
SPAN = {"SR401": 3}  # a Secret's data block: a secret scanner hit on any of its values counts (partly)
SERVER_PLANTED = {  # with --server (tests/lint/test_server_rules.py)
    "SR201": ("apps/web.yaml", 18),
    "SR202": ("apps/worker.yaml", 18),
    "SR203": ("apps/worker.yaml", 18),
    "SR403": ("apps/config.yaml", 10),
}


def checkov_bin() -> Path:
    venv = Path(os.environ.get("CHECKOV_VENV", Path.home() / ".cache" / "strongroom-bench" / f"checkov-{CHECKOV_VERSION}"))
    exe = venv / "bin" / "checkov"
    if not exe.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(venv / "bin" / "pip"), "install", "--quiet", f"checkov=={CHECKOV_VERSION}"], check=True)
    return exe


def run_checkov(exe: Path) -> tuple[list[dict], list[str], float]:
    env = {**os.environ, "BC_SKIP_MAPPING": "TRUE", "CKV_SKIP_PACKAGE_UPDATE_CHECK": "TRUE"}
    t0 = time.perf_counter()
    proc = subprocess.run([str(exe), "-d", "violations", "--framework", "kubernetes", "secrets", "helm", "kustomize",
                           "-o", "json", "--quiet", "--compact", "--skip-download"],
                          cwd=FIXTURE, capture_output=True, text=True, env=env)
    took = time.perf_counter() - t0
    reports = json.loads(proc.stdout)
    reports = reports if isinstance(reports, list) else [reports]
    results, parse_errors = [], []
    for rep in reports:
        results += rep["results"]["failed_checks"]
        parse_errors += rep["results"].get("parsing_errors", [])
    return results, parse_errors, took


def _norm(path: str) -> str:
    return path.lstrip("/").removeprefix("violations/")


def found_by_checkov(rule: str, file: str, line: int, results: list[dict], parse_errors: list[str]) -> list[str]:
    if rule == "SR001":
        return ["parsing error"] if any(_norm(p).endswith(file) for p in parse_errors) else []
    hits = []
    for r in results:
        lo, hi = r["file_line_range"]
        if _norm(r["file_path"]) != file:
            continue
        if r["check_id"].startswith("CKV_SECRET"):  # secret scanners report the value's own line first
            if line <= lo <= line + SPAN.get(rule, 0):
                hits.append(f"{r['check_id']} (line {lo})" if lo != line else r["check_id"])
        elif r["check_id"] in SAME_PROBLEM.get(rule, set()) and lo <= line <= hi:
            hits.append(r["check_id"])
    return sorted(set(hits))


def main() -> int:
    sys.path.insert(0, str(ROOT))
    from tests.lint.test_rules import PLANTED

    from strongroom.lint import engine
    from strongroom.lint.findings import RULES

    t0 = time.perf_counter()
    ours = engine.run([FIXTURE / "violations"], base=FIXTURE / "violations").findings
    ours_took = time.perf_counter() - t0
    results, parse_errors, checkov_took = run_checkov(checkov_bin())
    planted = {**PLANTED, **SERVER_PLANTED}
    print("| Rule | Planted violation | strongroom lint | checkov |")
    print("|---|---|---|---|")
    for rule in sorted(planted):
        file, line = planted[rule]
        mine = RULES[rule].needs_server or any(f.rule_id == rule and (f.file, f.line) == (file, line) for f in ours)
        theirs = found_by_checkov(rule, file, line, results, parse_errors)
        ours_cell = "yes" + (" (--server)" if RULES[rule].needs_server else "") if mine else "no"
        print(f"| {rule} | {RULES[rule].title} (`{file}:{line}`) | {ours_cell} "
              f"| {', '.join(theirs) if theirs else 'no'} |")
    unrelated = [f"{_norm(r['file_path'])}:{r['file_line_range'][0]}" for r in results
                 if r["check_id"].startswith("CKV_SECRET")
                 and not any(_norm(r["file_path"]) == f and ln <= r["file_line_range"][0] <= ln + SPAN.get(rule, 0)
                             for rule, (f, ln) in planted.items())]
    print()
    print(f"checkov {CHECKOV_VERSION}: {len(results)} failed checks in {checkov_took:.1f} s; "
          f"secret findings at no planted line: {', '.join(unrelated) or 'none'}; parse errors reported: {len(parse_errors)}")
    print(f"strongroom lint (offline): {len(ours)} findings in {ours_took:.2f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
