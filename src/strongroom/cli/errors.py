"""How the CLI fails: one line on stderr and a non-zero exit, never a traceback.

As az does it: an expected error (`CLIError`: a server's error, a bad flag value)
prints `ERROR: (Code) message`; anything unexpected prints `ERROR: Type: message`
on one line. `--debug` (anywhere before `--`, as az accepts it) adds the traceback.
"""

from __future__ import annotations

import sys
import traceback
from collections.abc import Callable

from strongroom.cli.client import CLIError

DEBUG_FLAG = "--debug"


def pop_debug_flag(argv: list[str]) -> tuple[list[str], bool]:
    """`argv` without `--debug`, and whether it was there; what follows `--` is left alone."""
    end = argv.index("--") if "--" in argv else len(argv)
    head = argv[:end]
    if DEBUG_FLAG not in head:
        return argv, False
    return [a for a in head if a != DEBUG_FLAG] + argv[end:], True


def one_line(text: str) -> str:
    return " ".join(text.split())


def run_cli(invoke: Callable[[list[str]], object], argv: list[str]) -> None:
    """Run `invoke(argv)`, turning every failure into one stderr line and exit status 1."""
    argv, debug = pop_debug_flag(argv)
    try:
        invoke(argv)
    except CLIError as exc:
        if debug:
            traceback.print_exc()
        code = f"({exc.code}) " if exc.code else ""
        print(f"ERROR: {code}{one_line(exc.message)}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        print("ERROR: interrupted", file=sys.stderr)
        sys.exit(130)
    except SystemExit:
        raise
    except Exception as exc:  # noqa: BLE001 - the CLI's last line of defence
        if debug:
            traceback.print_exc()
        hint = "" if debug else f" (run again with {DEBUG_FLAG} for the traceback)"
        print(f"ERROR: {type(exc).__name__}: {one_line(str(exc))}{hint}", file=sys.stderr)
        sys.exit(1)
