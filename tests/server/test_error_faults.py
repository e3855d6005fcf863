"""A fault inside a handler: 500 (an unexpected exception) or 503 (storage) in the plane's shape, nothing leaked.

The real application (`create_app` on a bootstrapped state dir, with the audit and
request-id layers `strongroom up` wraps it in), driven in-process through an ASGI
transport: a fault has to be injected into a live handler, which a server in another
process does not allow. The fault is the token check every protected route runs first
(or the token endpoint's credential check), made to raise with a secret-looking text
that must reach neither the body nor the headers.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest

from strongroom.barrier import StorageError
from strongroom.server.app import create_app
from strongroom.server.audit_middleware import AuditMiddleware
from strongroom.server.bootstrap import bootstrap
from strongroom.server.http import RequestIdMiddleware
from strongroom.settings import Settings

LEAK = "sekrit-value-0b7d"  # what the failing code had in hand: must never reach the client
VAULT = "kvfault"


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    state: Path = tmp_path_factory.mktemp("faults") / "state"
    settings = Settings(state_dir=state)
    admin = bootstrap(settings)
    app = create_app(settings)
    rt = app.runtime
    rt.vaults.create_or_update(VAULT, subscription_id=rt.tenant.subscription_id, resource_group="strongroom",
                               tenant_id=rt.tenant.tenant_id, created_by=rt.tenant.admin_object_id)
    assert rt.audit is not None
    yield RequestIdMiddleware(AuditMiddleware(app, rt.audit)), rt, admin
    rt.close()


def call(app, method: str, url: str, **kw) -> httpx.Response:
    async def go() -> httpx.Response:
        # An exception escaping the app would reach the server, which logs it with its text: none may.
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport) as c:
            return await c.request(method, url, **kw)

    return asyncio.run(go())


def fail_with(kind: type[Exception]):
    def fail(*args, **kwargs):
        raise kind(f"the backend said {LEAK}")

    return fail


def nothing_leaks(r: httpx.Response) -> None:
    assert LEAK not in r.text and LEAK not in str(r.headers)
    assert "Traceback" not in r.text and "RuntimeError" not in r.text and "StorageError" not in r.text


def planes(rt, admin):
    """(plane, where the fault goes, request) for each plane."""
    sub = rt.tenant.subscription_id
    bearer = {"Authorization": "Bearer x.y.z"}
    return [
        ("keyvault", (rt, "vault_tokens"), ("GET", f"https://{VAULT}.vault.localhost:8443/secrets?api-version=7.5", bearer)),
        ("arm", (rt, "management_tokens"),
         ("GET", f"https://localhost:8443/subscriptions/{sub}/resourceGroups?api-version=2023-07-01", bearer)),
        ("graph", (rt.identity, "graph_tokens"), ("GET", "https://localhost:8443/v1.0/applications", bearer)),
        ("kubernetes", (rt, "management_tokens"),
         ("GET", "https://localhost:8443/clusters/local/api/v1/serviceaccounts", bearer)),
    ]


def check_shape(plane: str, r: httpx.Response, status: int) -> None:
    assert r.status_code == status, r.text
    body = r.json()
    if plane == "kubernetes":
        assert body["kind"] == "Status" and body["status"] == "Failure" and body["code"] == status
        assert body["reason"] == {500: "InternalError", 503: "ServiceUnavailable"}[status]
    elif plane == "entra":
        assert body["error"] == {500: "server_error", 503: "temporarily_unavailable"}[status]
        assert body["error_description"].startswith("AADSTS") and body["error_codes"]
    else:
        code = {500: "InternalServerError", 503: "ServiceUnavailable"}[status]
        assert body["error"]["code"] == code and body["error"]["message"]
        assert ("innerError" in body["error"]) == (plane == "graph")


@pytest.mark.parametrize("plane", ["keyvault", "arm", "graph", "kubernetes"])
@pytest.mark.parametrize("kind, status", [(RuntimeError, 500), (StorageError, 503)])
def test_a_fault_in_a_handler_is_answered_in_the_planes_shape(stack, monkeypatch, caplog, plane, kind, status):
    app, rt, admin = stack
    _, (owner, attr), (method, url, headers) = next(p for p in planes(rt, admin) if p[0] == plane)
    monkeypatch.setattr(getattr(owner, attr), "verify", fail_with(kind))
    r = call(app, method, url, headers=headers)
    check_shape(plane, r, status)
    nothing_leaks(r)
    if kind is RuntimeError:  # logged by type only (a storage failure's text is the operator's: it is logged)
        assert all(LEAK not in rec.getMessage() and not rec.exc_info for rec in caplog.records)
    if status == 503:
        assert r.headers["retry-after"] == "1"
    assert r.headers["x-ms-request-id"]


@pytest.mark.parametrize("kind, status", [(RuntimeError, 500), (StorageError, 503)])
def test_a_fault_at_the_token_endpoint_is_answered_in_oauth_shape(stack, monkeypatch, kind, status):
    app, rt, admin = stack
    monkeypatch.setattr(rt.identity.tokens, "client_credentials", fail_with(kind))
    form = {"grant_type": "client_credentials", "client_id": admin["clientId"], "client_secret": admin["clientSecret"],
            "scope": "https://management.azure.com/.default"}
    r = call(app, "POST", f"https://localhost:8443/{admin['tenantId']}/oauth2/v2.0/token", data=form)
    check_shape("entra", r, status)
    nothing_leaks(r)
    assert admin["clientSecret"] not in r.text
