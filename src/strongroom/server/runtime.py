"""Everything one server process needs, wired together once.

The HTTP handlers receive a `Runtime` and call into the layers it holds; they
never open storage or read files themselves.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from strongroom.audit import AuditLog, AuditWriter
from strongroom.audit.table import audit_table
from strongroom.authz import Authorizer, AuthzStore
from strongroom.barrier import Barrier, SealedStore
from strongroom.barrier.keyring import load_or_create_keyring
from strongroom.events.watch import FeedWatcher
from strongroom.identity.directory import Directory, Tenant
from strongroom.identity.tokens import SigningKeys, TokenIssuer, TokenVerifier
from strongroom.keyvault import private_ca
from strongroom.keyvault.backup import BackupSealer
from strongroom.keyvault.ca_names import CANamePolicy, parse_allowed
from strongroom.keyvault.certificates import CertificateStore
from strongroom.keyvault.keys import KeyStore
from strongroom.keyvault.secrets import SecretStore
from strongroom.keyvault.vaults import VaultRegistry
from strongroom.server.identity_runtime import IdentityServices, build_identity
from strongroom.server.throttle import Throttle
from strongroom.settings import Settings
from strongroom.storage import Storage, open_storage

MANAGEMENT_AUDIENCES = [
    "https://management.azure.com",
    "https://management.azure.com/",
    "https://management.core.windows.net/",
]


@dataclass
class Runtime:
    settings: Settings
    storage: Storage
    store: SealedStore
    tenant: Tenant
    directory: Directory
    vaults: VaultRegistry
    secrets: SecretStore
    keys: KeyStore
    certificates: CertificateStore
    signing_keys: SigningKeys
    issuer: TokenIssuer
    vault_tokens: TokenVerifier
    management_tokens: TokenVerifier
    authorizer: Authorizer
    feed_watcher: FeedWatcher | None = None  # notices new change-feed entries for event subscribers
    audit: AuditWriter | None = None  # None only where nothing is served (tools, unit tests)
    identity: IdentityServices | None = None  # token service, federation, local cluster, MSI endpoint
    throttle: Throttle | None = None  # per-vault request limits; None when `up --no-throttle`

    @property
    def vault_audiences(self) -> list[str]:
        return self.vault_tokens.audiences

    def close(self) -> None:
        if self.identity is not None:
            self.identity.close()
        if self.audit is not None:
            self.audit.close()  # writes what is queued while storage is still open
        self.storage.close()


def token_issuer_url(settings: Settings, tenant_id: str) -> str:
    return f"{settings.authority}/{tenant_id}/v2.0"


def vault_audiences(settings: Settings) -> list[str]:
    resource = settings.vault_resource
    bare = resource.rsplit(":", 1)[0] if resource.count(":") == 2 else resource
    return sorted({resource, bare, "https://vault.azure.net"})


def ca_name_policy(settings: Settings) -> CANamePolicy:
    """What the private CA may sign: the admin's domains, never this instance's own names."""
    own_host = urlsplit(settings.authority).hostname or "localhost"
    return CANamePolicy(
        allowed=parse_allowed(settings.ca_allowed_domains),
        reserved_subtrees=(f"vault.{settings.dns_suffix}",),
        reserved_hosts=(own_host, "127.0.0.1", "::1"),
    )


def _audit_writer(settings: Settings, storage: Storage) -> AuditWriter:
    """The audit chain of this process; its table in a database file of its own on SQLite (`audit/table.py`)."""
    table = audit_table(storage)
    return AuditWriter(AuditLog(settings.state_dir, table, close_storage=table is not storage))


def build_runtime(settings: Settings) -> Runtime:
    """Open the instance's storage; the state must already be bootstrapped."""
    storage = open_storage(settings.storage)
    store = SealedStore(storage, Barrier(load_or_create_keyring(settings.state_dir)))
    directory = Directory(store)
    tenant = directory.tenant()
    if tenant is None:
        raise RuntimeError("the instance is not initialised; run `strongroom up` once")
    keys = SigningKeys(store)
    iss = token_issuer_url(settings, tenant.tenant_id)
    token_issuer = TokenIssuer(keys, iss, tenant.tenant_id)
    backups = BackupSealer(store)
    key_store = KeyStore(store, backups)
    return Runtime(
        settings=settings,
        storage=storage,
        store=store,
        tenant=tenant,
        directory=directory,
        vaults=VaultRegistry(store),
        secrets=SecretStore(store, backups),
        keys=key_store,
        certificates=CertificateStore(store, backups, key_store, private_ca.loader(store), ca_name_policy(settings)),
        feed_watcher=FeedWatcher(store),
        signing_keys=keys,
        issuer=token_issuer,
        vault_tokens=TokenVerifier(keys, iss, tenant.tenant_id, vault_audiences(settings)),
        management_tokens=TokenVerifier(keys, iss, tenant.tenant_id, MANAGEMENT_AUDIENCES),
        authorizer=Authorizer(tenant.admin_object_id, AuthzStore(store)),
        identity=build_identity(settings, store, directory, token_issuer, vault_audiences(settings) + MANAGEMENT_AUDIENCES),
        audit=_audit_writer(settings, storage),
        throttle=Throttle(settings.workers, unauthenticated=settings.unauthenticated_per_10s) if settings.throttle else None,
    )
