"""The data plane's dispatcher over the wire: Starlette's matching rules, Key Vault's error bodies."""

from __future__ import annotations

import httpx
import pytest

from tests.conftest import Server

API = "api-version=7.4"


@pytest.fixture(scope="module")
def call(server: Server, vault: str, admin_credential):
    resource = httpx.get(f"{server.url}/strongroom/metadata", verify=server.ssl_context).json()["vaultResource"]
    token = admin_credential.get_token(f"{resource}/.default").token
    client = httpx.Client(base_url=server.vault_url(vault), verify=server.ssl_context,
                          headers={"Authorization": f"Bearer {token}"})
    yield lambda method, path, **kw: client.request(method, f"{path}?{API}", **kw)
    client.close()


def test_routes_match_by_segment_in_declaration_order(call):
    assert call("PUT", "/secrets/dispatch-a", json={"value": "v1"}).status_code == 200
    got = call("GET", "/secrets/dispatch-a")
    assert got.status_code == 200 and got.json()["value"] == "v1"
    version = got.json()["id"].rsplit("/", 1)[1]
    assert call("GET", f"/secrets/dispatch-a/{version}").json()["value"] == "v1"
    assert call("GET", "/secrets/dispatch-a/").json()["value"] == "v1"  # the SDK's get_secret(name, "")
    # A literal segment wins over a parameter declared after it.
    listing = call("GET", "/secrets/dispatch-a/versions")
    assert listing.status_code == 200 and [i["id"] for i in listing.json()["value"]]
    assert call("HEAD", "/secrets/dispatch-a").status_code == 200


@pytest.mark.parametrize("path", ["/secrets/dispatch-a/one/two", "/nothing", "/secrets//", "/certificates/x/y/z"])
def test_an_unknown_path_is_keyvaults_404(call, path):
    r = call("GET", path)
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "NotFound" and path in r.json()["error"]["message"]


def test_a_known_path_with_another_method_is_405(call):
    r = call("DELETE", "/secrets")
    assert r.status_code == 405
    assert r.json()["error"] == {"code": "MethodNotAllowed", "message": "The method DELETE is not allowed on /secrets."}
    assert "x-ms-request-id" in r.headers


def test_the_audit_records_the_socket_peer_not_a_forwarded_for_header(call, server: Server):
    import json

    assert call("PUT", "/secrets/dispatch-b", json={"value": "v"}).status_code == 200
    r = call("GET", "/secrets/dispatch-b", headers={"X-Forwarded-For": "203.0.113.9", "X-Forwarded-Proto": "http"})
    assert r.status_code == 200
    request_id = r.headers["x-ms-request-id"]
    records = []
    for path in server.state_dir.glob("audit*.jsonl"):
        lines = path.read_bytes().split(b"\n")
        records += [json.loads(line) for line in lines[:-1]]  # the last piece may be a record still being written
    (record,) = [rec for rec in records if rec["properties"].get("requestId") == request_id]  # aggregates have none
    assert record["callerIpAddress"] == "127.0.0.1"
    assert record["properties"]["requestUri"].startswith("https://")


def test_a_websocket_upgrade_to_a_vault_is_refused_cleanly(server: Server, vault: str):
    import socket
    import ssl

    host = f"{vault}.vault.localhost"
    ctx = ssl.create_default_context(cafile=server.ca)
    with socket.create_connection(("127.0.0.1", server.port)) as raw, ctx.wrap_socket(raw, server_hostname=host) as s:
        s.sendall(f"GET /secrets/x?{API} HTTP/1.1\r\nHost: {host}:{server.port}\r\nUpgrade: websocket\r\n"
                  "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n".encode())
        answer = s.recv(4096)
    assert answer.startswith(b"HTTP/1.1 403")
    assert server.log_path is not None and "Traceback" not in server.log_path.read_text()
