"""Purging a vault erases its keys and certificates too: a new vault of the same name starts empty."""

from __future__ import annotations

from .conftest import unique


def test_purged_vault_leaves_no_keys_or_certificates(server):
    vault = unique("kvp")[:20]
    server.cli("keyvault", "create", "--name", vault)
    server.cli("keyvault", "key", "create", "--vault-name", vault, "--name", "k1", "--kty", "EC")
    server.cli("keyvault", "certificate", "create", "--vault-name", vault, "--name", "c1", "--policy",
               '{"issuer": {"name": "Self"}, "x509_props": {"subject": "CN=c1"}}')
    server.cli("keyvault", "certificate", "contact", "add", "--vault-name", vault, "--email", "a@example.com")
    server.cli("keyvault", "delete", "--name", vault)
    server.cli("keyvault", "purge", "--name", vault)
    server.cli("keyvault", "create", "--name", vault)
    assert server.cli_json("keyvault", "key", "list", "--vault-name", vault, "--include-managed") == []
    assert server.cli_json("keyvault", "certificate", "list", "--vault-name", vault, "--include-pending") == []
    assert server.cli_json("keyvault", "key", "list-deleted", "--vault-name", vault) == []
    assert server.cli_json("keyvault", "secret", "list", "--vault-name", vault) == []
    failed = server.cli("keyvault", "certificate", "contact", "list", "--vault-name", vault, check=False)
    assert failed.returncode != 0 and "ContactsNotFound" in failed.stderr
    # The names are free again, with fresh objects.
    server.cli("keyvault", "key", "create", "--vault-name", vault, "--name", "k1")
