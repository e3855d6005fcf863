"""Nothing unauthenticated can exhaust the server: body caps, connection timeouts and the connection cap.

Each test attacks a real `strongroom up` over real sockets (TLS where the attack is
about TLS). The server runs with small limits so that every attack ends in about a
second; docs/security.md lists the defaults.
"""

from __future__ import annotations

import json
import select
import socket
import ssl
import threading
import time
import uuid

import httpx
import pytest

from strongroom.server.failure_audit import INDIVIDUAL
from tests.conftest import Server, start_server

MAX_CONTROL = 4096
MAX_DATA = 8192
HANDSHAKE = 1.0
READ = 1.5
KEEP_ALIVE = 3.0
MAX_CONNECTIONS = 24
UNAUTHENTICATED = 40
SLACK = 2.0  # scheduling slack on a loaded 2-core machine


@pytest.fixture(scope="module")
def limited(tmp_path_factory) -> Server:
    srv = start_server(
        tmp_path_factory.mktemp("dos"),
        "--max-body-control", str(MAX_CONTROL), "--max-body-data", str(MAX_DATA),
        "--tls-handshake-timeout", str(HANDSHAKE), "--request-read-timeout", str(READ),
        "--keep-alive-timeout", str(KEEP_ALIVE), "--max-connections", str(MAX_CONNECTIONS),
        "--unauthenticated-per-10s", str(UNAUTHENTICATED),
    )
    srv.cli("keyvault", "create", "--name", "kvdos")
    yield srv
    srv.stop()


def tls(server: Server, timeout: float = 10.0) -> ssl.SSLSocket:
    ctx = ssl.create_default_context(cafile=server.ca)
    raw = socket.create_connection(("127.0.0.1", server.port), timeout=timeout)
    return ctx.wrap_socket(raw, server_hostname="localhost")


def read_response(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """One HTTP/1.1 response with a Content-Length body."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError(f"closed before a response: {data!r}")
        data += chunk
    head, body = data.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:])}
    while len(body) < int(headers.get("content-length", "0")):
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return int(lines[0].split()[1]), headers, body


def closed_within(sock: socket.socket, seconds: float) -> float:
    """Seconds until the server closes `sock` (EOF or reset); fails if it is still open after `seconds`."""
    start = time.monotonic()
    sock.settimeout(seconds)
    try:
        while sock.recv(4096):
            pass
    except (ConnectionResetError, ssl.SSLError, BrokenPipeError):
        pass
    except TimeoutError:
        pytest.fail(f"the server kept the connection open for more than {seconds} s")
    return time.monotonic() - start


def healthy(server: Server) -> bool:
    return httpx.get(f"{server.url}/healthz", verify=server.ssl_context, timeout=5).status_code == 200


# -- body caps --------------------------------------------------------------------------------


def test_token_endpoint_refuses_an_oversized_form_before_reading_it(limited: Server):
    """Content-Length over the cap: 413 in Entra's OAuth shape at once, though not one body byte was sent."""
    tenant = limited.admin["tenantId"]
    with tls(limited) as s:
        s.sendall(
            f"POST /{tenant}/oauth2/v2.0/token HTTP/1.1\r\nHost: localhost:{limited.port}\r\n"
            f"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {100 * 1024 * 1024}\r\n\r\n".encode()
        )
        s.settimeout(5)
        status, headers, body = read_response(s)
    assert status == 413
    doc = json.loads(body)
    assert doc["error"] == "invalid_request" and str(MAX_CONTROL) in doc["error_description"]
    assert headers["connection"] == "close"


def test_chunked_body_is_counted_while_read_and_cut_off(limited: Server):
    """A chunked body gets its 413 once the count passes the cap, while the client is still sending."""
    tenant = limited.admin["tenantId"]
    with tls(limited) as s:
        s.sendall(
            f"POST /{tenant}/oauth2/v2.0/token HTTP/1.1\r\nHost: localhost:{limited.port}\r\n"
            "Content-Type: application/x-www-form-urlencoded\r\nTransfer-Encoding: chunked\r\n\r\n".encode()
        )
        chunk = b"a=" + b"x" * 1022
        for _ in range(MAX_CONTROL // len(chunk) + 1):
            s.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        s.settimeout(5)
        status, _, body = read_response(s)  # the client never sent the final chunk: the answer came anyway
    assert status == 413
    assert json.loads(body)["error"] == "invalid_request"
    # The token handler had started reading: its audit record says 413 too.
    records = json.loads(limited.cli("audit", "list", "--operation", "Authentication", "--result", "413").stdout)
    assert records and "larger than the limit" in records[-1]["resultDescription"]


def test_data_plane_and_arm_refuse_oversized_bodies_in_their_shape(limited: Server):
    big = json.dumps({"value": "v" * (MAX_DATA + 1)})
    r = httpx.put(f"{limited.vault_url('kvdos')}/secrets/s1?api-version=7.4", content=big,
                  headers={"Content-Type": "application/json"}, verify=limited.ssl_context)
    assert r.status_code == 413
    assert r.json()["error"]["code"] == "RequestEntityTooLarge" and str(MAX_DATA) in r.json()["error"]["message"]
    sub = "00000000-0000-0000-0000-000000000000"
    r = httpx.put(f"{limited.url}/subscriptions/{sub}/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/v?api-version=2023-07-01",
                  content=json.dumps({"tags": {"t": "x" * MAX_CONTROL}}), headers={"Content-Type": "application/json"},
                  verify=limited.ssl_context)
    assert r.status_code == 413 and r.json()["error"]["code"] == "RequestEntityTooLarge"


def test_a_body_within_the_data_cap_still_works(limited: Server):
    """The cap is per plane: a data-plane body above the control cap but within the data cap is served."""
    from azure.identity import ClientSecretCredential
    from azure.keyvault.secrets import SecretClient

    a = limited.admin
    cred = ClientSecretCredential(a["tenantId"], a["clientId"], a["clientSecret"], authority=limited.url,
                                  disable_instance_discovery=True, connection_verify=limited.ca)
    client = SecretClient(limited.vault_url("kvdos"), cred, connection_verify=limited.ca)
    value = "w" * (MAX_CONTROL + 100)
    assert client.set_secret("fits", value).value == value


# -- connection timeouts ------------------------------------------------------------------------


def test_slowloris_is_disconnected_within_the_read_timeout_while_others_are_served(limited: Server):
    stop = threading.Event()
    with tls(limited) as s:
        s.sendall(f"GET /healthz HTTP/1.1\r\nHost: localhost:{limited.port}\r\n".encode())

        def drip() -> None:  # one header line every 0.3 s, never the blank line
            i = 0
            while not stop.is_set():
                try:
                    s.sendall(f"X-Drip-{i}: y\r\n".encode())
                except OSError:
                    return
                i += 1
                stop.wait(0.3)

        t = threading.Thread(target=drip, daemon=True)
        t.start()
        try:
            assert healthy(limited)  # meanwhile, a good client is served
            took = closed_within(s, READ + SLACK)
        finally:
            stop.set()
            t.join()
    assert took <= READ + SLACK


def test_idle_tls_connection_after_handshake_is_closed(limited: Server):
    with tls(limited) as s:
        assert closed_within(s, KEEP_ALIVE + SLACK) >= KEEP_ALIVE - 0.5


def test_connection_that_never_completes_the_tls_handshake_is_closed(limited: Server):
    with socket.create_connection(("127.0.0.1", limited.port)) as raw:
        raw.sendall(b"\x16\x03\x01")  # the first bytes of a ClientHello, and then nothing
        closed_within(raw, HANDSHAKE + SLACK)


def test_past_the_connection_cap_new_connections_are_closed_and_a_good_client_is_served(limited: Server):
    good = tls(limited)
    held = [tls(limited) for _ in range(MAX_CONNECTIONS + 4)]
    try:
        good.sendall(f"GET /healthz HTTP/1.1\r\nHost: localhost:{limited.port}\r\n\r\n".encode())
        good.settimeout(5)
        assert read_response(good)[0] == 200  # the client that came first is served
        # The connections past the cap were closed at once, right after their handshake.
        readable, _, _ = select.select(held, [], [], 1.0)
        dropped = 0
        for s in readable:
            try:
                if s.recv(1) == b"":
                    dropped += 1
            except (ConnectionResetError, ssl.SSLError):
                dropped += 1
        assert dropped >= 4
    finally:
        for s in [good, *held]:
            s.close()


# -- throttling and audit of unauthenticated failures -------------------------------------------


def test_requests_without_a_token_do_not_lock_out_a_legitimate_caller_and_are_audited_in_aggregate(limited: Server):
    """A flood past the vault's limit without a token: the flood gets 401 then 429, the real caller 200.

    Its audit records stay complete without one per request: the first failure of each kind
    is recorded, the others as one record with their count.
    """
    limited.cli("keyvault", "create", "--name", "kvflood", "--tags", "strongroom-reads-per-10s=30")
    a = limited.admin
    token = httpx.post(
        f"{limited.url}/{a['tenantId']}/oauth2/v2.0/token", verify=limited.ssl_context,
        data={"grant_type": "client_credentials", "client_id": a["clientId"], "client_secret": a["clientSecret"],
              "scope": f"https://vault.localhost:{limited.port}/.default"},
    ).json()["access_token"]
    url = f"{limited.vault_url('kvflood')}/secrets/none?api-version=7.4"
    flood = 100
    with httpx.Client(verify=limited.ssl_context, timeout=10) as c:
        statuses = [c.get(url).status_code for _ in range(flood)]
        assert set(statuses) == {401, 429} and statuses[0] == 401 and statuses[-1] == 429
        assert statuses.count(401) <= UNAUTHENTICATED
        # The vault's quota is untouched: the legitimate caller is served.
        r = c.get(url, headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 404 and r.json()["error"]["code"] == "SecretNotFound"

    def failures() -> list[dict]:
        records = json.loads(limited.cli("audit", "list", "--vault", "kvflood").stdout)
        return [r for r in records if r["resultSignature"] in ("Unauthorized", "TooManyRequests")
                or r["properties"]["httpStatusCode"] in (401, 429)]

    deadline = time.monotonic() + 15 + SLACK  # the aggregate is written when its 10 s interval ends
    while True:
        found = failures()
        counted = sum(r["properties"].get("aggregatedCount", 1) for r in found)
        if counted == flood or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert counted == flood  # every failure is accounted for...
    assert len(found) <= 2 * (INDIVIDUAL + 1)  # ...in the first few of each kind (401, 429) and an aggregate of each
    assert any(r["properties"].get("aggregatedCount", 0) > 1 for r in found)


def test_throttle_windows_are_per_caller_and_source_windows_are_bounded(monkeypatch):
    """In process: one caller's flood leaves another's quota whole; a spray of source addresses cannot grow memory."""
    from strongroom.keyvault.vaults import Vault
    from strongroom.server import throttle as throttle_module
    from strongroom.server.throttle import Throttle, Throttled

    vault = Vault(name="kv", subscription_id="s", resource_group="rg", tenant_id="t")
    t = Throttle(clock=lambda: 100.0, unauthenticated=5)
    monkeypatch.setattr(t, "limit", lambda v, create: 3)
    for _ in range(3):
        t.check(vault, "SecretGet", "mallory")
    with pytest.raises(Throttled):
        t.check(vault, "SecretGet", "mallory")
    t.check(vault, "SecretGet", "alice")  # alice's quota is her own
    monkeypatch.setattr(throttle_module, "MAX_SOURCES", 100)
    for i in range(1000):
        t.check_source(f"10.0.{i // 256}.{i % 256}")
    assert len(t._sources) <= 100
    for _ in range(5):
        t.check_source("192.0.2.1")
    with pytest.raises(Throttled):
        t.check_source("192.0.2.1")


def test_failed_sign_ins_are_limited_per_source_and_client_before_any_credential_is_checked(limited: Server):
    """Guessing a client secret: past the per-source limit the token endpoint answers 429 with Retry-After,
    even for the right secret, so guessing cannot go on; another client id from the same address still signs in,
    and the failures' audit records are folded into aggregates with their count.
    """
    a = limited.admin
    url = f"{limited.url}/{a['tenantId']}/oauth2/v2.0/token"
    scope = f"https://vault.localhost:{limited.port}/.default"
    victim = str(uuid.uuid4())  # a claimed client id nobody has: every guess fails
    with httpx.Client(verify=limited.ssl_context, timeout=10) as c:
        statuses = [
            c.post(url, data={"grant_type": "client_credentials", "client_id": victim, "client_secret": f"guess-{i}",
                              "scope": scope}).status_code
            for i in range(UNAUTHENTICATED + 5)
        ]
        assert set(statuses[:UNAUTHENTICATED]) <= {400, 401}  # Entra's answers to a wrong client
        assert statuses[-1] == 429
        r = c.post(url, data={"grant_type": "client_credentials", "client_id": victim, "client_secret": "x",
                              "scope": scope})
        assert r.status_code == 429 and int(r.headers["Retry-After"]) >= 1
        assert r.json()["error"] == "temporarily_unavailable"
        # The admin, from the same address, is not locked out by someone else's guessing.
        ok = c.post(url, data={"grant_type": "client_credentials", "client_id": a["clientId"],
                               "client_secret": a["clientSecret"], "scope": scope})
        assert ok.status_code == 200, ok.text
