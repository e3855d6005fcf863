"""Progress for long CLI work, on stderr so stdout stays the command's output.

Shown only when stderr is a terminal (Rich decides; FORCE_COLOR forces it), and
transient: it leaves no trace in a terminal, and none at all in a pipe or log.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn


@contextmanager
def activity(description: str, unit: str | None = "items") -> Iterator[Callable[[int], None]]:
    """A spinner with a running count: `with activity("listing secrets") as advance: advance(25)`.

    `unit=None`: no count, for work that cannot report its steps.
    """
    console = Console(stderr=True)
    count = [TextColumn(f"{{task.completed}} {unit}")] if unit else []
    columns = (SpinnerColumn(), TextColumn("{task.description}"), *count, TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True, disable=not console.is_terminal) as progress:
        task = progress.add_task(description, total=None)

        def advance(n: int = 1) -> None:
            progress.advance(task, n)

        yield advance
