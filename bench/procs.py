"""CPU seconds and resident memory of a server's whole process tree, read from /proc.

A server is a tree: `strongroom up --workers N` is a supervisor and N worker
processes, OpenBao one process. The figures count every process of the tree, so a
multi-process server cannot look cheaper than it is.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass

_TICKS = os.sysconf("SC_CLK_TCK")
_PAGE = os.sysconf("SC_PAGE_SIZE")


def _children_map() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        # The command name may hold spaces and parentheses: fields start after the last ')'.
        fields = stat[stat.rfind(b")") + 2 :].split()
        children.setdefault(int(fields[1]), []).append(int(entry))
    return children


def tree(root: int) -> list[int]:
    """The root and all its descendants that are alive now."""
    children = _children_map()
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, []))
    return out


def cpu_seconds(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat", "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime + stime (fields 14 and 15)
    return total / _TICKS


def rss_bytes(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/statm", "rb") as f:
                total += int(f.read().split()[1]) * _PAGE
        except OSError:
            continue
    return total


def pss_bytes(pids: list[int]) -> int:
    """Proportional set size: shared pages (libraries, copy-on-write) divided among the processes
    sharing them, so a multi-process server's sum is not inflated as summed RSS is."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/smaps_rollup", "rb") as f:
                for line in f:
                    if line.startswith(b"Pss:"):
                        total += int(line.split()[1]) * 1024
                        break
        except OSError:
            continue
    return total


@dataclass
class Usage:
    cpu_s: float
    peak_rss: int
    start_rss: int
    end_rss: int


class Sampler:
    """Samples a tree's RSS every `interval` seconds between start() and stop().

    `root` may be several pids (two replicas): their trees are summed.
    """

    def __init__(self, root: int | list[int], interval: float = 0.1) -> None:
        self.roots = [root] if isinstance(root, int) else list(root)
        self.interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._peak = 0
        self._cpu0 = 0.0
        self._start_rss = 0

    def _tree(self) -> list[int]:
        return [pid for root in self.roots for pid in tree(root)]

    def __enter__(self) -> Sampler:
        pids = self._tree()
        self._cpu0 = cpu_seconds(pids)
        self._start_rss = self._peak = rss_bytes(pids)
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        pids, refreshed = self._tree(), time.monotonic()
        while not self._stop.wait(self.interval):
            if time.monotonic() - refreshed > 1.0:  # workers may restart; re-walk the tree now and then
                pids, refreshed = self._tree(), time.monotonic()
            self._peak = max(self._peak, rss_bytes(pids))

    def __exit__(self, *exc) -> None:
        self._stop.set()
        assert self._thread is not None
        self._thread.join()
        pids = self._tree()
        end = rss_bytes(pids)
        self._peak = max(self._peak, end)
        self.usage = Usage(cpu_seconds(pids) - self._cpu0, self._peak, self._start_rss, end)
