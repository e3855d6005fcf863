"""The audit middleware around a small real app, on a real audit log: what is held, what is refused."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route

from strongroom.audit import AuditLog, AuditWriter
from strongroom.audit import facts as audit
from strongroom.server.audit_middleware import AuditMiddleware
from strongroom.storage.sqlite import SQLiteStorage

SECRET = "middleware-canary-value"


async def audited(request: Request):
    audit.begin(request.scope, "SecretGet", resource_id="/subscriptions/s/resourceGroups/g/providers/Microsoft.KeyVault/vaults/kv")
    if request.query_params.get("deny"):
        return JSONResponse({"error": {"code": "Forbidden", "message": "Caller is not authorized."}}, status_code=403)
    if request.query_params.get("odd"):
        audit.facts(request.scope)["appliedAssignmentId"] = {1, 2}  # not JSON: the record cannot be written
    return JSONResponse({"value": SECRET})


async def unaudited(request: Request):
    return PlainTextResponse("ok")


@pytest.fixture
def stack(tmp_path: Path):
    storage = SQLiteStorage(tmp_path / "strongroom.db")
    writer = AuditWriter(AuditLog(tmp_path, storage))
    app = AuditMiddleware(Starlette(routes=[Route("/secret", audited), Route("/healthz", unaudited)]), writer)
    yield tmp_path, app
    writer.close()
    storage.close()


def run(app, *requests: tuple[str, dict]) -> list[httpx.Response]:
    async def go():
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="https://kv.vault.localhost") as c:
            return await asyncio.gather(*(c.get(url, headers=headers) for url, headers in requests))

    return asyncio.run(go())


def records(state: Path) -> list[dict]:
    return [json.loads(line) for line in (state / "audit.jsonl").read_bytes().splitlines()]


def test_only_audited_handlers_are_recorded_and_errors_carry_their_message(stack):
    state, app = stack
    ok, denied, health = run(
        app, ("/secret", {"x-ms-client-request-id": "c1"}), ("/secret?deny=1", {"client-request-id": "c2"}), ("/healthz", {})
    )
    assert (ok.status_code, denied.status_code, health.status_code) == (200, 403, 200)
    assert ok.json()["value"] == SECRET and denied.json()["error"]["code"] == "Forbidden"
    got = sorted(records(state), key=lambda r: r["properties"]["httpStatusCode"])
    assert [(r["operationName"], r["resultSignature"]) for r in got] == [("SecretGet", "OK"), ("SecretGet", "Forbidden")]
    assert got[0]["correlationId"] == "c1" and got[1]["correlationId"] == "c2"  # MSAL's name for it
    assert got[1]["resultDescription"] == "Caller is not authorized."
    assert SECRET not in (state / "audit.jsonl").read_text()


def test_a_record_that_cannot_be_built_fails_only_its_request(stack):
    state, app = stack
    odd, fine = run(app, ("/secret?odd=1", {}), ("/secret", {}))
    assert odd.status_code == 503 and SECRET not in odd.text
    assert odd.json()["error"]["code"] == "ServiceUnavailable"
    assert fine.status_code == 200
    assert len(records(state)) == 1


def test_a_missing_log_refuses_audited_requests_only(stack):
    state, app = stack
    (state / "audit.jsonl").rename(state / "aside")
    secret, health = run(app, ("/secret", {}), ("/healthz", {}))
    assert secret.status_code == 503 and SECRET not in secret.text and secret.headers["retry-after"] == "1"
    assert health.status_code == 200
    (state / "aside").rename(state / "audit.jsonl")
    (again,) = run(app, ("/secret", {}))
    assert again.status_code == 200 and len(records(state)) == 1
