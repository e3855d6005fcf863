"""The unmodified azure-keyvault-secrets SecretClient against a real server: the basic round trip."""

from azure.keyvault.secrets import SecretClient


def test_set_and_get_with_official_sdk(secret_client: SecretClient):
    created = secret_client.set_secret("smoke-db-password", "s3cret", content_type="text/plain", tags={"env": "dev"})
    assert len(created.properties.version) == 32
    got = secret_client.get_secret("smoke-db-password")
    assert got.value == "s3cret"
    assert got.properties.content_type == "text/plain"
    assert got.properties.tags == {"env": "dev"}
    assert got.id == created.id
