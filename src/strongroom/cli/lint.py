"""`strongroom lint PATH…`: the five best practices, in the manifests and (with --server) in the live system.

Exit codes: 1 when a finding at or above --fail-on remains, 0 otherwise, 2 on a usage error
(bad flag, missing path, unreadable baseline, server unreachable with --server).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from strongroom.cli.client import CLIError
from strongroom.cli.common import StateDirOpt


class LintFormat(str, Enum):
    table = "table"
    json = "json"
    sarif = "sarif"


class FailOn(str, Enum):
    error = "error"
    warning = "warning"
    never = "never"


def _usage_error(message: str) -> typer.Exit:
    typer.echo(f"ERROR: {message}", err=True)
    return typer.Exit(2)


def _last_used(state_dir: Path | None, since_days: int) -> Callable[[str], str | None] | None:
    """Last use per role assignment from the audit log in the state dir, or None if it is not readable here."""
    from strongroom.audit.query import parse_since
    from strongroom.audit.usage import last_use_by_assignment
    from strongroom.cli.audit import _open

    try:
        _, store = _open(state_dir, None)
    except CLIError:
        return None
    try:
        table = last_use_by_assignment(store, parse_since(f"{since_days}d"))
    finally:
        store.close()
    return lambda assignment_id: table.get(assignment_id.lower())


def lint(
    paths: Annotated[list[Path], typer.Argument(help="Files or directories (recursive) of Kubernetes YAML, "
                                                      "Kustomize roots and Helm values.", exists=True)],
    server: Annotated[bool, typer.Option("--server", help="Also check the live system: role assignments "
                                                          "(practice 2) and secret values committed to Git.")] = False,
    server_url: Annotated[str | None, typer.Option("--server-url", envvar="STRONGROOM_SERVER",
                                                   help="Server URL if not the state dir's.")] = None,
    state_dir: StateDirOpt = None,
    fmt: Annotated[LintFormat, typer.Option("--format", "-f", help="Output format.")] = LintFormat.table,
    output: Annotated[Path | None, typer.Option("--output", help="Write the report to FILE instead of stdout.")] = None,
    fail_on: Annotated[FailOn, typer.Option("--fail-on", help="Exit 1 on findings of this severity or worse.")] = FailOn.error,
    baseline: Annotated[Path | None, typer.Option("--baseline", help="Ignore findings recorded in this baseline file.")] = None,
    write_baseline: Annotated[Path | None, typer.Option("--write-baseline",
                                                        help="Record the current findings as the baseline and exit 0.")] = None,
    unused_days: Annotated[int, typer.Option("--unused-days", min=1, help="SR203: role assignments unused this long.")] = 90,
    max_rotation_interval: Annotated[str, typer.Option("--max-rotation-interval",
                                                       help="SR303: longest acceptable rotationPollInterval.")] = "10m",
    no_kustomize: Annotated[bool, typer.Option("--no-kustomize", help="Do not render Kustomize roots.")] = False,
) -> None:
    """Check manifests (and with --server the vault and role assignments) against the best practices."""
    from rich.console import Console

    from strongroom import __version__
    from strongroom.lint import engine, formats, suppress
    from strongroom.lint.rules import Options
    from strongroom.lint.rules.rotation import go_duration
    from strongroom.util.files import write_file_atomically

    interval = go_duration(max_rotation_interval)
    if interval is None:
        raise _usage_error(f"--max-rotation-interval: '{max_rotation_interval}' is not a duration like 2m or 1h")
    fingerprints: set[str] | None = None
    if baseline is not None:
        try:
            fingerprints = suppress.read_baseline(baseline)
        except suppress.BaselineError as exc:
            raise _usage_error(str(exc)) from None
    backend = last_used = None
    if server:
        from strongroom.cli.client import Client

        try:
            backend = Client(state_dir, server_url)
            backend.metadata()
        except CLIError as exc:
            raise _usage_error(f"--server: {exc.message}") from None
        last_used = _last_used(state_dir, unused_days)
        if last_used is None:
            typer.echo("note: the audit log is not readable from here (no state dir); SR203 (unused assignments) "
                       "is not checked", err=True)
    err = Console(stderr=True)
    try:
        with err.status("linting…", spinner="dots") if sys.stderr.isatty() else _nothing():
            result = engine.run(paths, Options(interval, unused_days), base=Path.cwd(), backend=backend,
                                last_used=last_used, baseline=fingerprints, use_kustomize=not no_kustomize)
    except CLIError as exc:
        raise _usage_error(f"--server: ({exc.code}) {exc.message}" if exc.code else exc.message) from None
    for note in result.notes:
        typer.echo(f"note: {note}", err=True)
    if write_baseline is not None:
        write_file_atomically(write_baseline, suppress.baseline_json(result.findings).encode())
        kept = sum(1 for f in result.findings if f.suppressed_by in (None, "baseline"))
        typer.echo(f"wrote {kept} findings to {write_baseline}", err=True)
        raise typer.Exit(0)
    if fmt is LintFormat.table:
        if output is not None:
            with open(output, "w", encoding="utf-8") as fh:
                formats.print_table(result.findings, Console(file=fh, width=160))
        else:
            formats.print_table(result.findings, Console())
    else:
        text = formats.to_json(result.findings) if fmt is LintFormat.json else formats.to_sarif(result.findings, __version__)
        if output is not None:
            write_file_atomically(output, text.encode())
        else:
            sys.stdout.write(text)
    raise typer.Exit(1 if engine.failing(result.findings, fail_on.value) else 0)


class _nothing:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None
