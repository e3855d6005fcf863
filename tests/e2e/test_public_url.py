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


def _own_pki(tmp_path, host: str):
    """A CA of the user's own and a server certificate it signed for `host` and *.vault.`host`."""
    import datetime as dt

    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Users Own CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
          .not_valid_after(now + dt.timedelta(days=30)).add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=30))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(host), x509.DNSName(f"*.vault.{host}")]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    paths = tmp_path / "own-ca.pem", tmp_path / "own-cert.pem", tmp_path / "own-key.pem"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return paths


class OwnCertServer(Server):
    own_ca: str = ""

    @property
    def ca(self) -> str:
        return self.own_ca


def test_a_certificate_from_the_users_own_ca_is_served(tmp_path):
    ca, cert, key = _own_pki(tmp_path, "localhost")
    srv = OwnCertServer(tmp_path / "state", free_port(), extra_args=["--tls-cert-file", str(cert), "--tls-private-key-file", str(key)])
    srv.own_ca = str(ca)
    srv.start()  # its health check trusts only the user's CA
    try:
        a = srv.admin
        cred = ClientSecretCredential(a["tenantId"], a["clientId"], a["clientSecret"], authority=srv.url,
                                      disable_instance_discovery=True, connection_verify=str(ca))
        token = cred.get_token(f"https://vault.localhost:{srv.port}/.default").token
        assert token
        with pytest.raises(httpx.ConnectError):  # the state dir's own CA no longer vouches for the server
            httpx.get(f"{srv.url}/healthz", verify=ssl.create_default_context(cafile=str(srv.state_dir / "ca.pem")))
    finally:
        srv.stop()


def test_a_certificate_without_its_key_or_with_another_key_is_refused(tmp_path):
    import subprocess

    _, cert, key = _own_pki(tmp_path, "localhost")
    proc = subprocess.run([*STRONGROOM, "up", "--state-dir", str(tmp_path / "s"), "--tls-cert-file", str(cert)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "go together" in proc.stderr
    (tmp_path / "other").mkdir()
    _, _, other_key = _own_pki(tmp_path / "other", "localhost")
    proc = subprocess.run([*STRONGROOM, "up", "--state-dir", str(tmp_path / "s"), "--tls-cert-file", str(cert),
                           "--tls-private-key-file", str(other_key)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "not a certificate and its private key" in proc.stderr and "Traceback" not in proc.stderr
