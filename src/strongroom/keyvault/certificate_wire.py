"""Azure wire models for certificates (certificates.json: CertificateBundle, CertificateItem,
DeletedCertificate*, CertificatePolicy, CertificateOperation, IssuerBundle, Contacts)."""

from __future__ import annotations

from typing import Any

from strongroom.keyvault.certificate_operations import COMPLETED, IN_PROGRESS, PENDING_DETAILS, Operation
from strongroom.keyvault.certificates import CertVersion
from strongroom.keyvault.objects import Head
from strongroom.keyvault.vaults import Vault


def certificate_attributes(cv: CertVersion, vault: Vault) -> dict[str, Any]:
    attrs: dict[str, Any] = {"enabled": cv.enabled}
    if cv.nbf is not None:
        attrs["nbf"] = cv.nbf
    if cv.exp is not None:
        attrs["exp"] = cv.exp
    attrs["created"] = cv.created
    attrs["updated"] = cv.updated
    attrs["recoverableDays"] = vault.retention_days
    attrs["recoveryLevel"] = vault.recovery_level
    return attrs


def policy(policy_rec: dict[str, Any], name: str, base_url: str) -> dict[str, Any]:
    return {"id": f"{base_url}/certificates/{name}/policy", **policy_rec}


def certificate_bundle(cv: CertVersion, policy_rec: dict[str, Any] | None, vault: Vault, base_url: str) -> dict[str, Any]:
    out: dict[str, Any] = {"id": f"{base_url}/certificates/{cv.name}/{cv.version}"}
    if not cv.pending:
        out["kid"] = f"{base_url}/keys/{cv.name}/{cv.version}"
        out["sid"] = f"{base_url}/secrets/{cv.name}/{cv.version}"
        out["x5t"] = cv.x5t
        out["cer"] = cv.cer
        out["contentType"] = cv.content_type
    out["attributes"] = certificate_attributes(cv, vault)
    if cv.tags:
        out["tags"] = cv.tags
    if policy_rec is not None:
        out["policy"] = policy(policy_rec, cv.name, base_url)
    if cv.preserve_order is not None:
        out["preserveCertOrder"] = cv.preserve_order
    return out


def certificate_item(cv: CertVersion, vault: Vault, base_url: str, versioned: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {"id": f"{base_url}/certificates/{cv.name}" + (f"/{cv.version}" if versioned else "")}
    out["attributes"] = certificate_attributes(cv, vault)
    if cv.tags:
        out["tags"] = cv.tags
    if cv.x5t:
        out["x5t"] = cv.x5t
    return out


def _deleted(head: Head, base_url: str, out: dict[str, Any]) -> dict[str, Any]:
    out["recoveryId"] = f"{base_url}/deletedcertificates/{head.name}"
    out["deletedDate"] = head.deleted
    out["scheduledPurgeDate"] = head.scheduled_purge
    return out


def deleted_certificate_bundle(
    head: Head, cv: CertVersion, policy_rec: dict[str, Any] | None, vault: Vault, base_url: str
) -> dict[str, Any]:
    return _deleted(head, base_url, certificate_bundle(cv, policy_rec, vault, base_url))


def deleted_certificate_item(head: Head, cv: CertVersion, vault: Vault, base_url: str) -> dict[str, Any]:
    return _deleted(head, base_url, certificate_item(cv, vault, base_url))


def operation(op: Operation, name: str, base_url: str, *, as_submitted: bool = False) -> dict[str, Any]:
    """CertificateOperation. `as_submitted`: the 202 of CreateCertificate, which Key Vault always answers
    inProgress, even for issuers that finish at once; the first poll then reports completed (or failed).
    The SDKs' pollers rely on it: a 202 that is already final leaves their result empty."""
    status, details, error = op.status, op.status_details, op.error
    if as_submitted and status != IN_PROGRESS:
        status, details, error = IN_PROGRESS, PENDING_DETAILS, None
    out: dict[str, Any] = {
        "id": f"{base_url}/certificates/{name}/pending",
        "issuer": op.issuer,
        "csr": op.csr,
        "cancellation_requested": op.cancellation_requested,
        "status": status,
    }
    if details:
        out["status_details"] = details
    if error:
        out["error"] = error
    if status == COMPLETED and op.target:
        out["target"] = f"{base_url}/certificates/{name}"
    if op.preserve_order is not None:
        out["preserveCertOrder"] = op.preserve_order
    out["request_id"] = op.request_id
    return out


def issuer_bundle(rec: dict[str, Any], base_url: str) -> dict[str, Any]:
    out: dict[str, Any] = {"id": f"{base_url}/certificates/issuers/{rec['name']}", "provider": rec["provider"]}
    if rec.get("account_id") is not None:
        out["credentials"] = {"account_id": rec["account_id"]}  # the password is write-only, as in Key Vault
    if rec.get("org_details") is not None:
        out["org_details"] = rec["org_details"]
    out["attributes"] = {"enabled": rec.get("enabled", True), "created": rec.get("created"), "updated": rec.get("updated")}
    return out


def issuer_item(rec: dict[str, Any], base_url: str) -> dict[str, Any]:
    return {"id": f"{base_url}/certificates/issuers/{rec['name']}", "provider": rec["provider"]}


def contacts(items: list[dict[str, Any]], base_url: str) -> dict[str, Any]:
    return {"id": f"{base_url}/certificates/contacts", "contacts": items}
