"""Copy one store into another, as stored: sealed bytes stay sealed (`strongroom admin migrate`).

Records are copied in key order, page by page; streams entry by entry with their
numbers kept (each page is a compare-and-append after the target's last number,
so the target's streams are numbered exactly as the source's). Nothing is
decrypted: the barrier's associated data is the storage key, which does not
change, so the same master key opens the copy.

An interrupted copy can be run again with `resume=True`: records are written
over, and a stream the target already holds continues where it ends, provided
what it holds is the start of the source's stream (same last entry there).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from strongroom.storage.base import Storage, StorageError, Write

PAGE = 500


class TargetNotEmpty(StorageError):
    """The target already holds data and the caller did not say to copy into it."""


@dataclass
class CopyStats:
    records: int = 0
    streams: int = 0
    entries: int = 0


def is_empty(storage: Storage) -> bool:
    return next(iter(storage.scan("", None, 1)), None) is None and not storage.streams("")


def size(storage: Storage) -> int:
    """Records plus stream entries: the progress bar's total."""
    total = 0
    after = None
    while page := list(storage.scan("", after, PAGE)):
        total += len(page)
        after = page[-1][0]
    for stream in storage.streams(""):
        last = storage.last(stream)
        total += 0 if last is None else last[0]
    return total


def copy_storage(src: Storage, dst: Storage, *, resume: bool = False,
                 advance: Callable[[int], None] = lambda n: None) -> CopyStats:
    if not resume and not is_empty(dst):
        raise TargetNotEmpty("the target storage is not empty")
    stats = CopyStats()
    after = None
    while page := list(src.scan("", after, PAGE)):
        dst.write([Write(k, v) for k, v in page])
        stats.records += len(page)
        advance(len(page))
        after = page[-1][0]
    for stream in src.streams(""):
        stats.streams += 1
        done = dst.last(stream)
        position = 0 if done is None else done[0]
        if position:
            mine = src.read(stream, position - 1, 1)
            if not mine or mine[0] != done:
                raise StorageError(f"stream {stream!r} in the target is not a copy of the source's; not copying into it")
            advance(position)
        while rows := src.read(stream, position, PAGE):
            dst.append(stream, [e for _, e in rows], after=position)
            position = rows[-1][0]
            stats.entries += len(rows)
            advance(len(rows))
    return stats
