"""The storage contract runs on every backend: `open_db()` opens one more handle on the test's own store.

Two handles on one store stand for two server processes (or two replicas on
PostgreSQL). The PostgreSQL variant uses a fresh database on the session's
private cluster (tests/pgcluster.py).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from strongroom.storage import Storage, open_storage


@pytest.fixture(params=["sqlite", "postgresql"])
def open_db(request, tmp_path: Path):
    url = f"sqlite:///{tmp_path / 's.db'}" if request.param == "sqlite" else request.getfixturevalue("pg_url")
    opened: list[Storage] = []

    def open_one() -> Storage:
        s = open_storage(url)
        opened.append(s)
        return s

    yield open_one
    for s in opened:
        try:
            s.close()
        except Exception:
            pass


@pytest.fixture
def db(open_db: Callable[[], Storage]) -> Storage:
    return open_db()
