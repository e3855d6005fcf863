"""Per-vault request limits: Azure's 429 Throttled beyond them, with Retry-After; per-vault
limits from vault tags; `up --no-throttle` turns them off."""

from __future__ import annotations

import ssl
import uuid

import httpx
import pytest

from strongroom.keyvault.vaults import Vault
from strongroom.server.throttle import (
    CREATES_PER_WINDOW,
    READS_PER_WINDOW,
    WINDOW,
    SlidingWindow,
    Throttle,
    Throttled,
)
from tests.conftest import Server, start_server

THROTTLED_BODY = {
    "error": {
        "code": "Throttled",
        "message": "Request was not processed because too many requests were received. Reason: VaultRequestTypeLimitReached",
    }
}


def vault_token(srv: Server) -> str:
    a = srv.admin
    r = httpx.post(
        f"{srv.url}/{a['tenantId']}/oauth2/v2.0/token",
        data={"grant_type": "client_credentials", "client_id": a["clientId"], "client_secret": a["clientSecret"],
              "scope": f"https://vault.localhost:{srv.port}/.default"},
        verify=ssl.create_default_context(cafile=srv.ca),
    )
    assert r.status_code == 200, r.text
    return r.json()["access_token"]


def limited_vault(srv: Server, reads: int | None = None, creates: int | None = None) -> str:
    name = f"thr-{uuid.uuid4().hex[:10]}"
    tags = []
    if reads is not None:
        tags.append(f"strongroom-reads-per-10s={reads}")
    if creates is not None:
        tags.append(f"strongroom-creates-per-10s={creates}")
    srv.cli("keyvault", "create", "--name", name, *(["--tags", *tags] if tags else []))
    return name


@pytest.fixture(scope="module")
def http(server: Server):
    with httpx.Client(verify=ssl.create_default_context(cafile=server.ca), timeout=10,
                      headers={"Authorization": f"Bearer {vault_token(server)}"}) as client:
        yield client


def put(http: httpx.Client, srv: Server, vault: str, name: str) -> httpx.Response:
    return http.put(f"{srv.vault_url(vault)}/secrets/{name}", params={"api-version": "7.4"}, json={"value": "v"})


def get(http: httpx.Client, srv: Server, vault: str, name: str) -> httpx.Response:
    return http.get(f"{srv.vault_url(vault)}/secrets/{name}", params={"api-version": "7.4"})


def test_reads_beyond_the_vault_limit_get_azures_throttled_answer(server, http):
    vault = limited_vault(server, reads=5)
    assert put(http, server, vault, "s").status_code == 200  # a create: not counted against reads
    answers = [get(http, server, vault, "s") for _ in range(8)]
    assert [r.status_code for r in answers] == [200] * 5 + [429] * 3
    refused = answers[-1]
    assert refused.json() == THROTTLED_BODY
    assert 1 <= int(refused.headers["Retry-After"]) <= WINDOW
    assert refused.headers["x-ms-request-id"]


def test_creates_have_their_own_smaller_budget(server, http):
    vault = limited_vault(server, reads=100, creates=3)
    codes = [put(http, server, vault, f"s{i}").status_code for i in range(5)]
    assert codes == [200, 200, 200, 429, 429]
    # Reads (and updates, lists) draw on the other budget, which is untouched.
    assert get(http, server, vault, "s0").status_code == 200
    listed = http.get(f"{server.vault_url(vault)}/secrets", params={"api-version": "7.4"})
    assert listed.status_code == 200
    assert len(listed.json()["value"]) == 3


def test_limits_are_per_vault(server, http):
    busy, quiet = limited_vault(server, reads=2), limited_vault(server, reads=2)
    put(http, server, busy, "s")
    put(http, server, quiet, "s")
    assert [get(http, server, busy, "s").status_code for _ in range(3)] == [200, 200, 429]
    assert get(http, server, quiet, "s").status_code == 200


def test_a_tag_that_is_not_a_positive_integer_leaves_azures_default(server, http):
    vault = limited_vault(server, reads=0)
    put(http, server, vault, "s")
    assert all(get(http, server, vault, "s").status_code == 200 for _ in range(10))


def test_no_throttle_switch_turns_limits_off(tmp_path):
    srv = start_server(tmp_path, "--no-throttle")
    try:
        vault = limited_vault(srv, reads=1, creates=1)
        with httpx.Client(verify=ssl.create_default_context(cafile=srv.ca), timeout=10,
                          headers={"Authorization": f"Bearer {vault_token(srv)}"}) as c:
            assert [put(c, srv, vault, f"s{i}").status_code for i in range(3)] == [200] * 3
            assert [get(c, srv, vault, "s0").status_code for _ in range(3)] == [200] * 3
    finally:
        srv.stop()


# -- the window itself, on a clock the test moves ---------------------------------------------

class Clock:
    def __init__(self, t: float = 1000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def vault(**tags: str) -> Vault:
    return Vault(name="kv", subscription_id="s", resource_group="rg", tenant_id="t", tags=dict(tags))


def admitted(throttle: Throttle, v: Vault, n: int, operation: str = "SecretGet") -> int:
    ok = 0
    for _ in range(n):
        try:
            throttle.check(v, operation)
            ok += 1
        except Throttled:
            pass
    return ok


def test_azure_defaults_and_worker_share():
    clock = Clock()
    v = vault()
    assert admitted(Throttle(1, clock), v, READS_PER_WINDOW + 50) == READS_PER_WINDOW
    assert admitted(Throttle(1, clock), v, CREATES_PER_WINDOW + 50, "SecretSet") == CREATES_PER_WINDOW
    # Two workers each allow half, so the instance allows the vault's limit.
    assert admitted(Throttle(2, clock), v, READS_PER_WINDOW) == READS_PER_WINDOW // 2


def test_the_share_follows_the_live_processes_of_every_replica_and_falls_back_to_the_workers():
    clock = Clock()
    v = vault(**{"strongroom-creates-per-10s": "12"})
    t = Throttle(2, clock)
    t.share(6)  # three replicas of two workers each
    assert admitted(t, v, 12, "SecretSet") == 2
    t2 = Throttle(2, clock)
    t2.share(6)
    t2.share(None)  # the count is unknown (SQLite, PostgreSQL away): this machine's workers
    assert admitted(t2, v, 12, "SecretSet") == 6


def test_refused_requests_do_not_count_and_retry_after_is_honest():
    clock = Clock()
    t = Throttle(1, clock)
    v = vault(**{"strongroom-reads-per-10s": "10"})
    assert admitted(t, v, 10) == 10
    with pytest.raises(Throttled) as refused:
        t.check(v, "SecretGet")
    # A client hammering through the refusal does not push its own recovery further out.
    assert admitted(t, v, 1000) == 0
    with pytest.raises(Throttled) as again:
        t.check(v, "SecretGet")
    assert again.value.retry_after == refused.value.retry_after
    # Waiting what Retry-After said is enough; waiting less is not.
    clock.t += refused.value.retry_after - 1
    assert admitted(t, v, 1) == 0
    clock.t += 1
    assert admitted(t, v, 1) == 1


def test_no_double_burst_at_a_window_boundary():
    w = SlidingWindow()
    start = 100 * WINDOW - 0.5  # half a second before a fixed window ends
    admitted_now = sum(w.admit(start, 100) is None for _ in range(150))
    just_after = sum(w.admit(start + 1.0, 100) is None for _ in range(150))
    assert admitted_now == 100
    assert just_after <= 10  # a fixed window would allow another 100 here
    # Once both fixed windows holding those admissions have passed, the budget is whole again.
    assert sum(w.admit(start + 3 * WINDOW, 100) is None for _ in range(150)) == 100
