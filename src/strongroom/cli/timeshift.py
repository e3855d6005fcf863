"""`strongroom admin time-shift`: move a dev-mode server's clock forward (all vaults or one)."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from strongroom.cli.client import CLIError
from strongroom.cli.common import ServerOpt, StateDirOpt, client
from strongroom.cli.output import OutputFormat, OutputOpt, QueryOpt, emit

PATH = "/strongroom/dev/time-shift"


def time_shift(
    days: Annotated[int | None, typer.Option("--days", help="Days to move forward.")] = None,
    seconds: Annotated[int | None, typer.Option("--seconds", help="Seconds to move forward.")] = None,
    vault_name: Annotated[str | None, typer.Option("--vault-name", help="Only this vault (default: all vaults).")] = None,
    reset: Annotated[bool, typer.Option("--reset", help="Back to real time.")] = False,
    state_dir: StateDirOpt = None,
    server: ServerOpt = None,
    output: OutputOpt = OutputFormat.json,
    query: QueryOpt = None,
) -> None:
    """Shift vault time forward on a `strongroom up --dev` server, so renewals and expiries happen now.

    Without --days/--seconds/--reset it shows the shifts in force.
    """
    c = client(state_dir, server)
    if reset:
        result: Any = c.cluster("DELETE", PATH)
    elif days is None and seconds is None:
        result = c.cluster("GET", PATH)
    else:
        total = (days or 0) * 86400 + (seconds or 0)
        if total <= 0:
            raise CLIError("the shift must be positive: time only moves forward", "InvalidArgumentValue")
        result = c.cluster("POST", PATH, json={"seconds": total, "vault": vault_name})
    emit(result, output, query)
