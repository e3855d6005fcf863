"""SIGTERM: a request already in flight is finished and durable; the process exits 0 promptly."""

from __future__ import annotations

import json
import signal
import socket
import ssl
import time

import httpx

from tests.conftest import Server, start_server


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


def read_response(tls: ssl.SSLSocket) -> tuple[int, bytes]:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = tls.recv(65536)
        assert chunk, f"connection closed before a response: {data!r}"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:"))
    while len(body) < length:
        chunk = tls.recv(65536)
        assert chunk
        body += chunk
    return int(head.split(b" ")[1]), body


def test_sigterm_finishes_the_request_in_flight_and_exits_0(tmp_path):
    srv = start_server(tmp_path)
    try:
        srv.cli("keyvault", "create", "--name", "kv-term")
        token = vault_token(srv)
        http = httpx.Client(verify=ssl.create_default_context(cafile=srv.ca),
                            headers={"Authorization": f"Bearer {token}"}, timeout=10)
        url = f"{srv.vault_url('kv-term')}/secrets"
        before = http.put(f"{url}/answered-before-term", params={"api-version": "7.4"}, json={"value": "v-before"})
        assert before.status_code == 200
        http.close()

        # A request whose body is still arriving when SIGTERM lands: headers and half the body now,
        # the rest after the signal.
        body = json.dumps({"value": "v-in-flight"}).encode()
        host = f"kv-term.vault.localhost:{srv.port}"
        raw = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
        tls = ssl.create_default_context(cafile=srv.ca).wrap_socket(raw, server_hostname="kv-term.vault.localhost")
        tls.sendall(
            f"PUT /secrets/in-flight?api-version=7.4 HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body[:5]
        )
        time.sleep(0.3)
        srv.proc.send_signal(signal.SIGTERM)
        time.sleep(0.5)
        assert srv.proc.poll() is None, "the server exited with a request in flight"
        tls.sendall(body[5:])
        status, answer = read_response(tls)
        tls.close()
        assert status == 200, answer
        assert json.loads(answer)["value"] == "v-in-flight"

        started = time.monotonic()
        assert srv.proc.wait(timeout=10) == 0
        assert time.monotonic() - started < 5
        srv.proc = None

        # New connections are refused once it has gone, and both writes are on disk.
        srv = Server(srv.state_dir, srv.port).start()
        token = vault_token(srv)
        with httpx.Client(verify=ssl.create_default_context(cafile=srv.ca),
                          headers={"Authorization": f"Bearer {token}"}, timeout=10) as http:
            for name, value in (("answered-before-term", "v-before"), ("in-flight", "v-in-flight")):
                r = http.get(f"{url}/{name}", params={"api-version": "7.4"})
                assert r.status_code == 200 and r.json()["value"] == value
    finally:
        srv.stop()


def test_sigterm_with_idle_keepalive_clients_exits_promptly(tmp_path):
    srv = start_server(tmp_path)
    try:
        clients = [httpx.Client(verify=ssl.create_default_context(cafile=srv.ca)) for _ in range(3)]
        for c in clients:
            assert c.get(f"{srv.url}/healthz").status_code == 200  # leaves a pooled idle connection
        started = time.monotonic()
        srv.proc.send_signal(signal.SIGTERM)
        assert srv.proc.wait(timeout=15) == 0
        assert time.monotonic() - started < 5
        srv.proc = None
        for c in clients:
            c.close()
    finally:
        srv.stop()
