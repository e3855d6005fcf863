"""A certificate's pending operation (GetCertificateOperation, cancel, delete), one record per certificate.

CreateCertificate writes it; for the `Unknown` issuer it stays in progress,
holding the CSR and the pending key (sealed with the record), until a merge
brings the signed chain (`CertificateStore.merge`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from strongroom.barrier import SealedStore, records
from strongroom.keyvault.errors import KeyVaultError
from strongroom.keyvault.layout import CERTIFICATE_OPERATIONS
from strongroom.keyvault.objects import Changes, VersionedObjects, dump
from strongroom.keyvault.validation import check_object_name
from strongroom.keyvault.vaults import Vault

IN_PROGRESS, COMPLETED, FAILED = "inProgress", "completed", "failed"
PENDING_DETAILS = (
    "Pending certificate created. Certificate request is in progress. This may take some time based on the issuer "
    "provider. Please check again later."
)


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


def pending_not_found(name: str) -> KeyVaultError:
    return KeyVaultError(404, "PendingCertificateNotFound", f"Pending certificate not found: {name}")


class PendingOperations:
    """The operations of the certificates in `certificates` (an operation answers only while its certificate lives)."""

    def __init__(self, store: SealedStore, certificates: VersionedObjects[Any]) -> None:
        self.store = store
        self.certificates = certificates

    def load(self, vault: Vault, name: str) -> Operation | None:
        rec = records.load(self.store, CERTIFICATE_OPERATIONS.key(vault.key, name))
        return None if rec is None else Operation(**rec)

    def put_changes(self, vault: Vault, name: str, op: Operation) -> Changes:
        return {CERTIFICATE_OPERATIONS.key(vault.key, name): dump(op)}

    def get(self, vault: Vault, name: str) -> Operation:
        check_object_name(name)
        op = self.load(vault, name)
        head = self.certificates.head(vault, name)
        if op is None or head is None or head.deleted is not None:
            raise pending_not_found(name)
        return op

    def cancel(self, vault: Vault, name: str, requested: bool) -> Operation:
        op = self.get(vault, name)
        # As Key Vault: the flag is recorded; an issuer that already answered is not called back.
        op.cancellation_requested = requested
        self.store.write(self.put_changes(vault, name, op))
        return op

    def delete(self, vault: Vault, name: str) -> Operation:
        op = self.get(vault, name)
        self.store.write({CERTIFICATE_OPERATIONS.key(vault.key, name): None})
        return op
