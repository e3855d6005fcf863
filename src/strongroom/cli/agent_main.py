"""`strongroom mount` and `strongroom run` without the rest of the CLI.

The agent commands are started often (a `mount --once` per pod start, from init
systems and scripts), and the full command tree imports every command group
(authorization, certificates, the admin tools, ~50 modules) and builds ~110
click commands before it parses a single flag. These two commands need none of
that, so `strongroom.cli.main` hands them to this smaller app: the same
functions, options, help and errors, about a fifth less start-up.
"""

from __future__ import annotations

import sys

import typer

from strongroom.cli.common import complete_three_state_flags
from strongroom.cli.errors import run_cli

COMMANDS = ("mount", "run")


def is_agent_command(argv: list[str]) -> bool:
    """`argv` (without the program name) runs `mount` or `run`."""
    return bool(argv) and argv[0] in COMMANDS


def agent_app() -> typer.Typer:
    from strongroom.cli.mount import mount
    from strongroom.cli.run import run

    app = typer.Typer(no_args_is_help=True, pretty_exceptions_enable=False, add_completion=False, rich_markup_mode=None)
    app.command("mount")(mount)
    app.command("run")(run)
    return app


def main(argv: list[str] | None = None) -> None:
    """As strongroom.cli.main.main does it, for `mount` and `run` only."""
    args = complete_three_state_flags(sys.argv[1:] if argv is None else argv)
    run_cli(lambda a: agent_app()(args=a, prog_name="strongroom", standalone_mode=True), args)
