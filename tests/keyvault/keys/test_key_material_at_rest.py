"""Private key material is sealed at rest like secret values: never in plaintext in the state dir or the log.

Keys whose private parts the test knows (imported RSA and AES keys, and a
certificate imported with its private key) go through create, backup, delete,
restore and rotation; then the database files and the server log are searched
for the material in the encodings a careless store would use (raw, the JWK's
base64url, hex, PEM).
"""

from __future__ import annotations

import base64
import os

import pytest
from azure.keyvault.certificates import CertificateClient, CertificateContentType, CertificatePolicy
from azure.keyvault.keys import JsonWebKey, KeyClient
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.conftest import Server
from tests.e2e.test_no_plaintext import find_leaks, state_files

from ..certificates.conftest import self_signed
from .conftest import unique


def _b(v: int) -> bytes:
    return v.to_bytes((v.bit_length() + 7) // 8, "big")


def _leaks(raw: bytes, files) -> list[str]:
    """Raw bytes, and the JWK's base64url text in every encoding find_leaks searches."""
    out = [f"{p.name}: raw" for p in files if raw in p.read_bytes()]
    return out + find_leaks(base64.urlsafe_b64encode(raw).decode().rstrip("="), files)


@pytest.fixture(scope="module")
def material(server: Server, vault: str, admin_credential) -> dict[str, bytes]:
    keys = KeyClient(server.vault_url(vault), admin_credential, connection_verify=server.ca)
    certs = CertificateClient(server.vault_url(vault), admin_credential, connection_verify=server.ca)
    priv = rsa.generate_private_key(65537, 2048)
    n = priv.private_numbers()
    rsa_name, oct_name = unique("atrest-rsa"), unique("atrest-aes")
    keys.import_key(rsa_name, JsonWebKey(kty="RSA", n=_b(n.public_numbers.n), e=_b(n.public_numbers.e), d=_b(n.d),
                                         p=_b(n.p), q=_b(n.q), dp=_b(n.dmp1), dq=_b(n.dmq1), qi=_b(n.iqmp)))
    aes = os.urandom(32)
    keys.import_key(oct_name, JsonWebKey(kty="oct", k=aes))
    blob = keys.backup_key(rsa_name)
    assert _b(n.d) not in blob  # the backup blob is sealed too
    keys.begin_delete_key(rsa_name).wait()
    keys.purge_deleted_key(rsa_name)
    keys.restore_key_backup(blob)
    keys.rotate_key(oct_name)

    cert_key, cert = self_signed("atrest.example")
    pem = cert_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    certs.import_certificate(unique("atrest-cert"), pem + cert.public_bytes(serialization.Encoding.PEM),
                             policy=CertificatePolicy(content_type=CertificateContentType.pem))
    der = cert_key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    return {"rsa d": _b(n.d), "rsa p": _b(n.p), "aes k": aes, "certificate key (PKCS#8 DER)": der,
            "certificate key d": _b(cert_key.private_numbers().d)}


@pytest.mark.parametrize("which", ["rsa d", "rsa p", "aes k", "certificate key (PKCS#8 DER)", "certificate key d"])
def test_key_material_not_in_state_dir_or_log(server: Server, material, which: str):
    files = state_files(server)
    assert any(p.name == "strongroom.db" for p in files)
    assert _leaks(material[which], files + [server.log_path]) == []


def test_the_search_would_find_a_jwk_field(tmp_path):
    secret = os.urandom(64)
    f = tmp_path / "record.json"
    f.write_text('{"d":"' + base64.urlsafe_b64encode(secret).decode().rstrip("=") + '"}')
    assert _leaks(secret, [f])
