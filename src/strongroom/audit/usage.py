"""When each role assignment was last used, from the audit log (for `strongroom lint --server`, SR203).

Every authorized data-plane call records the assignment that allowed it
(`properties.appliedAssignmentId`); the newest such record is the assignment's last use.
"""

from __future__ import annotations

from strongroom.audit.query import Filter, records
from strongroom.storage import Storage


def last_use_by_assignment(storage: Storage, since: str | None = None) -> dict[str, str]:
    """{assignment id (lower case): time of its newest successful use} for records at or after `since`."""
    out: dict[str, str] = {}
    for rec in records(storage, Filter(since=since)):
        props = rec.get("properties") or {}
        aid = props.get("appliedAssignmentId")
        status = props.get("httpStatusCode")
        if not aid or not isinstance(status, int) or status >= 400:
            continue
        t = str(rec.get("time", ""))
        key = str(aid).lower()
        if t > out.get(key, ""):
            out[key] = t
    return out
