"""JSON records kept behind the barrier."""

from __future__ import annotations

import json
from typing import Any

from strongroom.barrier.envelope import SealedStore
from strongroom.util import jsonbytes


def load(store: SealedStore, key: str) -> dict[str, Any] | None:
    raw = store.get(key)  # not store.load: one call less on the hot read path
    return None if raw is None else json.loads(raw)


def json_load(raw: bytes) -> dict[str, Any]:
    record: dict[str, Any] = json.loads(raw)  # every record is a JSON object
    return record


def dump(record: dict[str, Any]) -> bytes:
    return jsonbytes.dumps(record)
