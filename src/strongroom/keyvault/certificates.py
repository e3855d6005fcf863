"""Certificate semantics: policy, issuance, pending operations, import, soft delete, backup, renewal.

Every certificate version has a backing key and a backing secret of the same
name and version (`managed`), written in the same atomic batch as the
certificate, as Key Vault keeps them. Storage (all sealed):

    certs/{vault}/{name}, certsversions/{vault}/{name}/{version}   heads and CertVersions
    certpolicies/{vault}/{name}                                     the policy (wire form)
    certops/{vault}/{name}                                          the certificate operation
    certissuers/{vault}/{name}, certcontacts/{vault}                issuers, contacts

Issuers: `Self` signs with the certificate's own key, `Strongroom` (or an issuer
record whose provider is "Strongroom") with the instance's private CA; both
complete inside the create call. `Unknown` leaves the operation pending with
its CSR until a merge brings the signed chain. Other providers (DigiCert,
GlobalSign...) cannot be reached from here: their operations fail.
"""

from __future__ import annotations

import builtins
import base64
import binascii
import json
import secrets as pysecrets
from dataclasses import asdict, dataclass, field
from typing import Any, Callable

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from strongroom.audit import service as service_audit
from strongroom.barrier import SealedStore, records
from strongroom.events.feed import Change, ObjectChange, write_with_events
from strongroom.keyvault import certpolicy, jwk, x509build
from strongroom.keyvault.backup import BackupSealer
from strongroom.keyvault.errors import KeyVaultError, bad_parameter, deleted_secret_not_found, secret_not_found
from strongroom.keyvault.keys import KeyStore, KeyVersion, key_event
from strongroom.keyvault.objects import Collection, Head, Page, purge_protected
from strongroom.keyvault.ca_names import NOT_ALLOWED, CANamePolicy
from strongroom.keyvault.private_ca import PrivateCA
from strongroom.keyvault.secrets import SecretVersion
from strongroom.keyvault.validation import check_bool, check_object_name, check_tags
from strongroom.keyvault.vaults import Vault
from strongroom.util.clock import vault_now

IN_PROGRESS, COMPLETED, FAILED = "inProgress", "completed", "failed"
PENDING_DETAILS = (
    "Pending certificate created. Certificate request is in progress. This may take some time based on the issuer "
    "provider. Please check again later."
)
RSA_CERT_OPS = ["sign", "verify", "wrapKey", "unwrapKey", "encrypt", "decrypt"]
EC_CERT_OPS = ["sign", "verify"]
ISSUER_PROVIDERS_WE_SIGN = ("Strongroom",)
MAX_CONTACTS = 50


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


@dataclass
class Operation:
    version: str
    request_id: str
    issuer: dict[str, Any]
    csr: str
    status: str = IN_PROGRESS
    status_details: str | None = PENDING_DETAILS
    cancellation_requested: bool = False
    error: dict[str, str] | None = None
    target: bool = False  # completed: the certificate's URL is rendered as `target`
    preserve_order: bool | None = None
    enabled: bool = True
    tags: dict[str, str] | None = None
    # The pending key (sealed with the record) until a merge brings the signed certificate.
    kty: str | None = None
    material: dict[str, Any] | None = field(default=None, repr=False)


def certificate_not_found(name: str, version: str | None = None) -> KeyVaultError:
    return KeyVaultError(404, "CertificateNotFound", f"Certificate not found: {name}" + (f"/{version}" if version else ""))


def deleted_certificate_not_found(name: str) -> KeyVaultError:
    return KeyVaultError(404, "CertificateNotFound", f"Deleted Certificate not found: {name}")


def pending_not_found(name: str) -> KeyVaultError:
    return KeyVaultError(404, "PendingCertificateNotFound", f"Pending certificate not found: {name}")


def issuer_not_found(name: str) -> KeyVaultError:
    return KeyVaultError(404, "CertificateIssuerNotFound", f"Issuer not found: {name}")


def cert_event(change: Change, cv: CertVersion) -> ObjectChange:
    return ObjectChange("certificate", change, cv.name, cv.version, cv.nbf, cv.exp)


def secret_event(change: Change, sv: SecretVersion) -> ObjectChange:
    return ObjectChange("secret", change, sv.name, sv.version, sv.nbf, sv.exp)


def new_version_id() -> str:
    return pysecrets.token_hex(16)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _string(value: Any, name: str) -> str:
    if not isinstance(value, str):
        raise bad_parameter(f"'{name}' must be a string.")
    return value


class CertificateStore:
    def __init__(self, store: SealedStore, backups: BackupSealer, keys: KeyStore, ca: Callable[[], PrivateCA],
                 ca_names: CANamePolicy | None = None) -> None:
        self.store = store
        self.backups = backups
        self.keys = keys
        self._ca = ca
        self.ca_names = ca_names or CANamePolicy()  # default: the private CA signs no names at all
        self.objects: Collection[CertVersion] = Collection(
            store, "certs", lambda rec: CertVersion(**rec), certificate_not_found, deleted_certificate_not_found
        )
        self.secret_objects: Collection[SecretVersion] = Collection(
            store, "secrets", lambda rec: SecretVersion(**rec), secret_not_found, deleted_secret_not_found,
            versions_kind="secretversions",
        )

    # -- storage keys ----------------------------------------------------------------

    @staticmethod
    def _policy_key(vault: Vault, name: str) -> str:
        return f"certpolicies/{vault.key}/{name.lower()}"

    @staticmethod
    def _op_key(vault: Vault, name: str) -> str:
        return f"certops/{vault.key}/{name.lower()}"

    @staticmethod
    def _issuer_key(vault: Vault, name: str) -> str:
        return f"certissuers/{vault.key}/{name.lower()}"

    @staticmethod
    def _contacts_key(vault: Vault) -> str:
        return f"certcontacts/{vault.key}"

    def _write(self, vault: Vault, changes: dict[str, bytes | None], events: list[ObjectChange]) -> None:
        if events:
            write_with_events(self.store, vault, changes, events)
        else:
            self.store.write(changes)

    # -- reading ---------------------------------------------------------------------

    def policy(self, vault: Vault, name: str) -> dict[str, Any] | None:
        return records.load(self.store, self._policy_key(vault, name))

    def get(self, vault: Vault, name: str, version: str = "") -> tuple[CertVersion, dict[str, Any] | None]:
        _, cv = self.objects.live(vault, name, version)
        return cv, self.policy(vault, name)

    def list(self, vault: Vault, maxresults: int | None, token: str | None) -> Page[CertVersion]:
        return self.objects.list_heads(vault, maxresults, token, deleted=False)

    def list_deleted(self, vault: Vault, maxresults: int | None, token: str | None) -> Page[CertVersion]:
        return self.objects.list_heads(vault, maxresults, token, deleted=True)

    def list_versions(self, vault: Vault, name: str, maxresults: int | None, token: str | None) -> Page[CertVersion]:
        return self.objects.list_versions(vault, name, maxresults, token)

    def get_deleted(self, vault: Vault, name: str) -> tuple[Head, CertVersion, dict[str, Any] | None]:
        head, cv = self.objects.deleted(vault, name)
        return head, cv, self.policy(vault, name)

    def get_policy(self, vault: Vault, name: str) -> dict[str, Any]:
        self.objects.live_head(vault, name)
        policy = self.policy(vault, name)
        if policy is None:
            raise certificate_not_found(name)
        return policy

    # -- names shared with keys and secrets --------------------------------------------

    def _check_backing_names(self, vault: Vault, name: str) -> None:
        """A certificate takes its name for its key and secret: an unmanaged key or secret of that name blocks it."""
        for kind, coll in (("key", self.keys.objects), ("secret", self.secret_objects)):
            head = coll.head(vault, name)
            if head is None:
                continue
            current = coll.version(vault, head.name, head.current)
            if current is not None and not getattr(current, "managed", None):
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

    # -- issuance ------------------------------------------------------------------------

    def _signer(self, vault: Vault, policy: dict[str, Any]) -> str:
        """"self", "ca", "pending" or "external" for the policy's issuer."""
        name = certpolicy.issuer_name(policy)
        if name == certpolicy.SELF:
            return "self"
        if name == certpolicy.STRONGROOM:
            return "ca"
        if name == certpolicy.UNKNOWN:
            return "pending"
        rec = records.load(self.store, self._issuer_key(vault, name))
        if rec is None:
            raise bad_parameter(f"The issuer '{name}' is not defined in this vault. Create it with SetCertificateIssuer first.")
        if not rec.get("enabled", True):
            raise bad_parameter(f"The issuer '{name}' is disabled.")
        return "ca" if rec.get("provider") in ISSUER_PROVIDERS_WE_SIGN else "external"

    def _key_for(self, vault: Vault, name: str, head: Head | None, policy: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        props = policy["key_props"]
        if props.get("reuse_key") and head is not None:
            current = self.keys.objects.version(vault, name, head.current)
            if current is not None and jwk.family(current.kty) == jwk.family(props["kty"]):
                return current.kty, current.material
        return props["kty"], jwk.generate(props["kty"], props.get("key_size"), props.get("crv"))

    def _issue(
        self, signer: str, private_key: Any, x509_props: dict[str, Any], t: int
    ) -> tuple[x509.Certificate, builtins.list[x509.Certificate]]:
        if signer == "ca":
            ca = self._ca()
            cert = x509build.issue(private_key.public_key(), x509_props, t, ca.key, ca.cert.subject, ca.cert)
            return cert, [ca.cert]
        return x509build.issue(private_key.public_key(), x509_props, t, private_key), []

    def _complete_writes(
        self, vault: Vault, name: str, version: str, kty: str, material: dict[str, Any], cert: x509.Certificate,
        chain: builtins.list[x509.Certificate], policy: dict[str, Any], *, enabled: bool, tags: dict[str, str] | None,
        preserve_order: bool | None,
    ) -> tuple[CertVersion, dict[str, bytes | None], builtins.list[ObjectChange]]:
        """The certificate version, its backing key and secret: records and events for one batch."""
        t = vault_now(vault.key)
        head = self.objects.head(vault, name)
        spelled = head.name if head else name
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

    def create(self, vault: Vault, name: str, body: Any) -> Operation:
        """CreateCertificate: a new version from the policy (the stored one when the body has none)."""
        if not isinstance(body, dict):
            raise bad_parameter("The request body must be a JSON object.")
        head = self._check_name_free(vault, name)
        stored = self.policy(vault, name)
        if body.get("policy") is not None:
            policy = certpolicy.parse(body["policy"])
        elif stored is not None:
            policy = dict(stored)
        else:
            raise bad_parameter("A certificate policy is required to create a new certificate.")
        attrs = body.get("attributes") or {}
        if not isinstance(attrs, dict):
            raise bad_parameter("'attributes' must be an object.")
        enabled = check_bool(attrs.get("enabled"), "enabled")
        enabled = policy["attributes"].get("enabled", True) if enabled is None else enabled
        tags = check_tags(body.get("tags"))
        preserve = check_bool(body.get("preserveCertOrder"), "preserveCertOrder")
        current_op = self._load_op(vault, name)
        if current_op is not None and current_op.status == IN_PROGRESS:
            raise KeyVaultError(
                409, "Conflict", f"Certificate {name} has a pending operation. Complete it with a merge or delete it first."
            )
        return self._enroll(vault, name, head, policy, stored, enabled=enabled, tags=tags, preserve=preserve)

    def _enroll(
        self, vault: Vault, name: str, head: Head | None, policy: dict[str, Any], stored: dict[str, Any] | None,
        *, enabled: bool, tags: dict[str, str] | None, preserve: bool | None,
    ) -> Operation:
        signer = self._signer(vault, policy)
        refused = self.ca_names.check(policy["x509_props"], x509build.subject_name(policy["x509_props"])) if signer == "ca" else []
        if refused:
            signer = "refused"
        kty, material = self._key_for(vault, name, head, policy)
        private_key = x509build.private_key_of(material, kty)
        csr = x509build.build_csr(private_key, policy["x509_props"])
        version = new_version_id()
        t = vault_now(vault.key)
        spelled = head.name if head else name
        policy_rec = certpolicy.with_times(policy, stored["attributes"].get("created", t) if stored else t, t)
        csr_b64 = _b64(csr.public_bytes(serialization.Encoding.DER))
        op = Operation(version=version, request_id=new_version_id(), issuer=dict(policy["issuer"]), csr=csr_b64,
                       preserve_order=preserve, enabled=enabled, tags=tags)
        changes: dict[str, bytes | None] = {self._policy_key(vault, name): records.dump(policy_rec)}
        events: list[ObjectChange] = []
        if signer in ("self", "ca"):
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
            if signer == "pending":
                op.kty, op.material = kty, material
            elif signer == "refused":  # the instance admin did not allow these names (keyvault/ca_names.py)
                op.status, op.status_details = FAILED, None
                op.error = {
                    "code": NOT_ALLOWED,
                    "message": f"The issuer '{certpolicy.issuer_name(policy)}' (this instance's private CA) does not "
                    f"issue these names: {'; '.join(refused)}. The instance admin allows domains with "
                    "`strongroom up --ca-allowed-domains`.",
                }
            else:
                op.status, op.status_details = FAILED, None
                op.error = {
                    "code": "CertificateIssuerUnreachable",
                    "message": f"The issuer provider of '{certpolicy.issuer_name(policy)}' cannot be reached from this "
                    "vault; only the Self, Unknown and Strongroom issuers can issue certificates here.",
                }
        changes[self._op_key(vault, name)] = records.dump(asdict(op))
        self._write(vault, changes, events)
        return op

    def renew(self, vault: Vault, name: str) -> Operation | None:
        """AutoRenew: the next version from the stored policy (new key unless reuse_key). None if it cannot renew."""
        head = self.objects.head(vault, name)
        policy = self.policy(vault, name)
        if head is None or head.deleted is not None or policy is None:
            return None
        if self._signer(vault, policy) not in ("self", "ca"):
            return None
        current = self.objects.version(vault, name, head.current)
        return self._enroll(
            vault, name, head, policy, policy, enabled=True, tags=current.tags if current else None,
            preserve=current.preserve_order if current else None,
        )

    # -- import ----------------------------------------------------------------------------

    def import_certificate(self, vault: Vault, name: str, body: Any) -> tuple[CertVersion, dict[str, Any]]:
        if not isinstance(body, dict):
            raise bad_parameter("The request body must be a JSON object with a 'value' property.")
        self._check_name_free(vault, name)
        imported = x509build.parse_import(body.get("value"), body.get("pwd"))
        kty, material = x509build.material_of(imported.key)
        crv = material.get("crv")
        size = jwk.key_size(material, kty) if kty == "RSA" else jwk.CURVE_BITS[material["crv"]]
        given = body.get("policy")
        if given is not None and not isinstance(given, dict):
            raise bad_parameter("'policy' must be an object.")
        given = given or {}
        content_type = (given.get("secret_props") or {}).get("contentType") or imported.content_type
        derived = x509build.policy_from_certificate(imported.cert, kty, size, crv, content_type)
        for section in ("key_props", "issuer", "attributes"):
            if isinstance(given.get(section), dict):
                derived[section] = {**derived[section], **{k: v for k, v in given[section].items() if k not in ("kty", "key_size", "crv")}}
        if given.get("lifetime_actions") is not None:
            derived["lifetime_actions"] = given["lifetime_actions"]
        policy = certpolicy.parse(derived)
        attrs = body.get("attributes") or {}
        if not isinstance(attrs, dict):
            raise bad_parameter("'attributes' must be an object.")
        enabled = check_bool(attrs.get("enabled"), "enabled")
        stored = self.policy(vault, name)
        t = vault_now(vault.key)
        version = new_version_id()
        cv, changes, events = self._complete_writes(
            vault, name, version, kty, material, imported.cert, imported.chain, policy,
            enabled=True if enabled is None else enabled, tags=check_tags(body.get("tags")),
            preserve_order=check_bool(body.get("preserveCertOrder"), "preserveCertOrder"),
        )
        policy_rec = certpolicy.with_times(policy, stored["attributes"].get("created", t) if stored else t, t)
        changes[self._policy_key(vault, name)] = records.dump(policy_rec)
        self._write(vault, changes, events)
        return cv, policy_rec

    # -- updates --------------------------------------------------------------------------

    def update(self, vault: Vault, name: str, version: str, body: Any) -> tuple[CertVersion, dict[str, Any] | None]:
        """UpdateCertificate: enabled and tags of one version (its key and secret follow), and the policy."""
        if not isinstance(body, dict):
            raise bad_parameter("The request body must be a JSON object.")
        head, cv = self.objects.live(vault, name, version)
        attrs = body.get("attributes") or {}
        if not isinstance(attrs, dict):
            raise bad_parameter("'attributes' must be an object.")
        changes: dict[str, bytes | None] = {}
        events: list[ObjectChange] = []
        t = vault_now(vault.key)
        if "tags" in body:
            cv.tags = check_tags(body["tags"])
        enabled = check_bool(attrs.get("enabled"), "enabled")
        if enabled is not None and not cv.pending:
            cv.enabled = enabled
            for coll in (self.keys.objects, self.secret_objects):
                backing = coll.version(vault, name, cv.version)
                if backing is not None:
                    backing.enabled, backing.updated = enabled, t
                    changes.update(coll.version_changes(vault, backing))
                    if isinstance(backing, KeyVersion):
                        events.append(key_event(Change.UPDATED, backing))
                    else:
                        events.append(secret_event(Change.UPDATED, backing))
        cv.updated = t
        changes.update(self.objects.version_changes(vault, cv))
        events.append(cert_event(Change.UPDATED, cv))
        policy = self.policy(vault, name)
        if body.get("policy") is not None and policy is not None:
            policy = self._merged_policy(policy, body["policy"], t)
            changes[self._policy_key(vault, name)] = records.dump(policy)
        self._write(vault, changes, events)
        return cv, policy

    @staticmethod
    def _merged_policy(stored: dict[str, Any], patch: Any, t: int) -> dict[str, Any]:
        merged = certpolicy.merge(stored, patch)
        return certpolicy.with_times(merged, stored["attributes"].get("created", t), t)

    def update_policy(self, vault: Vault, name: str, body: Any) -> dict[str, Any]:
        stored = self.get_policy(vault, name)
        policy = self._merged_policy(stored, body, vault_now(vault.key))
        self.store.write({self._policy_key(vault, name): records.dump(policy)})
        return policy

    # -- the certificate operation --------------------------------------------------------

    def _load_op(self, vault: Vault, name: str) -> Operation | None:
        rec = records.load(self.store, self._op_key(vault, name))
        return None if rec is None else Operation(**rec)

    def get_operation(self, vault: Vault, name: str) -> Operation:
        check_object_name(name)
        op = self._load_op(vault, name)
        head = self.objects.head(vault, name)
        if op is None or head is None or head.deleted is not None:
            raise pending_not_found(name)
        return op

    def cancel_operation(self, vault: Vault, name: str, body: Any) -> Operation:
        op = self.get_operation(vault, name)
        if not isinstance(body, dict) or not isinstance(body.get("cancellation_requested"), bool):
            raise bad_parameter("The request body must be {\"cancellation_requested\": true|false}.")
        # As Key Vault: the flag is recorded; an issuer that already answered is not called back.
        op.cancellation_requested = body["cancellation_requested"]
        self.store.write({self._op_key(vault, name): records.dump(asdict(op))})
        return op

    def delete_operation(self, vault: Vault, name: str) -> Operation:
        op = self.get_operation(vault, name)
        self.store.write({self._op_key(vault, name): None})
        return op

    def merge(self, vault: Vault, name: str, body: Any) -> tuple[CertVersion, dict[str, Any] | None]:
        """MergeCertificate: the CA-signed chain for a pending (issuer Unknown) operation."""
        if not isinstance(body, dict) or not isinstance(body.get("x5c"), list) or not body["x5c"]:
            raise bad_parameter("The request body must have 'x5c': the signed certificate chain, leaf first.")
        op = self._load_op(vault, name)
        head = self.objects.head(vault, name)
        if op is None or op.status != IN_PROGRESS or op.material is None or head is None or head.deleted is not None:
            raise pending_not_found(name)
        certs: list[x509.Certificate] = []
        for item in body["x5c"]:
            try:
                certs.append(x509.load_der_x509_certificate(base64.b64decode(item, validate=True)))
            except (ValueError, TypeError, binascii.Error):
                raise bad_parameter("Each x5c entry must be a base64-encoded DER certificate.") from None
        leaf, chain = certs[0], certs[1:]
        assert op.kty is not None
        private_key = x509build.private_key_of(op.material, op.kty)
        if not x509build.same_public_key(leaf.public_key(), private_key.public_key()):
            raise bad_parameter("Public key from x509 certificate and key of this instance doesn't match")
        policy = self.policy(vault, name)
        assert policy is not None
        attrs = body.get("attributes") or {}
        enabled = check_bool(attrs.get("enabled"), "enabled") if isinstance(attrs, dict) else None
        tags = check_tags(body["tags"]) if "tags" in body else op.tags
        cv, changes, events = self._complete_writes(
            vault, name, op.version, op.kty, op.material, leaf, chain, policy,
            enabled=op.enabled if enabled is None else enabled, tags=tags, preserve_order=op.preserve_order,
        )
        op.status, op.status_details, op.target, op.material, op.kty = COMPLETED, None, True, None, None
        changes[self._op_key(vault, name)] = records.dump(asdict(op))
        self._write(vault, changes, events)
        return cv, policy

    # -- delete, recover, purge -----------------------------------------------------------

    def _backing(self, vault: Vault, name: str) -> builtins.list[tuple[Collection, Head]]:
        out = []
        for coll in (self.keys.objects, self.secret_objects):
            h = coll.head(vault, name)
            if h is not None:
                out.append((coll, h))
        return out

    def _backing_events(self, vault: Vault, name: str, change: Change) -> builtins.list[ObjectChange]:
        out: list[ObjectChange] = []
        for coll, h in self._backing(vault, name):
            v = coll.version(vault, h.name, h.current)
            if v is None:
                continue
            out.append(key_event(change, v) if isinstance(v, KeyVersion) else secret_event(change, v))
        return out

    def delete(self, vault: Vault, name: str) -> tuple[Head, CertVersion, dict[str, Any] | None]:
        head, cv = self.objects.live(vault, name)
        t = vault_now(vault.key)
        events = [cert_event(Change.DELETED, cv), *self._backing_events(vault, name, Change.DELETED)]
        changes = self.objects.delete_changes(vault, head, t)
        for coll, h in self._backing(vault, name):
            if h.deleted is None:
                changes.update(coll.delete_changes(vault, h, t))
        self._write(vault, changes, events)
        return head, cv, self.policy(vault, name)

    def recover(self, vault: Vault, name: str) -> tuple[CertVersion, dict[str, Any] | None]:
        head, cv = self.objects.deleted(vault, name)
        events = [cert_event(Change.RECOVERED, cv), *self._backing_events(vault, name, Change.RECOVERED)]
        changes = self.objects.recover_changes(vault, head)
        for coll, h in self._backing(vault, name):
            changes.update(coll.recover_changes(vault, h))
        self._write(vault, changes, events)
        return cv, self.policy(vault, name)

    def purge(self, vault: Vault, name: str, *, scheduled: bool = False) -> None:
        head, cv = self.objects.deleted(vault, name)
        if vault.purge_protection and not scheduled:
            raise purge_protected(vault)
        events = [cert_event(Change.PURGED, cv), *self._backing_events(vault, name, Change.PURGED)]
        changes = self.objects.purge_changes(vault, head.name)
        for coll, h in self._backing(vault, name):
            changes.update(coll.purge_changes(vault, h.name))
        changes[self._policy_key(vault, name)] = None
        changes[self._op_key(vault, name)] = None
        changes[f"keypolicies/{vault.key}/{name.lower()}"] = None
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
            "policy": self.policy(vault, name),
            "keys": [asdict(key_head)] if key_head else [],
            "key_versions": self.keys.objects.raw_versions(vault, name),
            "secrets": [asdict(secret_head)] if secret_head else [],
            "secret_versions": self.secret_objects.raw_versions(vault, name),
        }
        return self.backups.seal(json.dumps(payload).encode())

    def restore(self, vault: Vault, body: Any, base_url: str) -> tuple[CertVersion, dict[str, Any] | None]:
        if not isinstance(body, dict) or not isinstance(body.get("value"), str):
            raise bad_parameter("The request body must be a JSON object with a 'value' property holding the backup.")
        payload = json.loads(self.backups.open(body["value"]))
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
        head.deleted = head.scheduled_purge = None
        changes = self.objects.put_changes(vault, head)
        current = None
        for rec in payload["versions"]:
            cv = CertVersion(**rec)
            changes.update(self.objects.version_changes(vault, cv))
            if cv.version == head.current:
                current = cv
        events: list[ObjectChange] = []
        for heads_field, versions_field, coll, load in (
            ("keys", "key_versions", self.keys.objects, lambda r: KeyVersion(**r)),
            ("secrets", "secret_versions", self.secret_objects, lambda r: SecretVersion(**r)),
        ):
            for h in payload.get(heads_field, []):
                bh = Head(**h)
                bh.deleted = bh.scheduled_purge = None
                changes.update(coll.put_changes(vault, bh))
            for rec in payload.get(versions_field, []):
                v = load(rec)
                changes.update(coll.version_changes(vault, v))
                if v.version == head.current:
                    events.append(key_event(Change.RESTORED, v) if isinstance(v, KeyVersion) else secret_event(Change.RESTORED, v))
        if payload.get("policy"):
            changes[self._policy_key(vault, head.name)] = records.dump(payload["policy"])
        assert current is not None
        self._write(vault, changes, [cert_event(Change.RESTORED, current), *events])
        return current, payload.get("policy")

    # -- issuers ------------------------------------------------------------------------------

    def set_issuer(self, vault: Vault, name: str, body: Any, *, update: bool = False) -> dict[str, Any]:
        check_object_name(name)
        if not isinstance(body, dict):
            raise bad_parameter("The request body must be a JSON object.")
        if any(name.lower() == b.lower() for b in certpolicy.BUILTIN_ISSUERS):
            raise bad_parameter(f"'{name}' is a reserved issuer name.")
        existing = records.load(self.store, self._issuer_key(vault, name))
        if update and existing is None:
            raise issuer_not_found(name)
        rec: dict[str, Any] = dict(existing) if (update and existing) else {"name": name}
        provider = body.get("provider")
        if provider is not None:
            if not isinstance(provider, str) or not provider:
                raise bad_parameter("'provider' must be a non-empty string.")
            rec["provider"] = provider
        if not rec.get("provider"):
            raise bad_parameter("The 'provider' property is required.")
        creds = body.get("credentials")
        if creds is not None:
            if not isinstance(creds, dict):
                raise bad_parameter("'credentials' must be an object.")
            if creds.get("account_id") is not None:
                rec["account_id"] = _string(creds["account_id"], "credentials.account_id")
            if creds.get("pwd") is not None:
                rec["pwd"] = _string(creds["pwd"], "credentials.pwd")  # sealed with the record; never answered
        org = body.get("org_details")
        if org is not None:
            if not isinstance(org, dict):
                raise bad_parameter("'org_details' must be an object.")
            admins = org.get("admin_details") or []
            if not isinstance(admins, list) or not all(isinstance(a, dict) for a in admins):
                raise bad_parameter("'org_details.admin_details' must be an array of objects.")
            clean = [
                {f: _string(a[f], f"admin_details.{f}") for f in ("first_name", "last_name", "email", "phone") if a.get(f) is not None}
                for a in admins
            ]
            out_org: dict[str, Any] = {"admin_details": clean}
            if org.get("id") is not None:
                out_org["id"] = _string(org["id"], "org_details.id")
            rec["org_details"] = out_org
        attrs = body.get("attributes") or {}
        if not isinstance(attrs, dict):
            raise bad_parameter("'attributes' must be an object.")
        enabled = check_bool(attrs.get("enabled"), "enabled")
        rec["enabled"] = rec.get("enabled", True) if enabled is None else enabled
        t = vault_now(vault.key)
        rec["created"] = rec.get("created") or t
        rec["updated"] = t
        self.store.write({self._issuer_key(vault, name): records.dump(rec)})
        return rec

    def get_issuer(self, vault: Vault, name: str) -> dict[str, Any]:
        check_object_name(name)
        rec = records.load(self.store, self._issuer_key(vault, name))
        if rec is None:
            raise issuer_not_found(name)
        return rec

    def delete_issuer(self, vault: Vault, name: str) -> dict[str, Any]:
        rec = self.get_issuer(vault, name)
        self.store.write({self._issuer_key(vault, name): None})
        return rec

    def list_issuers(self, vault: Vault) -> builtins.list[dict[str, Any]]:
        return [records.json_load(raw) for _, raw in self.objects.scan(f"certissuers/{vault.key}/")]

    # -- contacts -----------------------------------------------------------------------------

    def set_contacts(self, vault: Vault, body: Any) -> builtins.list[dict[str, Any]]:
        contacts = body.get("contacts") if isinstance(body, dict) else None
        if not isinstance(contacts, list) or not all(isinstance(c, dict) for c in contacts):
            raise bad_parameter("The request body must be {\"contacts\": [{\"email\", \"name\", \"phone\"}]}.")
        if len(contacts) > MAX_CONTACTS:
            raise bad_parameter(f"At most {MAX_CONTACTS} certificate contacts are allowed.")
        clean = []
        for c in contacts:
            email = c.get("email")
            if not isinstance(email, str) or "@" not in email:
                raise bad_parameter("Each contact needs a valid 'email'.")
            clean.append({k: c[k] for k in ("email", "name", "phone") if isinstance(c.get(k), str)})
        self.store.write({self._contacts_key(vault): records.dump({"contacts": clean})})
        return clean

    def get_contacts(self, vault: Vault) -> builtins.list[dict[str, Any]]:
        rec = records.load(self.store, self._contacts_key(vault))
        if rec is None:
            raise KeyVaultError(404, "ContactsNotFound", "Contacts not found")
        return rec["contacts"]

    def delete_contacts(self, vault: Vault) -> builtins.list[dict[str, Any]]:
        contacts = self.get_contacts(vault)
        self.store.write({self._contacts_key(vault): None})
        return contacts

    # -- the instance CA ---------------------------------------------------------------------

    def ca_pem(self) -> bytes:
        return self._ca().pem
