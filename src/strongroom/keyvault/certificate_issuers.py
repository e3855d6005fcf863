"""Certificate issuers (SetCertificateIssuer and friends) and which one signs a policy's certificates.

`Self` signs with the certificate's own key, `Strongroom` (or an issuer record
whose provider is "Strongroom") with the instance's private CA; both complete
inside the create call. `Unknown` leaves the operation pending with its CSR until
a merge brings the signed chain. Other providers (DigiCert, GlobalSign...) cannot
be reached from here: their operations fail.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from strongroom.barrier import SealedStore, records
from strongroom.keyvault import certpolicy
from strongroom.keyvault.errors import KeyVaultError, bad_parameter
from strongroom.keyvault.layout import CERTIFICATE_ISSUERS
from strongroom.keyvault.validation import check_object_name
from strongroom.keyvault.vaults import Vault
from strongroom.util.clock import vault_now

ISSUER_PROVIDERS_WE_SIGN = ("Strongroom",)
Signer = Literal["self", "ca", "pending", "external"]


@dataclass
class OrgDetails:
    id: str | None = None
    admin_details: list[dict[str, str]] = field(default_factory=list)  # first_name, last_name, email, phone


@dataclass
class IssuerInput:
    """SetCertificateIssuer / UpdateCertificateIssuer: None leaves a property as it is (or unset)."""

    provider: str | None = None
    account_id: str | None = None
    pwd: str | None = field(default=None, repr=False)  # sealed with the record; never answered
    org_details: OrgDetails | None = None
    enabled: bool | None = None


def issuer_not_found(name: str) -> KeyVaultError:
    return KeyVaultError(404, "CertificateIssuerNotFound", f"Issuer not found: {name}")


class CertificateIssuers:
    def __init__(self, store: SealedStore) -> None:
        self.store = store

    def set(self, vault: Vault, name: str, given: IssuerInput, *, update: bool = False) -> dict[str, Any]:
        check_object_name(name)
        if any(name.lower() == b.lower() for b in certpolicy.BUILTIN_ISSUERS):
            raise bad_parameter(f"'{name}' is a reserved issuer name.")
        existing = records.load(self.store, CERTIFICATE_ISSUERS.key(vault.key, name))
        if update and existing is None:
            raise issuer_not_found(name)
        rec: dict[str, Any] = dict(existing) if (update and existing) else {"name": name}
        if given.provider is not None:
            rec["provider"] = given.provider
        if not rec.get("provider"):
            raise bad_parameter("The 'provider' property is required.")
        if given.account_id is not None:
            rec["account_id"] = given.account_id
        if given.pwd is not None:
            rec["pwd"] = given.pwd
        if given.org_details is not None:
            org: dict[str, Any] = {"admin_details": given.org_details.admin_details}
            if given.org_details.id is not None:
                org["id"] = given.org_details.id
            rec["org_details"] = org
        rec["enabled"] = rec.get("enabled", True) if given.enabled is None else given.enabled
        t = vault_now(vault.key)
        rec["created"] = rec.get("created") or t
        rec["updated"] = t
        self.store.write({CERTIFICATE_ISSUERS.key(vault.key, name): records.dump(rec)})
        return rec

    def get(self, vault: Vault, name: str) -> dict[str, Any]:
        check_object_name(name)
        rec = records.load(self.store, CERTIFICATE_ISSUERS.key(vault.key, name))
        if rec is None:
            raise issuer_not_found(name)
        return rec

    def delete(self, vault: Vault, name: str) -> dict[str, Any]:
        rec = self.get(vault, name)
        self.store.write({CERTIFICATE_ISSUERS.key(vault.key, name): None})
        return rec

    def list(self, vault: Vault) -> list[dict[str, Any]]:
        return [records.json_load(raw) for _, raw in self.store.scan(CERTIFICATE_ISSUERS.vault_prefix(vault.key))]

    def signer(self, vault: Vault, policy: dict[str, Any]) -> Signer:
        """Who signs the policy's certificates: "self", "ca" (the private CA), "pending" (a merge) or "external"."""
        name = certpolicy.issuer_name(policy)
        if name == certpolicy.SELF:
            return "self"
        if name == certpolicy.STRONGROOM:
            return "ca"
        if name == certpolicy.UNKNOWN:
            return "pending"
        rec = records.load(self.store, CERTIFICATE_ISSUERS.key(vault.key, name))
        if rec is None:
            raise bad_parameter(f"The issuer '{name}' is not defined in this vault. Create it with SetCertificateIssuer first.")
        if not rec.get("enabled", True):
            raise bad_parameter(f"The issuer '{name}' is disabled.")
        return "ca" if rec.get("provider") in ISSUER_PROVIDERS_WE_SIGN else "external"
