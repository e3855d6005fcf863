"""Certificates: issuance, import, updates, soft delete, backup, renewal, merge.

Every certificate version has a backing key and a backing secret of the same
name and version (`managed`), written in the same atomic batch as the
certificate, as Key Vault keeps them. Certificates are versioned objects
(`objects.VersionedObjects`) under `layout.CERTIFICATES`. The other concepts
have their own modules: policies (`certificate_policies.py`), pending
operations (`certificate_operations.py`), issuers and who signs
(`certificate_issuers.py`), contacts (`certificate_contacts.py`).

Inputs arrive typed (`CertificateCreate`, ...): the HTTP layer parses request
bodies (server/certificate_bodies.py); this module holds the rules that need
the vault's state.
"""

from __future__ import annotations

import base64
import builtins
import json
import secrets as pysecrets
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from strongroom.audit import service as service_audit
from strongroom.barrier import SealedStore
from strongroom.events.feed import Change, ObjectChange, write_with_events
from strongroom.keyvault import certpolicy, jwk, x509build
from strongroom.keyvault.backup import BackupSealer
from strongroom.keyvault.ca_names import NOT_ALLOWED, CANamePolicy
from strongroom.keyvault.certificate_contacts import CertificateContacts
from strongroom.keyvault.certificate_issuers import CertificateIssuers, Signer
from strongroom.keyvault.certificate_operations import (
    COMPLETED,
    FAILED,
    IN_PROGRESS,
    Operation,
    PendingOperations,
    pending_not_found,
)
from strongroom.keyvault.certificate_policies import CertificatePolicies, Policy
from strongroom.keyvault.errors import KeyVaultError, bad_parameter
from strongroom.keyvault.keys import KeyStore, KeyVersion, key_event
from strongroom.keyvault.layout import CERTIFICATES
from strongroom.keyvault.objects import Changes, Head, Page, VersionedObjects, purge_protected
from strongroom.keyvault.private_ca import PrivateCA
from strongroom.keyvault.secrets import SecretVersion, secret_event, secret_objects
from strongroom.keyvault.validation import check_object_name
from strongroom.keyvault.vaults import Vault
from strongroom.util.clock import vault_now

RSA_CERT_OPS = ["sign", "verify", "wrapKey", "unwrapKey", "encrypt", "decrypt"]
EC_CERT_OPS = ["sign", "verify"]


@dataclass
class CertVersion:
    name: str
    version: str
    cer: str | None = None  # standard base64 DER; None while the version is pending
    x5t: str | None = None
    enabled: bool = True
    nbf: int | None = None
    exp: int | None = None
    created: int = 0
    updated: int = 0
    tags: dict[str, str] | None = None
    content_type: str = certpolicy.PKCS12
    preserve_order: bool | None = None

    @property
    def pending(self) -> bool:
        return self.cer is None


# -- typed inputs (parsed from request bodies by the HTTP layer) ---------------------------


@dataclass
class CertificateCreate:
    policy: Policy | None = None  # parsed (certpolicy.parse); None: the stored policy
    enabled: bool | None = None  # None: the policy's
    tags: dict[str, str] | None = None
    preserve_order: bool | None = None


@dataclass
class CertificateImport:
    value: str  # base64 PFX, base64 of PEM text, or PEM text
    pwd: str | None = field(default=None, repr=False)
    policy: dict[str, Any] = field(default_factory=dict)  # given sections, laid over the policy the certificate implies
    enabled: bool | None = None
    tags: dict[str, str] | None = None
    preserve_order: bool | None = None


@dataclass
class CertificateUpdate:
    enabled: bool | None = None
    tags: dict[str, str] | None = None
    set_tags: bool = False  # tags were given (null clears them)
    policy: dict[str, Any] | None = None  # a policy patch (certpolicy.merge)


@dataclass
class CertificateMerge:
    x5c: list[x509.Certificate]  # leaf first
    enabled: bool | None = None
    tags: dict[str, str] | None = None
    set_tags: bool = False


def certificate_not_found(name: str, version: str | None = None) -> KeyVaultError:
    return KeyVaultError(404, "CertificateNotFound", f"Certificate not found: {name}" + (f"/{version}" if version else ""))


def deleted_certificate_not_found(name: str) -> KeyVaultError:
    return KeyVaultError(404, "CertificateNotFound", f"Deleted Certificate not found: {name}")


def cert_event(change: Change, cv: CertVersion) -> ObjectChange:
    return ObjectChange("certificate", change, cv.name, cv.version, cv.nbf, cv.exp)


def new_version_id() -> str:
    return pysecrets.token_hex(16)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


class CertificateStore:
    def __init__(self, store: SealedStore, backups: BackupSealer, keys: KeyStore, ca: Callable[[], PrivateCA],
                 ca_names: CANamePolicy | None = None) -> None:
        self.store = store
        self.backups = backups
        self.keys = keys
        self._ca = ca
        self.ca_names = ca_names or CANamePolicy()  # default: the private CA signs no names at all
        self.objects = VersionedObjects(store, CERTIFICATES, CertVersion, certificate_not_found, deleted_certificate_not_found)
        self.secret_objects = secret_objects(store)
        self.policies = CertificatePolicies(store)
        self.operations = PendingOperations(store, self.objects)
        self.issuers = CertificateIssuers(store)
        self.contacts = CertificateContacts(store)

    def _write(self, vault: Vault, changes: Changes, events: list[ObjectChange]) -> None:
        if events:
            write_with_events(self.store, vault, changes, events)
        else:
            self.store.write(changes)

    # -- reading ---------------------------------------------------------------------

    def get(self, vault: Vault, name: str, version: str = "") -> tuple[CertVersion, Policy | None]:
        _, cv = self.objects.live(vault, name, version)
        return cv, self.policies.get(vault, name)

    def list(self, vault: Vault, maxresults: int | None, token: str | None, *, include_pending: bool = True,
             deleted: bool = False) -> Page[CertVersion]:
        keep = None if include_pending else (lambda head, cv: not cv.pending)
        return self.objects.list_heads(vault, maxresults, token, deleted=deleted, keep=keep)

    def list_versions(self, vault: Vault, name: str, maxresults: int | None, token: str | None) -> Page[CertVersion]:
        return self.objects.list_versions(vault, name, maxresults, token)

    def get_deleted(self, vault: Vault, name: str) -> tuple[Head, CertVersion, Policy | None]:
        head, cv = self.objects.deleted(vault, name)
        return head, cv, self.policies.get(vault, name)

    def get_policy(self, vault: Vault, name: str) -> Policy:
        self.objects.live_head(vault, name)
        policy = self.policies.get(vault, name)
        if policy is None:
            raise certificate_not_found(name)
        return policy

    def update_policy(self, vault: Vault, name: str, patch: dict[str, Any]) -> Policy:
        stored = self.get_policy(vault, name)
        policy = self.policies.merged(stored, patch, vault_now(vault.key))
        self.store.write(self.policies.put_changes(vault, name, policy))
        return policy

    # -- names shared with keys and secrets --------------------------------------------

    def _check_backing_names(self, vault: Vault, name: str) -> None:
        """A certificate takes its name for its key and secret: an unmanaged key or secret of that name blocks it."""
        for kind, coll in (("key", self.keys.objects), ("secret", self.secret_objects)):
            head = coll.head(vault, name)
            if head is None:
                continue
            current = coll.current(vault, head)
            if current is not None and not current.managed:
                raise KeyVaultError(
                    409, "Conflict",
                    f"A {kind} named '{name}' already exists; a certificate needs that name for its backing {kind}.",
                )

    def _check_name_free(self, vault: Vault, name: str) -> Head | None:
        check_object_name(name)
        head = self.objects.head(vault, name)
        if head is not None and head.deleted is not None:
            raise KeyVaultError(
                409, "Conflict",
                f"Certificate {name} is currently in a deleted but recoverable state, and its name cannot be reused; "
                "in this state, the certificate can only be recovered or purged.",
                "ObjectIsDeletedButRecoverable",
            )
        if head is None:
            self._check_backing_names(vault, name)
        return head

    def _backing(self, vault: Vault, name: str) -> builtins.list[tuple[VersionedObjects[Any], Head]]:
        out: list[tuple[VersionedObjects[Any], Head]] = []
        for coll in (self.keys.objects, self.secret_objects):
            h = coll.head(vault, name)
            if h is not None:
                out.append((coll, h))
        return out

    @staticmethod
    def _backing_event(change: Change, v: KeyVersion | SecretVersion) -> ObjectChange:
        return key_event(change, v) if isinstance(v, KeyVersion) else secret_event(change, v)

    def _backing_events(self, vault: Vault, name: str, change: Change) -> builtins.list[ObjectChange]:
        out: list[ObjectChange] = []
        for coll, h in self._backing(vault, name):
            v = coll.current(vault, h)
            if v is not None:
                out.append(self._backing_event(change, v))
        return out

    # -- issuance ------------------------------------------------------------------------

    def _key_for(self, vault: Vault, name: str, head: Head | None, policy: Policy) -> tuple[str, dict[str, Any]]:
        props = policy["key_props"]
        if props.get("reuse_key") and head is not None:
            current = self.keys.objects.version(vault, name, head.current)
            if current is not None and jwk.family(current.kty) == jwk.family(props["kty"]):
                return current.kty, current.material
        return props["kty"], jwk.generate(props["kty"], props.get("key_size"), props.get("crv"))

    def _issue(
        self, signer: Signer, private_key: Any, x509_props: dict[str, Any], t: int
    ) -> tuple[x509.Certificate, builtins.list[x509.Certificate]]:
        if signer == "ca":
            ca = self._ca()
            cert = x509build.issue(private_key.public_key(), x509_props, t, ca.key, ca.cert.subject, ca.cert)
            return cert, [ca.cert]
        return x509build.issue(private_key.public_key(), x509_props, t, private_key), []

    def _complete_writes(
        self, vault: Vault, name: str, version: str, kty: str, material: dict[str, Any], cert: x509.Certificate,
        chain: builtins.list[x509.Certificate], policy: Policy, *, enabled: bool, tags: dict[str, str] | None,
        preserve_order: bool | None,
    ) -> tuple[CertVersion, Changes, builtins.list[ObjectChange]]:
        """The certificate version, its backing key and secret: records and events for one batch."""
        t = vault_now(vault.key)
        spelled = self.objects.spelling(vault, name)
        cer = x509build.der(cert)
        nbf, exp = int(cert.not_valid_before_utc.timestamp()), int(cert.not_valid_after_utc.timestamp())
        existing = self.objects.version(vault, name, version)
        cv = CertVersion(
            name=spelled, version=version, cer=_b64(cer), x5t=x509build.x5t(cer), enabled=enabled, nbf=nbf, exp=exp,
            created=existing.created if existing else t, updated=t, tags=tags,
            content_type=policy["secret_props"]["contentType"], preserve_order=preserve_order,
        )
        ops = list(RSA_CERT_OPS if jwk.family(kty) == "RSA" else EC_CERT_OPS)
        kv, key_changes = self.keys.managed_version(vault, name, version, kty, material, ops, nbf=nbf, exp=exp, enabled=enabled)
        private = x509build.private_key_of(material, kty) if policy["key_props"].get("exportable", True) else None
        value = x509build.package(cv.content_type, private, cert, chain, spelled)
        sv = self._secret_version(vault, name, version, value, cv, t)
        changes = {
            **self.objects.put_changes(vault, Head(spelled, version), cv),
            **key_changes,
            **self.secret_objects.put_changes(vault, Head(sv.name, version), sv),
        }
        events = [cert_event(Change.NEW_VERSION, cv), key_event(Change.NEW_VERSION, kv), secret_event(Change.NEW_VERSION, sv)]
        return cv, changes, events

    def _secret_version(self, vault: Vault, name: str, version: str, value: str, cv: CertVersion, t: int) -> SecretVersion:
        head = self.secret_objects.head(vault, name)
        return SecretVersion(
            name=head.name if head else cv.name, version=version, value=value, content_type=cv.content_type,
            enabled=cv.enabled, nbf=cv.nbf, exp=cv.exp, created=t, updated=t,
            previous_version=head.current if head and head.current != version else None,
            kid=f"/keys/{cv.name}/{version}",  # relative: the wire layer prefixes the vault URL the client used
            managed=True,
        )

    def create(self, vault: Vault, name: str, given: CertificateCreate) -> Operation:
        """CreateCertificate: a new version from the policy (the stored one when none is given)."""
        head = self._check_name_free(vault, name)
        stored = self.policies.get(vault, name)
        if given.policy is not None:
            policy = given.policy
        elif stored is not None:
            policy = dict(stored)
        else:
            raise bad_parameter("A certificate policy is required to create a new certificate.")
        enabled = policy["attributes"].get("enabled", True) if given.enabled is None else given.enabled
        current_op = self.operations.load(vault, name)
        if current_op is not None and current_op.status == IN_PROGRESS:
            raise KeyVaultError(
                409, "Conflict", f"Certificate {name} has a pending operation. Complete it with a merge or delete it first."
            )
        return self._enroll(vault, name, head, policy, stored, enabled=enabled, tags=given.tags, preserve=given.preserve_order)

    def _enroll(
        self, vault: Vault, name: str, head: Head | None, policy: Policy, stored: Policy | None,
        *, enabled: bool, tags: dict[str, str] | None, preserve: bool | None,
    ) -> Operation:
        signer = self.issuers.signer(vault, policy)
        refused = self.ca_names.check(policy["x509_props"], x509build.subject_name(policy["x509_props"])) if signer == "ca" else []
        kty, material = self._key_for(vault, name, head, policy)
        private_key = x509build.private_key_of(material, kty)
        csr = x509build.build_csr(private_key, policy["x509_props"])
        version = new_version_id()
        t = vault_now(vault.key)
        spelled = head.name if head else name
        csr_b64 = _b64(csr.public_bytes(serialization.Encoding.DER))
        op = Operation(version=version, request_id=new_version_id(), issuer=dict(policy["issuer"]), csr=csr_b64,
                       preserve_order=preserve, enabled=enabled, tags=tags)
        changes = self.policies.put_changes(vault, name, self.policies.stamped(policy, stored, t))
        events: list[ObjectChange] = []
        if signer in ("self", "ca") and not refused:
            cert, chain = self._issue(signer, private_key, policy["x509_props"], t)
            _, complete, events = self._complete_writes(
                vault, name, version, kty, material, cert, chain, policy, enabled=enabled, tags=tags, preserve_order=preserve
            )
            changes.update(complete)
            op.status, op.status_details, op.target = COMPLETED, None, True
        else:
            pending = CertVersion(name=spelled, version=version, enabled=False, created=t, updated=t, tags=tags,
                                  content_type=policy["secret_props"]["contentType"], preserve_order=preserve)
            changes.update(self.objects.put_changes(vault, Head(spelled, version), pending))
            if refused:  # the instance admin did not allow these names (keyvault/ca_names.py)
                op.status, op.status_details = FAILED, None
                op.error = {
                    "code": NOT_ALLOWED,
                    "message": f"The issuer '{certpolicy.issuer_name(policy)}' (this instance's private CA) does not "
                    f"issue these names: {'; '.join(refused)}. The instance admin allows domains with "
                    "`strongroom up --ca-allowed-domains`.",
                }
            elif signer == "pending":
                op.kty, op.material = kty, material
            else:
                op.status, op.status_details = FAILED, None
                op.error = {
                    "code": "CertificateIssuerUnreachable",
                    "message": f"The issuer provider of '{certpolicy.issuer_name(policy)}' cannot be reached from this "
                    "vault; only the Self, Unknown and Strongroom issuers can issue certificates here.",
                }
        changes.update(self.operations.put_changes(vault, name, op))
        self._write(vault, changes, events)
        return op

    def renew(self, vault: Vault, name: str) -> Operation | None:
        """AutoRenew: the next version from the stored policy (new key unless reuse_key). None if it cannot renew."""
        head = self.objects.head(vault, name)
        policy = self.policies.get(vault, name)
        if head is None or head.deleted is not None or policy is None:
            return None
        if self.issuers.signer(vault, policy) not in ("self", "ca"):
            return None
        current = self.objects.current(vault, head)
        return self._enroll(
            vault, name, head, policy, policy, enabled=True, tags=current.tags if current else None,
            preserve=current.preserve_order if current else None,
        )

    def import_certificate(self, vault: Vault, name: str, given: CertificateImport) -> tuple[CertVersion, Policy]:
        self._check_name_free(vault, name)
        imported = x509build.parse_import(given.value, given.pwd)
        kty, material = x509build.material_of(imported.key)
        crv = material.get("crv")
        size = jwk.key_size(material, kty) if kty == "RSA" else jwk.CURVE_BITS[material["crv"]]
        content_type = (given.policy.get("secret_props") or {}).get("contentType") or imported.content_type
        derived = x509build.policy_from_certificate(imported.cert, kty, size, crv, content_type)
        for section in ("key_props", "issuer", "attributes"):
            if isinstance(given.policy.get(section), dict):
                overlay = {k: v for k, v in given.policy[section].items() if k not in ("kty", "key_size", "crv")}
                derived[section] = {**derived[section], **overlay}
        if given.policy.get("lifetime_actions") is not None:
            derived["lifetime_actions"] = given.policy["lifetime_actions"]
        policy = certpolicy.parse(derived)
        stored = self.policies.get(vault, name)
        t = vault_now(vault.key)
        cv, changes, events = self._complete_writes(
            vault, name, new_version_id(), kty, material, imported.cert, imported.chain, policy,
            enabled=True if given.enabled is None else given.enabled, tags=given.tags, preserve_order=given.preserve_order,
        )
        policy_rec = self.policies.stamped(policy, stored, t)
        changes.update(self.policies.put_changes(vault, name, policy_rec))
        self._write(vault, changes, events)
        return cv, policy_rec

    # -- updates --------------------------------------------------------------------------

    def update(self, vault: Vault, name: str, version: str, given: CertificateUpdate) -> tuple[CertVersion, Policy | None]:
        """UpdateCertificate: enabled and tags of one version (its key and secret follow), and the policy."""
        head, cv = self.objects.live(vault, name, version)
        changes: Changes = {}
        events: list[ObjectChange] = []
        t = vault_now(vault.key)
        if given.set_tags:
            cv.tags = given.tags
        if given.enabled is not None and not cv.pending:
            cv.enabled = given.enabled
            backing_collections: tuple[VersionedObjects[Any], ...] = (self.keys.objects, self.secret_objects)
            for coll in backing_collections:
                backing = coll.version(vault, name, cv.version)
                if backing is not None:
                    backing.enabled, backing.updated = given.enabled, t
                    changes.update(coll.version_changes(vault, backing))
                    events.append(self._backing_event(Change.UPDATED, backing))
        cv.updated = t
        changes.update(self.objects.version_changes(vault, cv))
        events.append(cert_event(Change.UPDATED, cv))
        policy = self.policies.get(vault, name)
        if given.policy is not None and policy is not None:
            policy = self.policies.merged(policy, given.policy, t)
            changes.update(self.policies.put_changes(vault, name, policy))
        self._write(vault, changes, events)
        return cv, policy

    # -- the pending operation's completion -----------------------------------------------

    def merge(self, vault: Vault, name: str, given: CertificateMerge) -> tuple[CertVersion, Policy | None]:
        """MergeCertificate: the CA-signed chain for a pending (issuer Unknown) operation."""
        op = self.operations.load(vault, name)
        head = self.objects.head(vault, name)
        if op is None or op.status != IN_PROGRESS or op.material is None or head is None or head.deleted is not None:
            raise pending_not_found(name)
        leaf, chain = given.x5c[0], given.x5c[1:]
        assert op.kty is not None
        private_key = x509build.private_key_of(op.material, op.kty)
        if not x509build.same_public_key(leaf.public_key(), private_key.public_key()):
            raise bad_parameter("Public key from x509 certificate and key of this instance doesn't match")
        policy = self.policies.get(vault, name)
        assert policy is not None
        cv, changes, events = self._complete_writes(
            vault, name, op.version, op.kty, op.material, leaf, chain, policy,
            enabled=op.enabled if given.enabled is None else given.enabled,
            tags=given.tags if given.set_tags else op.tags, preserve_order=op.preserve_order,
        )
        op.status, op.status_details, op.target, op.material, op.kty = COMPLETED, None, True, None, None
        changes.update(self.operations.put_changes(vault, name, op))
        self._write(vault, changes, events)
        return cv, policy

    # -- delete, recover, purge -----------------------------------------------------------

    def delete(self, vault: Vault, name: str) -> tuple[Head, CertVersion, Policy | None]:
        head, cv = self.objects.live(vault, name)
        t = vault_now(vault.key)
        events = [cert_event(Change.DELETED, cv), *self._backing_events(vault, name, Change.DELETED)]
        changes = self.objects.delete_changes(vault, head, t)
        for coll, h in self._backing(vault, name):
            if h.deleted is None:
                changes.update(coll.delete_changes(vault, h, t))
        self._write(vault, changes, events)
        return head, cv, self.policies.get(vault, name)

    def recover(self, vault: Vault, name: str) -> tuple[CertVersion, Policy | None]:
        head, cv = self.objects.deleted(vault, name)
        events = [cert_event(Change.RECOVERED, cv), *self._backing_events(vault, name, Change.RECOVERED)]
        changes = self.objects.recover_changes(vault, head)
        for coll, h in self._backing(vault, name):
            changes.update(coll.recover_changes(vault, h))
        self._write(vault, changes, events)
        return cv, self.policies.get(vault, name)

    def purge(self, vault: Vault, name: str, *, scheduled: bool = False) -> None:
        head, cv = self.objects.deleted(vault, name)
        if vault.purge_protection and not scheduled:
            raise purge_protected(vault)
        events = [cert_event(Change.PURGED, cv), *self._backing_events(vault, name, Change.PURGED)]
        changes = self.objects.purge_changes(vault, head.name)  # its policy and operation with it (layout.CERTIFICATES)
        for coll, h in self._backing(vault, name):
            changes.update(coll.purge_changes(vault, h.name))  # the key's rotation policy with it
        self._write(vault, changes, events)

    def purge_expired(self, vault: Vault) -> int:
        due = self.objects.due_for_purge(vault, vault_now(vault.key))
        for name in due:
            with service_audit.action("CertificatePurge", vault, "deletedcertificates", name):  # recorded as the service's own change
                self.purge(vault, name, scheduled=True)
        return len(due)

    # -- backup -----------------------------------------------------------------------------

    def backup(self, vault: Vault, name: str) -> str:
        head = self.objects.live_head(vault, name)
        key_head, secret_head = self.keys.objects.head(vault, name), self.secret_objects.head(vault, name)
        payload = {
            "kind": "certificate",
            "head": asdict(head),
            "versions": self.objects.raw_versions(vault, name),
            "policy": self.policies.get(vault, name),
            "keys": [asdict(key_head)] if key_head else [],
            "key_versions": self.keys.objects.raw_versions(vault, name),
            "secrets": [asdict(secret_head)] if secret_head else [],
            "secret_versions": self.secret_objects.raw_versions(vault, name),
        }
        return self.backups.seal(json.dumps(payload).encode())

    def restore(self, vault: Vault, blob: str, base_url: str) -> tuple[CertVersion, Policy | None]:
        payload = json.loads(self.backups.open(blob))
        if payload.get("kind") != "certificate":
            raise bad_parameter("The backup blob is not a certificate backup.")
        head = Head(**payload["head"])
        if self.objects.head(vault, head.name) is not None or any(
            coll.head(vault, head.name) is not None for coll in (self.keys.objects, self.secret_objects)
        ):
            raise KeyVaultError(
                409, "Conflict",
                f"There was a conflict restoring the certificate '{base_url}/certificates/{head.name}/{head.current}'. "
                "This can happen if either: a second certificate with the same name was created after the first "
                "certificate was deleted; thus trying to restore a certificate whose name is already in use. To fix "
                "this, rename the second certificate to something else so that the restore works. The second probable "
                "cause of this exception is when multiple operations are performed in parallel against the "
                "certificate. To avoid this error, perform operations against a certificate in a sequential manner.",
            )
        changes, current = self.objects.restore_changes(vault, head, payload["versions"])
        events: list[ObjectChange] = []
        backing: tuple[tuple[str, str, VersionedObjects[Any]], ...] = (
            ("keys", "key_versions", self.keys.objects), ("secrets", "secret_versions", self.secret_objects),
        )
        for heads_field, versions_field, coll in backing:
            for h in payload.get(heads_field, []):
                bh = Head(**h)
                bh.deleted = bh.scheduled_purge = None
                changes.update(coll.put_changes(vault, bh))
            for rec in payload.get(versions_field, []):
                v = coll.version_type(**rec)
                changes.update(coll.version_changes(vault, v))
                if v.version == head.current:
                    events.append(self._backing_event(Change.RESTORED, v))
        if payload.get("policy"):
            changes.update(self.policies.put_changes(vault, head.name, payload["policy"]))
        self._write(vault, changes, [cert_event(Change.RESTORED, current), *events])
        return current, payload.get("policy")

    # -- the instance CA ---------------------------------------------------------------------

    def ca_pem(self) -> bytes:
        return self._ca().pem
