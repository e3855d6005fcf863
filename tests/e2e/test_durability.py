"""Nothing answered is lost: kill -9 in the middle of a burst of writes, restart, read it all back."""

from __future__ import annotations

import random
import signal
import ssl
import string
import threading
import time
from dataclasses import dataclass

import httpx

from tests.conftest import Server, start_server

WRITERS = 4
NAMES_PER_WRITER = 3
BURST_SECONDS = 2.5


@dataclass(frozen=True)
class Answered:
    name: str
    version: str
    value: str
    seq: int  # order of the answers within one writer


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


def writer(srv: Server, vault: str, token: str, wid: int, stop: threading.Event, out: list[Answered]) -> None:
    rng = random.Random(wid)
    with httpx.Client(verify=ssl.create_default_context(cafile=srv.ca), timeout=5,
                      headers={"Authorization": f"Bearer {token}"}) as http:
        seq = 0
        while not stop.is_set():
            name = f"burst-{wid}-{seq % NAMES_PER_WRITER}"
            value = "".join(rng.choices(string.ascii_letters + string.digits, k=rng.randint(1, 200)))
            try:
                r = http.put(f"{srv.vault_url(vault)}/secrets/{name}", params={"api-version": "7.4"},
                             json={"value": value, "tags": {"seq": str(seq)}})
            except httpx.HTTPError:
                return  # the server is gone: this write was never answered
            if r.status_code == 200:
                body = r.json()
                assert body["value"] == value
                out.append(Answered(name, body["id"].rsplit("/", 1)[1], value, seq))
            seq += 1


def test_answered_writes_survive_kill_9(tmp_path):
    # Azure's 300 creates per 10 s would turn most of the burst into 429s: measure durability, not limits.
    srv = start_server(tmp_path, "--no-throttle")
    try:
        srv.cli("keyvault", "create", "--name", "kv-durable")
        token = vault_token(srv)
        stop = threading.Event()
        answered: list[list[Answered]] = [[] for _ in range(WRITERS)]
        threads = [threading.Thread(target=writer, args=(srv, "kv-durable", token, w, stop, answered[w]))
                   for w in range(WRITERS)]
        for t in threads:
            t.start()
        time.sleep(BURST_SECONDS)
        srv.proc.send_signal(signal.SIGKILL)  # mid-burst: writers are still sending
        srv.proc.wait()
        stop.set()
        for t in threads:
            t.join(timeout=10)
        srv.proc = None
        total = sum(len(a) for a in answered)
        assert total >= 50, f"only {total} writes answered before the kill; the burst did not run"
        print(f"{total} writes answered before kill -9")

        restarted = Server(srv.state_dir, srv.port, extra_args=["--no-throttle"]).start()
        srv = restarted
        token = vault_token(srv)
        with httpx.Client(verify=ssl.create_default_context(cafile=srv.ca), timeout=10,
                          headers={"Authorization": f"Bearer {token}"}) as http:
            base = f"{srv.vault_url('kv-durable')}/secrets"
            for per_writer in answered:
                for a in per_writer:
                    r = http.get(f"{base}/{a.name}/{a.version}", params={"api-version": "7.4"})
                    assert r.status_code == 200, (a, r.text)
                    assert r.json()["value"] == a.value
                    assert r.json()["tags"] == {"seq": str(a.seq)}
                # The current version of each name is the last answered one, or a later write
                # that committed but whose answer the kill cut off; never an older answered one.
                last: dict[str, Answered] = {}
                for a in per_writer:
                    last[a.name] = a
                for name, a in last.items():
                    current = http.get(f"{base}/{name}", params={"api-version": "7.4"}).json()
                    assert int(current["tags"]["seq"]) >= a.seq
                    listed = http.get(f"{base}/{name}/versions", params={"api-version": "7.4", "maxresults": "25"})
                    assert listed.status_code == 200
    finally:
        srv.stop()
