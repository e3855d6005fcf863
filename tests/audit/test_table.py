"""The audit table in its own SQLite file: its commits leave the main database (and its readers' caches) alone,
and an instance from before the split keeps its records."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from strongroom.audit.log import AuditLog
from strongroom.audit.table import audit_table, open_audit_table, table_path
from strongroom.storage.sqlite import SQLiteStorage


def test_audit_commits_do_not_touch_the_main_database(tmp_path: Path):
    main = SQLiteStorage(tmp_path / "strongroom.db")
    table = audit_table(main)
    assert table is not main and table_path(main.path) == tmp_path / "strongroom-audit.db"
    reader = sqlite3.connect(main.path)  # a reader of the main database, as a worker's connection is
    before = reader.execute("PRAGMA data_version").fetchone()
    log = AuditLog(tmp_path, table, close_storage=True)
    log.append([{"operationName": "SecretGet", "n": i} for i in range(3)])
    assert reader.execute("PRAGMA data_version").fetchone() == before  # its page cache stays valid
    assert [seq for seq, _ in table.read("audit")] == [1, 2, 3]
    assert main.streams("audit") == []
    log.close()
    main.close()


def test_records_of_an_instance_from_before_the_split_are_moved_once(tmp_path: Path):
    main = SQLiteStorage(tmp_path / "strongroom.db")
    main.append("audit", [b"a1", b"a2"])
    main.append("audit-1", [b"b1"])
    main.append("feed/kv1", [b"not audit"])
    table = audit_table(main)
    table.close()
    again = open_audit_table(f"sqlite:///{tmp_path / 'strongroom.db'}")  # a second opener copies nothing twice
    assert again.read("audit") == [(1, b"a1"), (2, b"a2")] and again.read("audit-1") == [(1, b"b1")]
    assert again.streams("") == ["audit", "audit-1"]
    again.append("audit", [b"a3"], after=2)  # the chain continues in the new file
    again.close()
    main.close()
