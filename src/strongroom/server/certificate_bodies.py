"""Certificate request bodies (certificates.json) parsed into the domain's typed inputs.

The JSON has been decoded strictly by `http.json_body`; here each body's shape is
checked and turned into the dataclass `keyvault` takes, with Key Vault's error
codes and messages (400 BadParameter), so the domain never reads raw JSON.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from cryptography import x509

from strongroom.keyvault import certpolicy
from strongroom.keyvault.certificate_contacts import MAX_CONTACTS, Contact
from strongroom.keyvault.certificate_issuers import IssuerInput, OrgDetails
from strongroom.keyvault.certificates import CertificateCreate, CertificateImport, CertificateMerge, CertificateUpdate
from strongroom.keyvault.validation import check_bool, check_tags
from strongroom.server.bodies import InvalidBody


def _object(body: Any, message: str) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise InvalidBody(message)
    return body


def _attributes(body: dict[str, Any]) -> dict[str, Any]:
    attrs = body.get("attributes") or {}
    if not isinstance(attrs, dict):
        raise InvalidBody("'attributes' must be an object.")
    return attrs


def _string(value: Any, name: str) -> str:
    if not isinstance(value, str):
        raise InvalidBody(f"'{name}' must be a string.")
    return value


def create(body: Any) -> CertificateCreate:
    body = _object(body, "The request body must be a JSON object.")
    policy = certpolicy.parse(body["policy"]) if body.get("policy") is not None else None
    attrs = _attributes(body)
    return CertificateCreate(
        policy=policy,
        enabled=check_bool(attrs.get("enabled"), "enabled"),
        tags=check_tags(body.get("tags")),
        preserve_order=check_bool(body.get("preserveCertOrder"), "preserveCertOrder"),
    )


def import_(body: Any) -> CertificateImport:
    body = _object(body, "The request body must be a JSON object with a 'value' property.")
    value, pwd = body.get("value"), body.get("pwd")
    if not isinstance(value, str) or not value.strip():
        raise InvalidBody("The 'value' property is required: the base64-encoded PFX or the PEM of the certificate.")
    if pwd is not None and not isinstance(pwd, str):
        raise InvalidBody("'pwd' must be a string.")
    policy = body.get("policy")
    if policy is not None and not isinstance(policy, dict):
        raise InvalidBody("'policy' must be an object.")
    attrs = _attributes(body)
    return CertificateImport(
        value=value,
        pwd=pwd,
        policy=policy or {},
        enabled=check_bool(attrs.get("enabled"), "enabled"),
        tags=check_tags(body.get("tags")),
        preserve_order=check_bool(body.get("preserveCertOrder"), "preserveCertOrder"),
    )


def policy_patch(body: Any) -> dict[str, Any]:
    """UpdateCertificatePolicy's body (and UpdateCertificate's `policy`): its sections are checked by the merge."""
    return _object(body, "The request body must be a certificate policy object.")


def update(body: Any) -> CertificateUpdate:
    body = _object(body, "The request body must be a JSON object.")
    attrs = _attributes(body)
    return CertificateUpdate(
        enabled=check_bool(attrs.get("enabled"), "enabled"),
        tags=check_tags(body["tags"]) if "tags" in body else None,
        set_tags="tags" in body,
        policy=policy_patch(body["policy"]) if body.get("policy") is not None else None,
    )


def merge(body: Any) -> CertificateMerge:
    if not isinstance(body, dict) or not isinstance(body.get("x5c"), list) or not body["x5c"]:
        raise InvalidBody("The request body must have 'x5c': the signed certificate chain, leaf first.")
    certs: list[x509.Certificate] = []
    for item in body["x5c"]:
        try:
            certs.append(x509.load_der_x509_certificate(base64.b64decode(item, validate=True)))
        except (ValueError, TypeError, binascii.Error):
            raise InvalidBody("Each x5c entry must be a base64-encoded DER certificate.") from None
    attrs = body.get("attributes") or {}
    return CertificateMerge(
        x5c=certs,
        enabled=check_bool(attrs.get("enabled"), "enabled") if isinstance(attrs, dict) else None,
        tags=check_tags(body["tags"]) if "tags" in body else None,
        set_tags="tags" in body,
    )


def cancellation(body: Any) -> bool:
    """UpdateCertificateOperation's body: whether cancellation is requested."""
    if not isinstance(body, dict) or not isinstance(body.get("cancellation_requested"), bool):
        raise InvalidBody("The request body must be {\"cancellation_requested\": true|false}.")
    return body["cancellation_requested"]


def issuer(body: Any) -> IssuerInput:
    body = _object(body, "The request body must be a JSON object.")
    given = IssuerInput()
    provider = body.get("provider")
    if provider is not None:
        if not isinstance(provider, str) or not provider:
            raise InvalidBody("'provider' must be a non-empty string.")
        given.provider = provider
    creds = body.get("credentials")
    if creds is not None:
        if not isinstance(creds, dict):
            raise InvalidBody("'credentials' must be an object.")
        if creds.get("account_id") is not None:
            given.account_id = _string(creds["account_id"], "credentials.account_id")
        if creds.get("pwd") is not None:
            given.pwd = _string(creds["pwd"], "credentials.pwd")
    org = body.get("org_details")
    if org is not None:
        if not isinstance(org, dict):
            raise InvalidBody("'org_details' must be an object.")
        admins = org.get("admin_details") or []
        if not isinstance(admins, list) or not all(isinstance(a, dict) for a in admins):
            raise InvalidBody("'org_details.admin_details' must be an array of objects.")
        clean = [
            {f: _string(a[f], f"admin_details.{f}") for f in ("first_name", "last_name", "email", "phone") if a.get(f) is not None}
            for a in admins
        ]
        given.org_details = OrgDetails(
            id=_string(org["id"], "org_details.id") if org.get("id") is not None else None, admin_details=clean
        )
    given.enabled = check_bool(_attributes(body).get("enabled"), "enabled")
    return given


def contacts(body: Any) -> list[Contact]:
    items = body.get("contacts") if isinstance(body, dict) else None
    if not isinstance(items, list) or not all(isinstance(c, dict) for c in items):
        raise InvalidBody("The request body must be {\"contacts\": [{\"email\", \"name\", \"phone\"}]}.")
    if len(items) > MAX_CONTACTS:
        raise InvalidBody(f"At most {MAX_CONTACTS} certificate contacts are allowed.")
    out = []
    for c in items:
        email = c.get("email")
        if not isinstance(email, str) or "@" not in email:
            raise InvalidBody("Each contact needs a valid 'email'.")
        name, phone = c.get("name"), c.get("phone")
        out.append(Contact(email, name if isinstance(name, str) else None, phone if isinstance(phone, str) else None))
    return out
