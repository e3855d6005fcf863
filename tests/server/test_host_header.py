"""The Host header is canonical (issue #10, section 4): never echoed into ids, nextLink, audit or token audiences.

Over the wire against the real server. A trailing dot, a port other than the one
the server is published on, or two Host headers are refused with 400; a Host that
differs only in case is served with canonical (lower-case) ids. A certificate
client assertion is checked against the configured token endpoint, not the
request's Host.
"""

from __future__ import annotations

import base64
import hashlib
import json
import socket
import ssl
import time
import uuid

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization

from strongroom.identity.certs import self_signed
from tests.conftest import Server
from tests.server.test_bad_input import token

VAULT = "srkv-host"


@pytest.fixture(scope="module")
def host_vault(server: Server) -> dict[str, str]:
    server.cli("keyvault", "create", "--name", VAULT)
    tok = token(server, f"https://vault.localhost:{server.port}/.default")
    headers = {"Authorization": f"Bearer {tok}"}
    for name in ("h1", "h2"):
        r = httpx.put(f"{server.vault_url(VAULT)}/secrets/{name}", params={"api-version": "7.5"}, json={"value": "v"},
                      headers=headers, verify=server.ssl_context)
        r.raise_for_status()
    return headers


def raw_request(server: Server, host_lines: list[bytes], path: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
    """A request with exactly the Host lines given (httpx would not send two)."""
    ctx = ssl.create_default_context(cafile=server.ca)
    with socket.create_connection(("127.0.0.1", server.port)) as raw, ctx.wrap_socket(raw, server_hostname="localhost") as s:
        extra = b"".join(f"{k}: {v}\r\n".encode() for k, v in headers.items())
        s.sendall(b"GET " + path + b" HTTP/1.1\r\n" + b"".join(b"Host: " + h + b"\r\n" for h in host_lines)
                  + extra + b"Connection: close\r\n\r\n")
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body


@pytest.mark.parametrize("host", [
    "{vault}.vault.localhost.:{port}",   # trailing dot
    "{vault}.vault.localhost:1",          # another port
    "{vault}.vault.localhost:{port}0",
    "{vault}.vault.localhost:x",
    "localhost.:{port}",
    "[::1:{port}",
])
def test_a_host_with_a_trailing_dot_or_another_port_is_refused(server: Server, host_vault, host: str) -> None:
    h = host.format(vault=VAULT, port=server.port).encode()
    status, body = raw_request(server, [h], b"/secrets?api-version=7.5&maxresults=1", host_vault)
    assert status == 400, body
    assert json.loads(body)["error"]["code"] == "BadRequest"
    assert h not in body


def test_two_host_headers_are_refused(server: Server, host_vault) -> None:
    good = f"{VAULT}.vault.localhost:{server.port}".encode()
    for pair in ([good, b"evil.example"], [good, good]):
        status, body = raw_request(server, pair, b"/secrets?api-version=7.5&maxresults=1", host_vault)
        assert status == 400, body
        assert b"evil" not in body


def test_ids_next_link_and_audit_use_the_canonical_host(server: Server, host_vault) -> None:
    shouting = f"{VAULT.upper()}.VAULT.LOCALHOST:{server.port}".encode()
    status, body = raw_request(server, [shouting], b"/secrets?api-version=7.5&maxresults=1", host_vault)
    assert status == 200, body
    page = json.loads(body)
    canonical = server.vault_url(VAULT)
    assert page["value"][0]["id"].startswith(canonical + "/secrets/")
    assert page["nextLink"].startswith(canonical + "/secrets?")
    # Complete records end in a newline; the last piece may be one still being written by a concurrent request.
    records = [json.loads(line) for line in (server.state_dir / "audit.jsonl").read_text().split("\n")[:-1]]
    # This test's requests (other tests share the server and its log), whatever case their Host had.
    uris = [u for u in (r["properties"].get("requestUri") or "" for r in records)
            if "maxresults=1" in u and f"//{VAULT}." in u.lower()]
    assert uris and all(u.startswith(canonical + "/secrets") for u in uris), uris
    assert not any("VAULT" in u or "evil" in u or "localhost." in u or ":1/" in u for u in
                   (r["properties"].get("requestUri") or "" for r in records))


def test_a_certificate_assertion_for_another_hosts_token_endpoint_is_refused(server: Server, tmp_path) -> None:
    """aud is matched against the configured authority; sending the assertion's host as Host does not help."""
    app = server.cli_json("ad", "sp", "create-for-rbac", "--name", f"host-aud-{uuid.uuid4().hex[:8]}")
    pem, cert = self_signed("host-aud")
    path = tmp_path / "cert.pem"
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    server.cli_json("ad", "app", "credential", "reset", "--id", app["appId"], "--cert", f"@{path}", "--append")
    key = serialization.load_pem_private_key(pem, password=None)
    tenant = server.admin["tenantId"]
    x5t = base64.urlsafe_b64encode(hashlib.sha1(cert.public_bytes(serialization.Encoding.DER)).digest()).decode().rstrip("=")

    def ask(aud_host: str, host_header: str | None) -> httpx.Response:
        t = int(time.time())
        claims = {"aud": f"https://{aud_host}/{tenant}/oauth2/v2.0/token", "iss": app["appId"], "sub": app["appId"],
                  "jti": str(uuid.uuid4()), "iat": t, "nbf": t, "exp": t + 600}
        assertion = jwt.encode(claims, key, algorithm="RS256", headers={"x5t": x5t})
        return httpx.post(f"{server.url}/{tenant}/oauth2/v2.0/token", verify=server.ssl_context,
                          headers={"Host": host_header} if host_header else {},
                          data={"grant_type": "client_credentials", "client_id": app["appId"],
                                "client_assertion": assertion,
                                "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                                "scope": f"https://vault.localhost:{server.port}/.default"})

    assert ask(f"localhost:{server.port}", None).status_code == 200  # the configured endpoint works
    other = f"attacker.example:{server.port}"
    refused = ask(other, other)
    assert refused.status_code in (400, 401), refused.text
    assert refused.json()["error_codes"] == [700023], refused.text


def test_the_control_plane_records_its_own_authority_whatever_host_reached_it(server: Server) -> None:
    """A token request sent with Host: attacker.example is audited under https://localhost:<port>, not the Host."""
    a = server.admin
    r = httpx.post(f"{server.url}/{a['tenantId']}/oauth2/v2.0/token", verify=server.ssl_context,
                   headers={"Host": f"attacker.example:{server.port}", "x-ms-client-request-id": "host-audit-probe"},
                   data={"grant_type": "client_credentials", "client_id": a["clientId"], "client_secret": "wrong",
                         "scope": f"https://vault.localhost:{server.port}/.default"})
    assert r.status_code == 401, r.text
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        text = (server.state_dir / "audit.jsonl").read_text()
        if "host-audit-probe" in text:
            break
        time.sleep(0.05)
    assert "host-audit-probe" in text
    assert "attacker.example" not in text
    probe = [line for line in text.splitlines() if "host-audit-probe" in line]
    assert json.loads(probe[0])["properties"]["requestUri"].startswith(f"https://localhost:{server.port}/")
