"""One way in: every route of every plane declares its guard, and the guard holds over the wire.

The first test walks the app's real route tables (the vault host's `RouteTable` and the
control host's Starlette router) and fails on any route without a declaration. The
others attack a real server: tokens of the wrong audience, no token, an ordinary
principal on an instance-admin route, and one call to every declared route, after which
each route's audit operation must be in the audit log.
"""

from __future__ import annotations

import inspect
import json
import re
import uuid

import pytest

from strongroom.server import guards
from strongroom.server.app import create_app
from strongroom.server.bootstrap import bootstrap
from strongroom.server.throttle import CREATE_OPERATIONS
from strongroom.settings import Settings
from tests.authz.conftest import MANAGEMENT_SCOPE, admin_token, http, make_sp, sp_token, vault_scope
from tests.conftest import Server, free_port, start_server

ARM = {"api-version": "2022-07-01"}


def _tables(state_dir) -> tuple[list, list]:
    settings = Settings(state_dir=state_dir, port=free_port(), insecure_http=True, log_level="warning")
    bootstrap(settings)
    app = create_app(settings)
    try:
        return list(app.vault_app.routes), list(app.control_app.routes)
    finally:
        app.runtime.close()


@pytest.fixture(scope="module")
def tables(tmp_path_factory):
    return _tables(tmp_path_factory.mktemp("routes") / "state")


def test_every_route_of_every_plane_declares_its_guard(tables):
    vault_routes, control_routes = tables
    undeclared = [f"{sorted(r.methods or [])} {r.path}" for r in vault_routes + control_routes
                  if not isinstance(r, guards.GuardedRoute)]
    assert not undeclared, f"routes without a guard declaration (server/guards.py route()): {undeclared}"
    assert len(vault_routes) > 60 and len(control_routes) > 80  # the walk saw the whole app, not a stub
    for r in vault_routes + control_routes:
        g = r.guard
        assert g.who in (guards.PUBLIC, guards.VAULT, guards.MANAGEMENT, guards.GRAPH, guards.ADMIN)
        assert g.who == guards.PUBLIC or g.operation, f"{r.path}: a bearer route must record an audit operation"


def test_the_vault_host_serves_only_vault_bearer_routes_whose_handler_authorizes_the_declared_operation(tables):
    vault_routes, _ = tables
    for r in vault_routes:
        assert r.guard.who == guards.VAULT, r.path
        source = inspect.getsource(r.handler)
        named = re.findall(r'begin\(request, "(\w+)"', source)
        # The operation the guard records is the one the handler authorizes (keys' shared handlers pass theirs on).
        assert not named or named == [r.guard.operation], (r.path, named, r.guard.operation)


def test_the_create_class_is_azures_creates(tables):
    """Key Vault counts these against the 300 creates per 10 s; everything else against the 4,000."""
    vault_routes, _ = tables
    creates = {r.guard.operation for r in vault_routes if r.guard.throttle == guards.VAULT_CREATE}
    assert creates == CREATE_OPERATIONS


def test_a_guard_cannot_be_declared_without_an_audit_operation():
    with pytest.raises(ValueError):
        guards.Guard(guards.MANAGEMENT, None)
    with pytest.raises(ValueError):
        guards.Guard(guards.MANAGEMENT, "X", guards.VAULT_READ)  # a vault quota needs a vault caller


# -- over the wire ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    """A server of its own: the walk below calls every route, signing-key rotation included."""
    s = start_server(tmp_path_factory.mktemp("guards"))
    s.cli("keyvault", "create", "--name", "guardkv")
    yield s
    s.stop()


@pytest.fixture(scope="module")
def h(srv):
    with http(srv) as client:
        yield client


@pytest.fixture(scope="module")
def sub(srv, h) -> str:
    return h.get(f"{srv.url}/strongroom/metadata").json()["subscriptionId"]


def graph_scope(server: Server) -> str:
    return f"{server.url}//.default"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_a_management_route_refuses_no_token_and_a_vault_token(srv, h, sub):
    url = f"{srv.url}/subscriptions/{sub}/providers/Microsoft.KeyVault/vaults"
    assert h.get(url, params=ARM).status_code == 401
    r = h.get(url, params=ARM, headers=bearer(admin_token(srv, vault_scope(srv))))
    assert r.status_code == 401 and r.json()["error"]["code"] == "InvalidAuthenticationToken"
    assert "authorization_uri" in r.headers["www-authenticate"]
    assert h.get(url, params=ARM, headers=bearer(admin_token(srv, MANAGEMENT_SCOPE))).status_code == 200


def test_a_vault_route_refuses_no_token_and_a_management_token(srv, h):
    url = f"{srv.vault_url('guardkv')}/secrets"
    for headers in ({}, bearer(admin_token(srv, MANAGEMENT_SCOPE)), bearer(admin_token(srv, graph_scope(srv)))):
        r = h.get(url, params={"api-version": "7.4"}, headers=headers)
        assert r.status_code == 401 and r.json()["error"]["code"] == "Unauthorized", r.text
        assert 'resource="' in r.headers["www-authenticate"]  # the data plane's challenge
    assert h.get(url, params={"api-version": "7.4"}, headers=bearer(admin_token(srv, vault_scope(srv)))).status_code == 200


def test_instance_admin_routes_refuse_an_ordinary_principal(srv, h, sub):
    sp = make_sp(srv, "guards")
    identities = f"{srv.url}/subscriptions/{sub}/providers/Microsoft.ManagedIdentity/userAssignedIdentities"
    r = h.get(identities, params=ARM, headers=bearer(sp_token(srv, sp, MANAGEMENT_SCOPE)))
    assert r.status_code == 403 and r.json()["error"]["code"] == "AuthorizationFailed", r.text
    rotate = f"{srv.url}/strongroom/identity/signing-keys/rotate"
    assert h.post(rotate, headers=bearer(sp_token(srv, sp, MANAGEMENT_SCOPE))).status_code == 403
    apps = f"{srv.url}/v1.0/applications"
    assert h.get(apps, headers=bearer(sp_token(srv, sp, graph_scope(srv)))).status_code == 403
    # A Graph route wants a Graph token, even the admin's management token is refused.
    assert h.get(apps, headers=bearer(admin_token(srv, MANAGEMENT_SCOPE))).status_code == 401
    assert h.get(apps, headers=bearer(admin_token(srv, graph_scope(srv)))).status_code == 200
    sa = f"{srv.url}/clusters/local/api/v1/namespaces/default/serviceaccounts"
    r = h.get(sa, headers=bearer(sp_token(srv, sp, MANAGEMENT_SCOPE)))
    assert r.status_code == 403 and r.json()["kind"] == "Status"  # refused in the plane's own shape


def _sample_path(path: str, sub: str, tenant: str) -> str:
    values = {"subscription": sub, "tenant": tenant, "cluster": "local", "scope": f"subscriptions/{sub}",
              "rg": "guard-rg", "ns": "default", "location": "local", "version": "0" * 32}
    return re.sub(r"\{(\w+)(?::\w+)?\}", lambda m: values.get(m.group(1), "guard-x"), path)


def test_every_declared_operation_is_in_the_audit_log_after_a_call(srv, h, sub, tables):
    vault_routes, control_routes = tables
    tenant = srv.admin["tenantId"]
    tokens = {
        guards.VAULT: admin_token(srv, vault_scope(srv)),
        guards.MANAGEMENT: admin_token(srv, MANAGEMENT_SCOPE),
        guards.GRAPH: admin_token(srv, graph_scope(srv)),
    }
    expected: dict[str, tuple[str, str]] = {}
    for base, routes in ((srv.vault_url("guardkv"), vault_routes), (srv.url, control_routes)):
        for r in routes:
            g = r.guard
            if g.operation is None:
                continue
            method = next(m for m in ("POST", "PUT", "PATCH", "DELETE", "GET", "HEAD") if m in r.methods)
            audience = g.audience or g.who
            headers = {"x-ms-client-request-id": str(uuid.uuid4())}
            if g.who != guards.PUBLIC:
                headers.update(bearer(tokens[audience]))
            url = base + _sample_path(r.path, sub, tenant)
            body = b"{}" if method in ("POST", "PUT", "PATCH") else None
            with h.stream(method, url, params={"api-version": "7.4" if base != srv.url else "2022-07-01"},
                          headers=headers, content=body) as resp:
                status = resp.status_code  # an event stream is left at its headers: its record is written by then
            expected[headers["x-ms-client-request-id"]] = (f"{method} {r.path} ({status})", g.operation)
    assert len(expected) > 140
    records = {}
    for path in srv.state_dir.glob("audit*.jsonl"):
        for line in path.read_bytes().split(b"\n")[:-1]:
            rec = json.loads(line)
            records[rec.get("correlationId")] = rec
    missing = [what for cid, (what, _) in expected.items() if cid not in records]
    assert not missing, f"calls without an audit record: {missing}"
    wrong = [(what, op, records[cid]["operationName"]) for cid, (what, op) in expected.items()
             if records[cid]["operationName"] != op]
    assert not wrong, f"records naming another operation than the route declares: {wrong}"
