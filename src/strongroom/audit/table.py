"""Where the audit table lives: beside an SQLite database in a file of its own.

The table mirrors the audit files for queries and `audit verify`, and it is appended
to every few milliseconds under load. In the main SQLite database each of those
commits emptied every reader connection's page cache (SQLite drops it whenever
another connection commits), so reads of secrets paid for the audit's writes. In
its own file (`<db>-audit.db` next to `<db>.db`) its commits touch nobody else's
cache. On PostgreSQL the table stays in the shared database: every replica's
chains are listed from any of them (`audit list`), and no reader cache depends on it.

A database that held the audit streams before this split keeps them; on first
open they are copied into the new file (stream by stream, each copy a
compare-and-append, so workers starting together copy each stream once).
"""

from __future__ import annotations

from pathlib import Path

from strongroom.audit.log import STREAM
from strongroom.storage import Storage, StorageError, open_storage
from strongroom.storage.sqlite import SQLiteStorage

_PAGE = 2000


def table_path(db: Path) -> Path:
    """The audit database beside the main SQLite database `db`."""
    return db.with_name(f"{db.stem}-audit{db.suffix or '.db'}")


def audit_table(storage: Storage) -> Storage:
    """The storage that holds the audit streams for an instance on `storage`; `storage` itself unless it is SQLite.

    The caller closes what it gets back when it is not `storage`.
    """
    if not isinstance(storage, SQLiteStorage):
        return storage
    table = SQLiteStorage(table_path(storage.path))
    try:
        _move_old_streams(storage, table)
    except BaseException:
        table.close()
        raise
    return table


def open_audit_table(url: str) -> Storage:
    """The audit table of the instance whose storage is `url` (for the CLI's `audit list|verify` and lint)."""
    storage = open_storage(url)
    try:
        table = audit_table(storage)
    except BaseException:
        storage.close()
        raise
    if table is not storage:
        storage.close()
    return table


def _move_old_streams(main: Storage, table: Storage) -> None:
    """Copy audit streams the main database holds and the table does not (an instance from before the split)."""
    for stream in main.streams(STREAM):
        done = table.last(stream)
        old = main.last(stream)
        if old is None or (done is not None and done[0] >= old[0]):
            continue
        position = done[0] if done else 0
        try:
            while rows := main.read(stream, position, _PAGE):
                table.append(stream, [entry for _, entry in rows], sync=True, after=position)
                position = rows[-1][0]
        except StorageError:
            continue  # another process copied it meanwhile (its append came first)
