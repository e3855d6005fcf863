"""`strongroom audit list|verify`: read the audit log from the state dir.

Both commands read the sinks directly (audit.jsonl and the storage), not through
the server: an audit check must not depend on the thing it checks, and it works
with the server stopped. They may run while the server serves.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from strongroom.cli.client import CLIError
from strongroom.cli.common import StateDirOpt
from strongroom.cli.output import OutputFormat, OutputOpt, QueryOpt, emit

app = typer.Typer(help="The audit log: Azure AuditEvent records, hash-chained.", no_args_is_help=True)

StorageOpt = Annotated[
    str | None, typer.Option("--storage", help="Storage URL if not the default (as given to `strongroom up`).")
]


def _open(state_dir: Path | None, storage_url: str | None):
    from strongroom.audit.table import open_audit_table
    from strongroom.settings import Settings
    from strongroom.storage import StorageError

    state = state_dir or Path(".strongroom")
    if not (state / "admin.json").exists():
        raise CLIError(f"no Strongroom state in {state}; pass --state-dir", "NotFound")
    settings = Settings(state_dir=state, storage_url=storage_url)
    url = settings.storage
    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).exists():
        raise CLIError(f"no database at {url}; pass --storage if it lives elsewhere", "NotFound")
    try:
        return state, open_audit_table(url)
    except StorageError as exc:
        raise CLIError(str(exc), "StorageUnavailable") from None


@app.command("list")
def list_records(
    vault: Annotated[str | None, typer.Option("--vault", "--vault-name", help="Only this vault's records.")] = None,
    operation: Annotated[
        str | None, typer.Option("--operation", help="operationName, e.g. SecretGet (several: comma-separated).")
    ] = None,
    caller: Annotated[str | None, typer.Option("--caller", help="Caller's object id (oid) or client id (appid).")] = None,
    result: Annotated[
        str | None, typer.Option("--result", help="resultSignature (OK, Unauthorized, Forbidden...), resultType or HTTP status.")
    ] = None,
    since: Annotated[str | None, typer.Option("--since", help="ISO 8601 time, or an age: 30m, 12h, 7d.")] = None,
    last: Annotated[int | None, typer.Option("--last", min=1, help="Only the newest N matching records.")] = None,
    state_dir: StateDirOpt = None,
    storage: StorageOpt = None,
    output: OutputOpt = OutputFormat.json,
    query: QueryOpt = None,
) -> None:
    """List AuditEvent records, oldest first (JSON; `-o table` for people)."""
    from strongroom.audit.query import BadFilter, make_filter, records, table_row

    try:
        flt = make_filter(vault, operation, caller, result, since)
    except BadFilter as exc:
        raise CLIError(str(exc), "InvalidArgumentValue") from None
    _, store = _open(state_dir, storage)
    try:
        found = records(store, flt, last)
    finally:
        store.close()
    emit([table_row(r) for r in found] if output is OutputFormat.table else found, output, query)


@app.command("verify")
def verify(state_dir: StateDirOpt = None, storage: StorageOpt = None) -> None:
    """Check the hash chain of audit.jsonl and that the table holds the same records.

    Exits non-zero and names the first altered, inserted or removed record.
    """
    from strongroom.audit.verify import verify as run_verify
    from strongroom.cli.progress import activity

    state, store = _open(state_dir, storage)
    try:
        with activity("verifying the audit hash chains", unit=None):
            report = run_verify(state, store)
    finally:
        store.close()
    sys.stdout.write(json.dumps(report.to_json(), indent=2) + "\n")
    if report.problem is not None:
        raise CLIError(report.problem.message, "AuditLogTampered")
