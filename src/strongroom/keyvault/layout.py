"""Where a vault's contents live in storage: every kind's key prefixes, spelled once.

    secrets/{vault}/{name}                      a secret's head: current version, deletion state
    secretversions/{vault}/{name}/{version}     one version each
    keys/, keysversions/                        the same for keys ...
    keypolicies/{vault}/{name}                  ... with each key's rotation policy beside it
    certs/, certsversions/                      the same for certificates ...
    certpolicies/, certops/ {vault}/{name}      ... with each one's policy and pending operation
    certissuers/{vault}/{name}                  certificate issuers
    certcontacts/{vault}                        the vault's certificate contacts (one record)
    lifecycle/{vault}/{type}/{name}/{version}   markers of lifetime events already sent

Names are lowercased in keys (Key Vault compares them case-insensitively); the
records keep the original spelling. `VAULT_CONTENTS` is everything a vault holds,
so purging a vault asks each part for its keys instead of listing prefixes by hand.
This module imports nothing of the domain, so `vaults.py` can read it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Named:
    """Records keyed by vault and name (`{prefix}/{vault}/{name}`), or below that."""

    prefix: str

    def key(self, vault_key: str, name: str) -> str:
        return f"{self.prefix}/{vault_key}/{name.lower()}"

    def vault_prefix(self, vault_key: str) -> str:
        return f"{self.prefix}/{vault_key}/"

    def purge_prefixes(self, vault_key: str) -> tuple[str, ...]:
        return (self.vault_prefix(vault_key),)

    def purge_keys(self, vault_key: str) -> tuple[str, ...]:
        return ()


@dataclass(frozen=True)
class PerVault:
    """One record per vault (`{prefix}/{vault}`)."""

    prefix: str

    def key(self, vault_key: str) -> str:
        return f"{self.prefix}/{vault_key}"

    def purge_prefixes(self, vault_key: str) -> tuple[str, ...]:
        return ()

    def purge_keys(self, vault_key: str) -> tuple[str, ...]:
        return (self.key(vault_key),)


@dataclass(frozen=True)
class Versioned:
    """A kind of versioned object: heads, versions, and the records kept beside each object (purged with it)."""

    heads: str
    versions: str
    beside: tuple[Named, ...] = ()

    def head_prefix(self, vault_key: str) -> str:
        return f"{self.heads}/{vault_key}/"

    def head_key(self, vault_key: str, name: str) -> str:
        return f"{self.heads}/{vault_key}/{name.lower()}"

    def versions_prefix(self, vault_key: str, name: str) -> str:
        return f"{self.versions}/{vault_key}/{name.lower()}/"

    def version_key(self, vault_key: str, name: str, version: str) -> str:
        return f"{self.versions}/{vault_key}/{name.lower()}/{version.lower()}"

    def purge_prefixes(self, vault_key: str) -> tuple[str, ...]:
        own = (self.head_prefix(vault_key), f"{self.versions}/{vault_key}/")
        return own + tuple(b.vault_prefix(vault_key) for b in self.beside)

    def purge_keys(self, vault_key: str) -> tuple[str, ...]:
        return ()


KEY_POLICIES = Named("keypolicies")
CERTIFICATE_POLICIES = Named("certpolicies")
CERTIFICATE_OPERATIONS = Named("certops")

SECRETS = Versioned("secrets", "secretversions")  # older than the others: "secretversions", not "secretsversions"
KEYS = Versioned("keys", "keysversions", beside=(KEY_POLICIES,))
CERTIFICATES = Versioned("certs", "certsversions", beside=(CERTIFICATE_POLICIES, CERTIFICATE_OPERATIONS))
CERTIFICATE_ISSUERS = Named("certissuers")
CERTIFICATE_CONTACTS = PerVault("certcontacts")
LIFECYCLE_MARKERS = Named("lifecycle")

VAULT_CONTENTS: tuple[Versioned | Named | PerVault, ...] = (
    SECRETS, KEYS, CERTIFICATES, CERTIFICATE_ISSUERS, CERTIFICATE_CONTACTS, LIFECYCLE_MARKERS,
)
