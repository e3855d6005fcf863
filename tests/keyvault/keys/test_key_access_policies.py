"""Keys and certificates on a vault with the access-policy model: the REST reference's permissions decide."""

from __future__ import annotations

import hashlib

import pytest
from azure.core.exceptions import HttpResponseError
from azure.identity import ClientSecretCredential
from azure.keyvault.certificates import CertificateClient, CertificatePolicy
from azure.keyvault.keys import KeyClient
from azure.keyvault.keys.crypto import CryptographyClient, EncryptionAlgorithm, KeyWrapAlgorithm, SignatureAlgorithm

from .conftest import unique


def test_key_and_certificate_permissions(server, admin_credential):
    vault = unique("kvap")[:20]
    server.cli("keyvault", "create", "--name", vault, "--enable-rbac-authorization", "false")
    admin_keys = KeyClient(server.vault_url(vault), admin_credential, connection_verify=server.ca)
    key = admin_keys.create_rsa_key("k1")
    sp = server.cli_json("ad", "sp", "create-for-rbac", "--name", unique("ap"))
    server.cli("keyvault", "set-policy", "--name", vault, "--spn", sp["appId"], "--key-permissions", "sign", "unwrapKey",
               "--certificate-permissions", "get", "list")
    cred = ClientSecretCredential(server.admin["tenantId"], sp["appId"], sp["password"], authority=server.url,
                                  disable_instance_discovery=True, connection_verify=server.ca)
    crypto = CryptographyClient(key.id, cred, connection_verify=server.ca)  # no keys/get: everything remote
    assert crypto.sign(SignatureAlgorithm.rs256, hashlib.sha256(b"x").digest()).signature
    wrapped = CryptographyClient(key, admin_credential, connection_verify=server.ca).wrap_key(KeyWrapAlgorithm.rsa_oaep, b"k" * 16)
    assert crypto.unwrap_key(KeyWrapAlgorithm.rsa_oaep, wrapped.encrypted_key).key == b"k" * 16
    with pytest.raises(HttpResponseError) as exc:
        crypto.encrypt(EncryptionAlgorithm.rsa_oaep, b"x")
    assert exc.value.status_code == 403
    assert exc.value.response.json()["error"]["innererror"]["code"] == "AccessDenied"
    assert "does not have keys encrypt permission" in exc.value.error.message
    with pytest.raises(HttpResponseError) as exc:
        KeyClient(server.vault_url(vault), cred, connection_verify=server.ca).get_key("k1")
    assert "keys get permission" in exc.value.error.message

    admin_certs = CertificateClient(server.vault_url(vault), admin_credential, connection_verify=server.ca)
    admin_certs.begin_create_certificate("c1", CertificatePolicy.get_default()).result()
    certs = CertificateClient(server.vault_url(vault), cred, connection_verify=server.ca)
    assert certs.get_certificate("c1").name == "c1"
    assert [c.name for c in certs.list_properties_of_certificates()] == ["c1"]
    with pytest.raises(HttpResponseError) as exc:
        certs.begin_create_certificate("c2", CertificatePolicy.get_default()).result()
    assert "certificates create permission" in exc.value.error.message
    with pytest.raises(HttpResponseError) as exc:
        certs.set_contacts([])
    assert "certificates managecontacts permission" in exc.value.error.message
