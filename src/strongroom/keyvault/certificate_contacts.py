"""A vault's certificate contacts (SetCertificateContacts and friends): one record per vault."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from strongroom.barrier import SealedStore, records
from strongroom.keyvault.errors import KeyVaultError
from strongroom.keyvault.layout import CERTIFICATE_CONTACTS
from strongroom.keyvault.vaults import Vault

MAX_CONTACTS = 50


@dataclass
class Contact:
    email: str
    name: str | None = None
    phone: str | None = None

    def to_record(self) -> dict[str, Any]:
        """The stored (and answered) form: only the fields given."""
        return {k: v for k, v in (("email", self.email), ("name", self.name), ("phone", self.phone)) if v is not None}


class CertificateContacts:
    def __init__(self, store: SealedStore) -> None:
        self.store = store

    def set(self, vault: Vault, contacts: list[Contact]) -> list[dict[str, Any]]:
        clean = [c.to_record() for c in contacts]
        self.store.write({CERTIFICATE_CONTACTS.key(vault.key): records.dump({"contacts": clean})})
        return clean

    def get(self, vault: Vault) -> list[dict[str, Any]]:
        rec = records.load(self.store, CERTIFICATE_CONTACTS.key(vault.key))
        if rec is None:
            raise KeyVaultError(404, "ContactsNotFound", "Contacts not found")
        return rec["contacts"]

    def delete(self, vault: Vault) -> list[dict[str, Any]]:
        contacts = self.get(vault)
        self.store.write({CERTIFICATE_CONTACTS.key(vault.key): None})
        return contacts
