"""`up --public-url`: clients reach the server through another address than the one it listens on.

A TCP forwarder (tests/tcpforward.py, a load balancer in TCP mode) listens on the
public port; the server listens elsewhere. Everything a client is handed back —
authority, token issuer, challenge, ids, nextLinks — must name the public address.
"""

from __future__ import annotations

import ssl

import httpx
import jwt
import pytest
from azure.identity import ClientSecretCredential
from azure.keyvault.secrets import SecretClient
from cryptography import x509

from strongroom.server.tls import ensure_certificates
from tests.conftest import STRONGROOM, Server, free_port
from tests.tcpforward import TCPForwarder


@pytest.fixture(scope="module")
def behind(tmp_path_factory):
    listen = free_port()
    fwd = TCPForwarder([listen])
    public = f"https://localhost:{fwd.port}"
    srv = Server(tmp_path_factory.mktemp("public") / "state", listen, extra_args=["--public-url", public]).start()
    srv.cli("keyvault", "create", "--name", "kvpub")  # the CLI goes through admin.json's server: the public URL
    yield srv, fwd, public
    srv.stop()
    fwd.close()


def test_sdk_through_the_public_port_sees_only_public_urls(behind):
    srv, fwd, public = behind
    a = srv.admin
    assert a["server"] == public
    vault_url = f"https://kvpub.vault.localhost:{fwd.port}"
    cred = ClientSecretCredential(a["tenantId"], a["clientId"], a["clientSecret"], authority=public,
                                  disable_instance_discovery=True, connection_verify=srv.ca)
    client = SecretClient(vault_url, cred, connection_verify=srv.ca)
    before = len(fwd.connections)
    s = client.set_secret("via-lb", "v")
    assert s.id.startswith(f"{vault_url}/secrets/via-lb/")
    for i in range(5):
        client.set_secret(f"page-{i}", "v")
    assert len(list(client.list_properties_of_secrets(max_page_size=2))) == 6  # nextLinks were followed
    assert len(fwd.connections) > before  # it all went through the forwarder

    token = cred.get_token(f"https://vault.localhost:{fwd.port}/.default").token
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["iss"] == f"{public}/{a['tenantId']}/v2.0"
    assert claims["aud"].startswith(f"https://vault.localhost:{fwd.port}")
    with httpx.Client(verify=ssl.create_default_context(cafile=srv.ca)) as http:
        r = http.get(f"{vault_url}/secrets", params={"api-version": "7.4"})
        assert r.status_code == 401
        assert f'authorization="{public}/{a["tenantId"]}"' in r.headers["WWW-Authenticate"]
        r = http.get(f"{vault_url}/secrets", params={"api-version": "7.4", "maxresults": "2"},
                     headers={"Authorization": f"Bearer {token}"})
        assert r.json()["nextLink"].startswith(f"{vault_url}/secrets?")
        meta = http.get(f"{public}/{a['tenantId']}/v2.0/.well-known/openid-configuration").json()
        assert meta["issuer"] == f"{public}/{a['tenantId']}/v2.0"
        assert meta["token_endpoint"].startswith(public)
    client.close()


def test_the_server_certificate_covers_the_public_host_and_its_vault_wildcard(tmp_path):
    ensure_certificates(tmp_path, "kv.example.test", "kv.example.test")
    cert = x509.load_pem_x509_certificate((tmp_path / "server.pem").read_bytes())
    names = set(cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName))
    assert {"kv.example.test", "*.vault.kv.example.test", "vault.kv.example.test"} <= names


@pytest.mark.parametrize("bad", ["http://x.test", "https://x.test/path", "https://u:p@x.test", "https://x.test:99999", "x.test"])
def test_a_bad_public_url_is_refused_before_anything_starts(tmp_path, bad):
    import subprocess

    proc = subprocess.run([*STRONGROOM, "up", "--state-dir", str(tmp_path / "s"), "--public-url", bad],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "--public-url" in proc.stderr
    assert not (tmp_path / "s").exists()
