"""Options and helpers shared by command groups."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Annotated, Any

import typer

from strongroom.cli.client import CLIError, Client

StateDirOpt = Annotated[
    Path | None,
    typer.Option("--state-dir", envvar="STRONGROOM_STATE_DIR", help="State dir holding admin.json (default ./.strongroom)."),
]
ServerOpt = Annotated[
    str | None, typer.Option("--server", envvar="STRONGROOM_SERVER", help="Server URL, e.g. https://localhost:8443.")
]
TagsOpt = Annotated[
    list[str] | None, typer.Option("--tags", help="Space-separated tags: key[=value] [key[=value] ...].")
]


def client(state_dir: Path | None, server: str | None) -> Client:
    return Client(state_dir, server)


def parse_tags(tags: list[str] | None) -> dict[str, str] | None:
    if tags is None:
        return None
    out: dict[str, str] = {}
    for t in tags:
        if t == "":  # `--tags ""` clears tags, as in az
            continue
        k, _, v = t.partition("=")
        out[k] = v
    return out


def parse_time(value: str | None, flag: str) -> int | None:
    """az accepts ISO 8601 (`2026-12-31T00:00:00Z`); Key Vault stores Unix seconds."""
    if value is None:
        return None
    try:
        dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise CLIError(f"{flag}: '{value}' is not an ISO 8601 date-time, e.g. 2026-12-31T00:00:00Z", "InvalidArgumentValue") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return int(dt.timestamp())


def iso(ts: Any) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(int(ts), timezone.utc).isoformat()
