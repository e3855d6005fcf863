"""First start: the state dir and everything `strongroom up` promises to write there."""

from __future__ import annotations

import json
import os
from pathlib import Path

from strongroom.audit.log import AUDIT_FILE, REPLICA_FILE
from strongroom.barrier import Barrier, BarrierError, Keyring, MasterKey, open_store
from strongroom.barrier.keyring import load_or_create_keyring, master_key_path
from strongroom.identity.directory import TENANT_KEY, Directory
from strongroom.identity.msi import ensure_header
from strongroom.identity.tokens import SigningKeys
from strongroom.issuer.cluster import LOCAL, Cluster
from strongroom.keyvault.backup import BackupSealer
from strongroom.keyvault.private_ca import PrivateCA
from strongroom.server.tls import ensure_certificates
from strongroom.settings import Settings
from strongroom.util.files import write_private_file

ADMIN_FILE = "admin.json"


class StateError(Exception):
    """The state dir cannot be used as it is; the message says what to do."""


def ensure_replica_id(state: Path, storage_url: str) -> None:
    """Give a state dir on shared storage its own audit stream names (audit/log.py `replica_of`).

    The id is made here, once per state dir; a replica's state dir is a copy of a
    few files of the first one's (docs/operations.md), never of this one. A state
    dir that already has a chain (an instance moved by `admin migrate`) keeps its
    plain stream names, which the copy carried over.
    """
    path = state / REPLICA_FILE
    if not storage_url.startswith("sqlite:") and not path.exists() and not (state / AUDIT_FILE).exists():
        write_private_file(path, os.urandom(8).hex().encode() + b"\n")


def bootstrap(settings: Settings) -> dict:
    """Create what is missing (CA, certificates, master key, schema, tenant, admin); return admin.json's content."""
    state = settings.state_dir
    state.mkdir(parents=True, exist_ok=True)
    state.chmod(0o700)
    if not settings.insecure_http:
        ensure_certificates(state, settings.dns_suffix, settings.public_host)
    key_path = master_key_path(state)
    had_key = key_path.exists()
    # Without a key file yet, open with a throwaway key: only the tenant record's presence is looked at
    # (unopened) before the real key is made, so none is written next to a database sealed by another.
    store = open_store(settings.storage, Keyring.load(key_path) if had_key else Keyring([MasterKey.generate()]))  # migrates
    ensure_replica_id(state, settings.storage)
    try:
        if not had_key:
            if store.fingerprint(TENANT_KEY) is not None:
                raise StateError(
                    f"this database was sealed with a master key that is not at {key_path}: "
                    "restore that file or point STRONGROOM_MASTER_KEY_FILE at the right key"
                )
            store.barrier = Barrier(load_or_create_keyring(state))
        directory = Directory(store)
        try:
            directory.tenant()
        except BarrierError:
            raise StateError(f"the master key at {key_path} does not open this database; is it the right key?") from None
        SigningKeys(store).ensure()
        Cluster(store, LOCAL, "").ensure()  # the local cluster's own signing key, separate from the Entra one
        ensure_header(state)  # IDENTITY_HEADER of the managed-identity endpoint
        BackupSealer(store)  # creates the instance backup key before any worker starts
        PrivateCA.ensure(store)  # the `Strongroom` certificate issuer's CA, likewise made once
        admin_path = state / ADMIN_FILE
        tenant = directory.tenant()
        if tenant is None:
            tenant, admin, secret = directory.bootstrap()
            admin_doc = {
                "server": settings.authority,
                "tenantId": tenant.tenant_id,
                "clientId": admin.client_id,
                "clientSecret": secret,
                "subscriptionId": tenant.subscription_id,
                "caFile": str((state / "ca.pem").resolve()) if not settings.insecure_http else None,
            }
            write_private_file(admin_path, json.dumps(admin_doc, indent=2).encode() + b"\n")
        admin_doc = json.loads(admin_path.read_text())
        if admin_doc.get("server") != settings.authority:  # port or scheme changed since first start
            admin_doc["server"] = settings.authority
            write_private_file(admin_path, json.dumps(admin_doc, indent=2).encode() + b"\n")
        return admin_doc
    finally:
        store.close()


def read_admin(state_dir: Path) -> dict:
    return json.loads((state_dir / ADMIN_FILE).read_text())
