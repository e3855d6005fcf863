"""A certificate's stored policy (GetCertificatePolicy, UpdateCertificatePolicy).

The rules of a policy (parse, defaults, merge) are `certpolicy.py`'s; this module
keeps the policy record beside its certificate (`layout.CERTIFICATE_POLICIES`).
"""

from __future__ import annotations

from typing import Any

from strongroom.barrier import SealedStore, records
from strongroom.keyvault import certpolicy
from strongroom.keyvault.layout import CERTIFICATE_POLICIES
from strongroom.keyvault.objects import Changes
from strongroom.keyvault.vaults import Vault

Policy = dict[str, Any]  # the wire form, Key Vault's defaults filled in (certpolicy.parse)


class CertificatePolicies:
    def __init__(self, store: SealedStore) -> None:
        self.store = store

    def get(self, vault: Vault, name: str) -> Policy | None:
        return records.load(self.store, CERTIFICATE_POLICIES.key(vault.key, name))

    def put_changes(self, vault: Vault, name: str, policy: Policy) -> Changes:
        return {CERTIFICATE_POLICIES.key(vault.key, name): records.dump(policy)}

    @staticmethod
    def stamped(policy: Policy, stored: Policy | None, t: int) -> Policy:
        """`policy` with its created (kept from the stored one) and updated times."""
        return certpolicy.with_times(policy, stored["attributes"].get("created", t) if stored else t, t)

    @classmethod
    def merged(cls, stored: Policy, patch: dict[str, Any], t: int) -> Policy:
        """UpdateCertificatePolicy's rule: the given sections replace the stored ones, the rest stays."""
        return cls.stamped(certpolicy.merge(stored, patch), stored, t)
