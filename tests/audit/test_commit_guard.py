"""The commit guard on every path a handler commits by: on the loop, in the threadpool, through the async group commit.

A small real app over real SQLite and a real audit log: with the log working, a
change has an intent record (fsynced before the commit) and an outcome; with the
log broken, the change is refused (503) and is not in storage afterwards.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from strongroom.audit import AuditLog, AuditWriter
from strongroom.audit import facts as audit
from strongroom.server.audit_middleware import AuditMiddleware
from strongroom.server.http import RequestIdMiddleware
from strongroom.storage import StorageError, Write
from strongroom.storage.sqlite import SQLiteStorage

PATHS = ("loop", "thread", "async")


def make_app(storage: SQLiteStorage, writer: AuditWriter):
    async def change(request: Request):
        audit.begin(request.scope, "SecretSet", resource_id="/subscriptions/s/resourceGroups/g/providers/Microsoft.KeyVault/vaults/kv")
        how, key = request.path_params["how"], request.path_params["key"]
        batch = [Write(key, b"v")]
        try:
            if how == "loop":
                storage.write(batch)  # a synchronous commit on the event loop
            elif how == "thread":
                await run_in_threadpool(storage.write, batch)
            else:
                await storage.write_and_append_async(batch, "feed", [b"e"])
        except StorageError as exc:
            return JSONResponse({"error": {"code": "ServiceUnavailable", "message": str(exc)}}, status_code=503)
        if request.query_params.get("break_after"):  # the sink fails between the commit and the outcome record
            (storage.path.parent / "audit.jsonl").rename(storage.path.parent / "aside")
        return JSONResponse({"ok": True})

    async def read(request: Request):
        audit.begin(request.scope, "SecretGet", resource_id="/x")
        storage.write([Write("read-side-" + request.path_params["key"], b"x")])  # a GET has no guard
        return JSONResponse({"ok": True})

    routes = [Route("/change/{how}/{key}", change, methods=["PUT"]), Route("/read/{key}", read, methods=["GET"])]
    return RequestIdMiddleware(AuditMiddleware(Starlette(routes=routes), writer))  # as the server stacks them


@pytest.fixture
def stack(tmp_path: Path):
    storage = SQLiteStorage(tmp_path / "strongroom.db")
    writer = AuditWriter(AuditLog(tmp_path, storage))
    yield tmp_path, storage, make_app(storage, writer)
    writer.close()
    storage.close()


def run(app, *calls: tuple[str, str]) -> list[httpx.Response]:
    async def go():
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="https://kv.vault.localhost") as c:
            return await asyncio.gather(
                *(c.request(method, url, headers={"x-ms-client-request-id": url}) for method, url in calls)
            )

    return asyncio.run(go())


def records(state: Path) -> list[dict]:
    return [json.loads(line) for line in (state / "audit.jsonl").read_bytes().splitlines()]


def test_every_commit_path_writes_the_intent_first(stack):
    state, storage, app = stack
    answers = run(app, *[("PUT", f"/change/{how}/k-{how}") for how in PATHS])
    assert [r.status_code for r in answers] == [200, 200, 200]
    assert all(storage.get(f"k-{how}") == b"v" for how in PATHS)
    got = records(state)
    intents = [r for r in got if r["properties"].get("auditStage") == "intent"]
    outcomes = [r for r in got if "auditStage" not in r["properties"]]
    assert len(intents) == 3 and len(outcomes) == 3
    assert {r["correlationId"] for r in intents} == {r["correlationId"] for r in outcomes}
    for intent in intents:  # each intent precedes its outcome in the chain
        outcome = next(o for o in outcomes if o["correlationId"] == intent["correlationId"])
        assert intent["chain"]["seq"] < outcome["chain"]["seq"]
    # The table follows the file in order, whichever path wrote them (the last outcomes, written as
    # reads are, reach it with the next group commit).
    table = [seq for seq, _ in storage.read("audit")]
    assert table == list(range(1, len(table) + 1)) and len(table) >= 3


def test_a_broken_log_refuses_the_change_on_every_path_and_reads_gain_no_intent(stack):
    state, storage, app = stack
    (state / "audit.jsonl").rename(state / "aside")
    answers = run(app, *[("PUT", f"/change/{how}/k-{how}") for how in PATHS])
    assert [r.status_code for r in answers] == [503, 503, 503]
    assert all("audit" in r.json()["error"]["message"] for r in answers)
    assert all(storage.get(f"k-{how}") is None for how in PATHS)
    (state / "aside").rename(state / "audit.jsonl")
    (read,) = run(app, ("GET", "/read/r1"))
    assert read.status_code == 200
    assert [r["operationName"] for r in records(state)] == ["SecretGet"]  # no intent for a read


def test_a_sink_failure_after_the_commit_leaves_the_intent_and_verify_lists_it(stack):
    from strongroom.audit.verify import verify

    state, storage, app = stack
    (answer,) = run(app, ("PUT", "/change/async/k-late?break_after=1"))
    assert answer.status_code == 503  # the outcome could not be written, so the answer is refused ...
    assert storage.get("k-late") == b"v"  # ... but the change had been committed: its intent record covers it
    (state / "aside").rename(state / "audit.jsonl")
    (intent,) = records(state)
    assert intent["properties"]["auditStage"] == "intent" and intent["correlationId"] == "/change/async/k-late?break_after=1"
    report = verify(state, storage, grace=0.5)
    assert report.ok  # nothing was tampered with
    (chain,) = report.chains
    assert [u["seq"] for u in chain.unfinished] == [intent["chain"]["seq"]]
    assert chain.unfinished[0]["operationName"] == "SecretSet"
    assert any("no outcome record" in note for note in chain.notes)
