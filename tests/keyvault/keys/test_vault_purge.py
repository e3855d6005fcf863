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


def test_purging_a_vault_erases_every_record_of_it_and_none_of_a_vault_whose_name_extends_it(tmp_path):
    """In process, at the storage level: every kind in keyvault/layout.py is erased with its vault, and a
    per-vault record (certificate contacts, `certcontacts/{vault}`) of `kv1` is not confused with `kv10`'s."""
    from strongroom.barrier import Barrier, Keyring, MasterKey, SealedStore
    from strongroom.keyvault import certpolicy, private_ca
    from strongroom.keyvault.backup import BackupSealer
    from strongroom.keyvault.certificate_contacts import Contact
    from strongroom.keyvault.certificate_issuers import IssuerInput
    from strongroom.keyvault.certificates import CertificateCreate, CertificateStore
    from strongroom.keyvault.keys import KeyStore
    from strongroom.keyvault.secrets import SecretInput, SecretStore
    from strongroom.keyvault.vaults import VaultRegistry
    from strongroom.storage.sqlite import SQLiteStorage

    storage = SQLiteStorage(tmp_path / "s.db")
    try:
        store = SealedStore(storage, Barrier(Keyring([MasterKey.generate()])))
        backups = BackupSealer(store)
        registry, secrets, keys = VaultRegistry(store), SecretStore(store, backups), KeyStore(store, backups)
        certs = CertificateStore(store, backups, keys, private_ca.loader(store))
        policy = certpolicy.parse({"issuer": {"name": "Self"}, "x509_props": {"subject": "CN=c1"}})
        for name in ("kv1", "kv10"):
            vault, _ = registry.create_or_update(name, subscription_id="sub", resource_group="rg", tenant_id="t",
                                                 created_by="test")
            secrets.set(vault, "s1", SecretInput("v"))
            keys.create(vault, "k1", {"kty": "EC"})
            keys.set_policy(vault, "k1", {"lifetimeActions": [], "attributes": {"expiryTime": "P90D"}})
            certs.create(vault, "c1", CertificateCreate(policy=policy))
            certs.issuers.set(vault, "issuer1", IssuerInput(provider="Strongroom"))
            certs.contacts.set(vault, [Contact("a@example.com")])
        kv10_before = [k for k in store.keys("") if "kv10" in k]
        assert any(k.startswith("certcontacts/kv10") for k in kv10_before)
        registry.delete("kv1")
        registry.purge("kv1")
        left = list(store.keys(""))
        assert [k for k in left if "/kv1/" in k or k.endswith("/kv1")] == []
        assert [k for k in left if "kv10" in k] == kv10_before
    finally:
        storage.close()
