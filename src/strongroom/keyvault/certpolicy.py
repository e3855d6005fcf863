"""Certificate policies (CertificatePolicy in certificates.json): parse, validate, default, merge.

The stored form is the wire form (snake_case as Key Vault sends it), completed
with Key Vault's defaults, so GET policy answers exactly what a create stored.
Defaults as the service fills them (Azure SDK recordings): RSA 2048, exportable,
new key per version, PKCS#12, EKUs serverAuth + clientAuth, key usage
digitalSignature + keyEncipherment, 12 months, AutoRenew at 80 % of the lifetime.
"""

from __future__ import annotations

import copy
import ipaddress
from typing import Any

from strongroom.keyvault import jwk
from strongroom.keyvault.errors import bad_parameter
from strongroom.keyvault.x509names import parse_subject

PKCS12 = "application/x-pkcs12"
PEM = "application/x-pem-file"
CONTENT_TYPES = (PKCS12, PEM)
SELF, UNKNOWN, STRONGROOM = "Self", "Unknown", "Strongroom"
BUILTIN_ISSUERS = (SELF, UNKNOWN, STRONGROOM)
KEY_USAGES = (
    "digitalSignature", "nonRepudiation", "keyEncipherment", "dataEncipherment", "keyAgreement", "keyCertSign",
    "cRLSign", "encipherOnly", "decipherOnly",
)
SERVER_AUTH, CLIENT_AUTH = "1.3.6.1.5.5.7.3.1", "1.3.6.1.5.5.7.3.2"
ACTION_TYPES = ("AutoRenew", "EmailContacts")
SAN_FIELDS = ("emails", "dns_names", "upns", "uris", "ipAddresses")
MAX_VALIDITY_MONTHS = 1200


def _obj(body: dict[str, Any], name: str) -> dict[str, Any]:
    value = body.get(name)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise bad_parameter(f"'{name}' must be an object.")
    return value


def _bool(value: Any, name: str, default: bool) -> bool:
    if value is None:
        return default
    if not isinstance(value, bool):
        raise bad_parameter(f"'{name}' must be true or false.")
    return value


def _strings(value: Any, name: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise bad_parameter(f"'{name}' must be an array of strings.")
    return list(value)


def _int(value: Any, name: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise bad_parameter(f"'{name}' must be an integer.")
    return value


def _key_props(raw: dict[str, Any], issuer: str) -> dict[str, Any]:
    kty = raw.get("kty") or "RSA"
    if not isinstance(kty, str) or kty not in jwk.RSA_TYPES + jwk.EC_TYPES:
        raise bad_parameter(f"The key type '{kty}' is not valid for a certificate. Valid types: RSA, RSA-HSM, EC, EC-HSM.")
    out: dict[str, Any] = {"exportable": _bool(raw.get("exportable"), "exportable", True), "kty": kty}
    size = _int(raw.get("key_size"), "key_size")
    if jwk.family(kty) == "RSA":
        size = size or 2048
        if size not in jwk.RSA_SIZES:
            raise bad_parameter(f"The key size {size} is not valid for an RSA key. Valid sizes: 2048, 3072, 4096.")
        out["key_size"] = size
    else:
        crv = raw.get("crv") or {256: "P-256", 384: "P-384", 521: "P-521"}.get(size or 256)
        if not isinstance(crv, str) or crv not in jwk.CURVES:
            raise bad_parameter(f"The curve '{raw.get('crv')}' is not valid. Valid curves: {', '.join(jwk.CURVES)}.")
        if size is not None and size != jwk.CURVE_BITS[crv]:
            raise bad_parameter(f"The key size {size} does not match curve {crv}.")
        out["key_size"] = jwk.CURVE_BITS[crv]
        out["crv"] = crv
    out["reuse_key"] = _bool(raw.get("reuse_key"), "reuse_key", False)
    return out


def _sans(raw: Any) -> dict[str, Any]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise bad_parameter("'sans' must be an object.")
    out: dict[str, Any] = {}
    for f in SAN_FIELDS:
        values = _strings(raw.get(f), f"sans.{f}")
        if f == "ipAddresses":
            for v in values:
                try:
                    ipaddress.ip_address(v)
                except ValueError:
                    raise bad_parameter(f"'{v}' is not a valid IP address.") from None
        if f == "dns_names":
            for v in values:
                if not v or len(v) > 253 or " " in v:
                    raise bad_parameter(f"'{v}' is not a valid DNS name.")
        if values:
            out[f] = values
    return out


def _x509_props(raw: dict[str, Any], kty: str) -> dict[str, Any]:
    subject = raw.get("subject")
    if subject is not None and not isinstance(subject, str):
        raise bad_parameter("'subject' must be a string.")
    sans = _sans(raw.get("sans"))
    if not subject and not sans:
        raise bad_parameter("The certificate policy needs a subject or subject alternative names.")
    if subject:
        parse_subject(subject)  # 400 now rather than at issuance
    ekus = _strings(raw.get("ekus"), "ekus") if raw.get("ekus") is not None else [SERVER_AUTH, CLIENT_AUTH]
    for oid in ekus:
        parts = oid.split(".")
        if len(parts) < 2 or not all(p.isdigit() for p in parts):
            raise bad_parameter(f"'{oid}' is not a valid extended key usage OID.")
    default_usage = ["digitalSignature", "keyEncipherment"] if jwk.family(kty) == "RSA" else ["digitalSignature"]
    usage = _strings(raw.get("key_usage"), "key_usage") if raw.get("key_usage") is not None else default_usage
    for u in usage:
        if u not in KEY_USAGES:
            raise bad_parameter(f"'{u}' is not a valid key usage. Valid values: {', '.join(KEY_USAGES)}.")
    months = _int(raw.get("validity_months"), "validity_months")
    months = 12 if months is None else months
    if not 1 <= months <= MAX_VALIDITY_MONTHS:
        raise bad_parameter(f"validity_months must be between 1 and {MAX_VALIDITY_MONTHS}.")
    out: dict[str, Any] = {"subject": subject or "", "sans": sans, "ekus": ekus, "key_usage": usage, "validity_months": months}
    constraints = raw.get("basic_constraints")
    ca = isinstance(constraints, dict) and constraints.get("ca") is True
    out["basic_constraints"] = {"ca": ca}
    return out


def _lifetime_actions(raw: Any, issuer: str, months: int) -> list[dict[str, Any]]:
    if raw is None:
        # Key Vault's default: AutoRenew at 80 % where it can issue, else tell the contacts.
        kind = "EmailContacts" if issuer == UNKNOWN else "AutoRenew"
        return [{"trigger": {"lifetime_percentage": 80}, "action": {"action_type": kind}}]
    if not isinstance(raw, list):
        raise bad_parameter("'lifetime_actions' must be an array.")
    out: list[dict[str, Any]] = []
    for item in raw:
        if not isinstance(item, dict):
            raise bad_parameter("Each lifetime action must be an object.")
        trigger, action = _obj(item, "trigger"), _obj(item, "action")
        given_type = action.get("action_type")
        canonical = next((a for a in ACTION_TYPES if isinstance(given_type, str) and a.lower() == given_type.lower()), None)
        if canonical is None:
            raise bad_parameter(f"The lifetime action type '{given_type}' is not valid. Valid types: AutoRenew, EmailContacts.")
        pct = _int(trigger.get("lifetime_percentage"), "lifetime_percentage")
        days = _int(trigger.get("days_before_expiry"), "days_before_expiry")
        if (pct is None) == (days is None):
            raise bad_parameter("A lifetime action trigger needs exactly one of 'lifetime_percentage' or 'days_before_expiry'.")
        if pct is not None and not 1 <= pct <= 99:
            raise bad_parameter("lifetime_percentage must be between 1 and 99.")
        if days is not None and not 1 <= days <= months * 27:
            raise bad_parameter(f"days_before_expiry must be between 1 and {months * 27} (validity_months x 27).")
        if canonical == "AutoRenew" and issuer == UNKNOWN:
            raise bad_parameter("AutoRenew is not supported for certificates whose issuer is 'Unknown'; use EmailContacts.")
        if any(a["action"]["action_type"] == canonical for a in out):
            raise bad_parameter(f"A certificate policy may have only one '{canonical}' lifetime action.")
        t = {"lifetime_percentage": pct} if pct is not None else {"days_before_expiry": days}
        out.append({"trigger": t, "action": {"action_type": canonical}})
    return out


def _issuer(raw: dict[str, Any]) -> dict[str, Any]:
    name = raw.get("name") or SELF
    if not isinstance(name, str):
        raise bad_parameter("'issuer.name' must be a string.")
    builtin = next((b for b in BUILTIN_ISSUERS if b.lower() == name.lower()), None)
    out: dict[str, Any] = {"name": builtin or name}
    if raw.get("cty") is not None:
        if not isinstance(raw["cty"], str):
            raise bad_parameter("'issuer.cty' must be a string.")
        out["cty"] = raw["cty"]
    if raw.get("cert_transparency") is not None:
        out["cert_transparency"] = _bool(raw["cert_transparency"], "cert_transparency", False)
    return out


def parse(body: Any) -> dict[str, Any]:
    """A full policy (stored form) from a CertificatePolicy body, Key Vault's defaults filled in."""
    if not isinstance(body, dict):
        raise bad_parameter("'policy' must be an object.")
    issuer = _issuer(_obj(body, "issuer"))
    key_props = _key_props(_obj(body, "key_props"), issuer["name"])
    content_type = _obj(body, "secret_props").get("contentType") or PKCS12
    if content_type not in CONTENT_TYPES:
        raise bad_parameter(f"The content type '{content_type}' is not valid. Valid values: {PKCS12}, {PEM}.")
    x509 = _x509_props(_obj(body, "x509_props"), key_props["kty"])
    attrs = _obj(body, "attributes")
    return {
        "key_props": key_props,
        "secret_props": {"contentType": content_type},
        "x509_props": x509,
        "lifetime_actions": _lifetime_actions(body.get("lifetime_actions"), issuer["name"], x509["validity_months"]),
        "issuer": issuer,
        "attributes": {"enabled": _bool(attrs.get("enabled"), "enabled", True)},
    }


def merge(stored: dict[str, Any], patch: Any) -> dict[str, Any]:
    """UpdateCertificatePolicy: the given properties replace the stored ones, the rest stays."""
    if not isinstance(patch, dict):
        raise bad_parameter("The request body must be a certificate policy object.")
    merged = copy.deepcopy(stored)
    for section in ("key_props", "secret_props", "x509_props", "issuer", "attributes"):
        if patch.get(section) is not None:
            if not isinstance(patch[section], dict):
                raise bad_parameter(f"'{section}' must be an object.")
            merged[section] = {**merged.get(section, {}), **patch[section]}
    if "lifetime_actions" in patch:
        merged["lifetime_actions"] = patch["lifetime_actions"]
    # Defaults that depend on other fields are recomputed from what the caller set.
    if patch.get("key_props") and "kty" in patch["key_props"] and "key_size" not in patch["key_props"]:
        merged["key_props"].pop("key_size", None)
        merged["key_props"].pop("crv", None)
    return parse(merged)


def with_times(policy: dict[str, Any], created: int, updated: int) -> dict[str, Any]:
    return {**policy, "attributes": {**policy["attributes"], "created": created, "updated": updated}}


def issuer_name(policy: dict[str, Any]) -> str:
    return policy["issuer"]["name"]
