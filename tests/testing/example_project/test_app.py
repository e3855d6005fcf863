"""An application's tests against Key Vault, as a user writes them with the `strongroom` fixture.

The SDK clients get the vault URL and a credential, nothing else: no CA file, no
/etc/hosts entry, no Strongroom-specific setting.
"""

import asyncio
import socket

import pytest
from azure.core.exceptions import HttpResponseError
from azure.keyvault.certificates import CertificateClient, CertificatePolicy
from azure.keyvault.keys import KeyClient
from azure.keyvault.keys.crypto import CryptographyClient, EncryptionAlgorithm
from azure.keyvault.secrets import SecretClient


@pytest.fixture(scope="session")
def vault_url(strongroom):
    return strongroom.vault("kv-app")


def test_secrets_round_trip(strongroom, vault_url):
    client = SecretClient(vault_url, strongroom.credential())
    client.set_secret("db-password", "s3cret")
    assert client.get_secret("db-password").value == "s3cret"
    assert "db-password" in [p.name for p in client.list_properties_of_secrets()]


def test_vault_is_idempotent(strongroom, vault_url):
    assert strongroom.vault("kv-app") == vault_url
    assert vault_url.startswith("https://kv-app.vault.")


def test_keys_encrypt_and_decrypt(strongroom, vault_url):
    credential = strongroom.credential()
    key = KeyClient(vault_url, credential).create_rsa_key("app-key", size=2048)
    crypto = CryptographyClient(key, credential)
    encrypted = crypto.encrypt(EncryptionAlgorithm.rsa_oaep_256, b"plaintext")
    assert crypto.decrypt(EncryptionAlgorithm.rsa_oaep_256, encrypted.ciphertext).plaintext == b"plaintext"


def test_certificates_self_signed(strongroom, vault_url):
    client = CertificateClient(vault_url, strongroom.credential())
    certificate = client.begin_create_certificate("app-tls", CertificatePolicy.get_default()).result()
    assert certificate.name == "app-tls" and certificate.cer
    assert client.get_certificate("app-tls").properties.version == certificate.properties.version


def test_async_client(strongroom, vault_url):
    from azure.identity.aio import ClientSecretCredential  # noqa: F401 - what strongroom.credential(aio=True) returns
    from azure.keyvault.secrets.aio import SecretClient as AsyncSecretClient

    async def main():
        credential = strongroom.credential(aio=True)
        async with credential, AsyncSecretClient(vault_url, credential) as client:
            await client.set_secret("async-secret", "from-aio")
            return (await client.get_secret("async-secret")).value

    assert asyncio.run(main()) == "from-aio"


def test_workload_identity_reads_but_cannot_write(strongroom, vault_url):
    SecretClient(vault_url, strongroom.credential()).set_secret("for-the-app", "v1")
    app = strongroom.identity("app", role="Key Vault Secrets User", scope="kv-app")
    env = app.env()
    assert env["AZURE_CLIENT_ID"] == app.client_id and env["AZURE_AUTHORITY_HOST"] == strongroom.authority

    client = SecretClient(vault_url, app.credential())
    assert client.get_secret("for-the-app").value == "v1"
    with pytest.raises(HttpResponseError) as denied:
        client.set_secret("for-the-app", "v2")
    assert denied.value.status_code == 403


def test_only_vault_names_are_redirected(strongroom):
    vault_host = strongroom.vault_url("kv-app").split("//")[1].split(":")[0]
    assert socket.getaddrinfo(vault_host, 443)[0][4][0] == "127.0.0.1"
    with pytest.raises(socket.gaierror):
        socket.getaddrinfo("no-such-host.invalid", 443)
    assert strongroom.ca_file.endswith("ca.pem")
