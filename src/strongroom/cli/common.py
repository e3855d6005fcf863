"""Options and helpers shared by command groups."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

import typer

from strongroom.cli.client import Client, CLIError

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


# az's three-state flags: `--disabled`, `--disabled true` and `--disabled false` all parse.
THREE_STATE_FLAGS = {"--disabled", "--enabled", "--enable-rbac-authorization", "--enable-purge-protection"}
_BOOL_WORDS = {"true": True, "false": False}


def three_state_option(flag: str, help: str) -> Any:
    """An option taking `true|false` (as az's), for `Annotated[str | None, three_state_option(...)]`: `str` typed
    so click does not treat it as a bare flag (and spelled out, so type checkers see the parameter's type)."""
    return typer.Option(flag, help=f"{help} true or false.", metavar="{false,true}")


def complete_three_state_flags(argv: list[str]) -> list[str]:
    """Give a bare three-state flag its implied `true`, as az does (`--disabled` = `--disabled true`)."""
    out: list[str] = []
    for i, arg in enumerate(argv):
        if arg == "--":
            return out + argv[i:]
        out.append(arg)
        if arg in THREE_STATE_FLAGS:
            nxt = argv[i + 1] if i + 1 < len(argv) else None
            if nxt is None or nxt.startswith("-"):
                out.append("true")
    return out


def three_state(value: str | None, flag: str) -> bool | None:
    if value is None:
        return None
    try:
        return _BOOL_WORDS[value.lower()]
    except KeyError:
        raise CLIError(f"argument {flag}: invalid choice: '{value}' (choose from 'false', 'true')", "InvalidArgumentValue") from None


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
        dt = dt.replace(tzinfo=UTC)
    return int(dt.timestamp())


def iso(ts: Any) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(int(ts), UTC).isoformat()


def object_target(
    collection: str, vault_name: str | None, name: str | None, ident: str | None, version: str | None = None
) -> tuple[str, str, str]:
    """(vault, name, version) from --vault-name/--name/--version or --id, as az resolves them.

    `collection` is the path segment of the object kind: secrets, keys or certificates.
    """
    if ident:
        parts = urlsplit(ident)
        segs = [s for s in parts.path.split("/") if s]
        if len(segs) < 2 or segs[0] not in (collection, f"deleted{collection}"):
            raise CLIError(f"--id '{ident}' is not a {collection[:-1]} id", "InvalidArgumentValue")
        return parts.hostname.split(".")[0] if parts.hostname else "", segs[1], segs[2] if len(segs) > 2 else ""
    if not vault_name or not name:
        raise CLIError("usage error: --id | --vault-name VAULT --name NAME", "InvalidArgumentValue")
    return vault_name, name, version or ""
