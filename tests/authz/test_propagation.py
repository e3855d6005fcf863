"""Role changes (and vault and secret changes) reach every worker process on its next request (no propagation delay).

The server runs two uvicorn workers; each request below uses a fresh TLS
connection, so the kernel spreads them over both. Every worker keeps its own
in-memory index of assignments and must notice a change made by the other.
"""

from __future__ import annotations

from tests.authz.conftest import http, make_sp, sp_token, vault_scope
from tests.conftest import start_server

ROUNDS = 16


def test_grant_and_revoke_are_seen_by_all_workers_at_once(tmp_path):
    server = start_server(tmp_path, "--workers", "2")
    try:
        server.cli("keyvault", "create", "--name", "kvw")
        server.cli("keyvault", "secret", "set", "--vault-name", "kvw", "--name", "s", "--value", "v", "-o", "none")
        sp = make_sp(server)
        token = sp_token(server, sp, vault_scope(server))

        def statuses() -> list[int]:
            out = []
            for _ in range(ROUNDS):
                with http(server) as h:  # a new connection each time
                    r = h.get(f"{server.vault_url('kvw')}/secrets/s", params={"api-version": "7.4"},
                              headers={"Authorization": f"Bearer {token}", "Connection": "close"})
                out.append(r.status_code)
            return out

        assert set(statuses()) == {403}  # every worker has built its (empty) index
        scope = server.cli_json("keyvault", "show", "--name", "kvw")["id"]
        a = server.cli_json("role", "assignment", "create", "--role", "Key Vault Secrets User", "--assignee", sp.app_id, "--scope", scope)
        assert set(statuses()) == {200}
        server.cli("role", "assignment", "delete", "--ids", a["id"])
        assert set(statuses()) == {403}

        # Records every worker keeps in memory (the vault, the secret's head and version) follow too.
        server.cli("role", "assignment", "create", "--role", "Key Vault Secrets User", "--assignee", sp.app_id, "--scope", scope)

        def values() -> set[object]:
            out = set()
            for _ in range(ROUNDS):
                with http(server) as h:
                    r = h.get(f"{server.vault_url('kvw')}/secrets/s", params={"api-version": "7.4"},
                              headers={"Authorization": f"Bearer {token}", "Connection": "close"})
                out.add(r.json()["value"] if r.status_code == 200 else r.status_code)
            return out

        assert values() == {"v"}
        server.cli("keyvault", "secret", "set", "--vault-name", "kvw", "--name", "s", "--value", "v2", "-o", "none")
        assert values() == {"v2"}
        server.cli("keyvault", "delete", "--name", "kvw")
        assert values() == {404}  # the vault record is gone for every worker: VaultNotFound
    finally:
        server.stop()

