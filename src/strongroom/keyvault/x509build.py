"""X.509 for certificates: names, CSRs, issuance from a policy, PKCS#12 and PEM packaging, import parsing.

Pure functions over `cryptography` objects; certificates.py decides what to
store. A certificate Key Vault issues from a policy is valid from 10 minutes
before issuance (clock skew, as the service's own certificates are) for
`validity_months` calendar months.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import ipaddress
from dataclasses import dataclass
from datetime import UTC
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ObjectIdentifier

from strongroom.keyvault import jwk
from strongroom.keyvault.certpolicy import PEM, PKCS12
from strongroom.keyvault.durations import Duration
from strongroom.keyvault.errors import bad_parameter
from strongroom.keyvault.x509names import parse_subject

SKEW = 600


def _san_entries(sans: dict[str, Any]) -> list[x509.GeneralName]:
    out: list[x509.GeneralName] = []
    out += [x509.DNSName(d) for d in sans.get("dns_names", [])]
    out += [x509.RFC822Name(e) for e in sans.get("emails", [])]
    out += [x509.UniformResourceIdentifier(u) for u in sans.get("uris", [])]
    out += [x509.IPAddress(ipaddress.ip_address(a)) for a in sans.get("ipAddresses", [])]
    # UPNs are otherName 1.3.6.1.4.1.311.20.2.3 holding a UTF8String.
    for upn in sans.get("upns", []):
        raw = upn.encode()
        out.append(x509.OtherName(ObjectIdentifier("1.3.6.1.4.1.311.20.2.3"), b"\x0c" + _der_len(len(raw)) + raw))
    return out


def _der_len(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(body)]) + body


def _key_usage(usages: list[str]) -> x509.KeyUsage:
    u = set(usages)
    return x509.KeyUsage(
        digital_signature="digitalSignature" in u, content_commitment="nonRepudiation" in u,
        key_encipherment="keyEncipherment" in u, data_encipherment="dataEncipherment" in u,
        key_agreement="keyAgreement" in u, key_cert_sign="keyCertSign" in u, crl_sign="cRLSign" in u,
        encipher_only="encipherOnly" in u and "keyAgreement" in u, decipher_only="decipherOnly" in u and "keyAgreement" in u,
    )


def _hash_for(key: Any) -> hashes.SHA256 | hashes.SHA384 | hashes.SHA512:
    if isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.key_size == 384:
        return hashes.SHA384()
    if isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.key_size == 521:
        return hashes.SHA512()
    return hashes.SHA256()


def _extensions(x509_props: dict[str, Any]) -> list[tuple[x509.ExtensionType, bool]]:
    exts: list[tuple[x509.ExtensionType, bool]] = []
    entries = _san_entries(x509_props.get("sans") or {})
    if entries:
        exts.append((x509.SubjectAlternativeName(entries), False))
    if x509_props.get("key_usage"):
        exts.append((_key_usage(x509_props["key_usage"]), True))
    if x509_props.get("ekus"):
        exts.append((x509.ExtendedKeyUsage([ObjectIdentifier(o) for o in x509_props["ekus"]]), False))
    ca = bool((x509_props.get("basic_constraints") or {}).get("ca"))
    exts.append((x509.BasicConstraints(ca=ca, path_length=None), ca))
    return exts


def subject_name(x509_props: dict[str, Any]) -> x509.Name:
    return parse_subject(x509_props["subject"]) if x509_props.get("subject") else x509.Name([])


def build_csr(private_key: Any, x509_props: dict[str, Any]) -> x509.CertificateSigningRequest:
    builder = x509.CertificateSigningRequestBuilder().subject_name(subject_name(x509_props))
    for ext, critical in _extensions(x509_props):
        builder = builder.add_extension(ext, critical)
    return builder.sign(private_key, _hash_for(private_key))


def issue(
    public_key: Any, x509_props: dict[str, Any], now: int, signer_key: Any, issuer_name: x509.Name | None = None,
    issuer_cert: x509.Certificate | None = None,
) -> x509.Certificate:
    """A certificate for `public_key` per the policy, signed by `signer_key` (the subject's own key: self-signed)."""
    from datetime import datetime

    not_before = now - SKEW
    not_after = Duration("", months=x509_props["validity_months"]).add_to(now)
    subject = subject_name(x509_props)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_name or subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(datetime.fromtimestamp(not_before, UTC))
        .not_valid_after(datetime.fromtimestamp(not_after, UTC))
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), False)
    )
    if issuer_cert is not None:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_cert.public_key()), False  # type: ignore[arg-type]
        )
    for ext, critical in _extensions(x509_props):
        builder = builder.add_extension(ext, critical)
    return builder.sign(signer_key, _hash_for(signer_key))


def private_key_of(material: dict[str, Any], kty: str) -> Any:
    return jwk.private_key(material, kty)


def material_of(key: Any) -> tuple[str, dict[str, Any]]:
    """(kty, JWK material) of a `cryptography` private key."""
    if isinstance(key, rsa.RSAPrivateKey):
        if key.key_size not in jwk.RSA_SIZES:
            raise bad_parameter(f"RSA keys of {key.key_size} bits are not supported. Valid sizes: 2048, 3072, 4096.")
        return "RSA", jwk.rsa_to_jwk(key)
    if isinstance(key, ec.EllipticCurvePrivateKey):
        crv = jwk.curve_name(key.curve)
        return "EC", jwk.ec_to_jwk(key, crv)
    raise bad_parameter("Only RSA and EC certificate keys are supported.")


def same_public_key(a: Any, b: Any) -> bool:
    """Do two public keys (of any kind: RSA, EC, Ed25519, ...) match? Compared as SubjectPublicKeyInfo, since
    only RSA and EC keys have public_numbers()."""
    spki = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    return bool(a.public_bytes(*spki) == b.public_bytes(*spki))


def der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.DER)


def x5t(cert_der: bytes) -> str:
    """Key Vault's x5t: base64url SHA-1 thumbprint of the DER certificate."""
    return jwk.b64u(hashlib.sha1(cert_der).digest())  # noqa: S324 - the thumbprint format is SHA-1 by definition


# -- packaging the backing secret -------------------------------------------------


def package(content_type: str, key: Any | None, cert: x509.Certificate, chain: list[x509.Certificate], name: str) -> str:
    """The backing secret's value: base64 PKCS#12 (no password) or PEM (PKCS#8 key, then leaf, then chain)."""
    if content_type == PEM:
        out = b""
        if key is not None:
            out += key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        for c in [cert, *chain]:
            out += c.public_bytes(serialization.Encoding.PEM)
        return out.decode()
    pfx = pkcs12.serialize_key_and_certificates(
        name.encode(), key, cert, chain or None, serialization.NoEncryption()
    )
    return base64.b64encode(pfx).decode()


def pfx_to_pem(value: str) -> str | None:
    """A PKCS#12 secret value as PEM (key first, then the certificates), or None if it is not a PFX."""
    try:
        key, cert, extra = pkcs12.load_key_and_certificates(base64.b64decode(value, validate=True), None)
    except (ValueError, TypeError, binascii.Error):
        return None
    if cert is None:
        return None
    return package(PEM, key, cert, list(extra), "")


# -- import -------------------------------------------------------------------------


@dataclass
class Imported:
    key: Any
    cert: x509.Certificate
    chain: list[x509.Certificate]
    content_type: str  # what the value was


def parse_import(value: str, password: str | None) -> Imported:
    """ImportCertificate's `value`: base64 PFX, base64 of PEM text, or PEM text itself; the private key is required.

    The HTTP layer has checked the types (server/certificate_bodies.py)."""
    text = value.strip()
    raw: bytes
    if text.startswith("-----BEGIN"):
        raw = text.encode()
    else:
        try:
            raw = base64.b64decode(text, validate=True)
        except (ValueError, binascii.Error):
            raise bad_parameter("The certificate value is neither PEM nor base64.") from None
    if raw.lstrip().startswith(b"-----BEGIN"):
        return _parse_pem(raw, password)
    try:
        key, cert, extra = pkcs12.load_key_and_certificates(raw, password.encode() if password else None)
    except ValueError:
        raise bad_parameter(
            "The specified PEM X.509 certificate content is in an unexpected format, or the PFX password is wrong."
        ) from None
    if cert is None:
        raise bad_parameter("The PFX holds no certificate.")
    if key is None:
        raise bad_parameter("The certificate to import must contain its private key.")
    return Imported(key, cert, list(extra), PKCS12)


def _parse_pem(raw: bytes, password: Any) -> Imported:
    try:
        certs = x509.load_pem_x509_certificates(raw)
    except ValueError:
        raise bad_parameter("The specified PEM X.509 certificate content is in an unexpected format.") from None
    key = None
    for marker in (b"-----BEGIN PRIVATE KEY-----", b"-----BEGIN RSA PRIVATE KEY-----", b"-----BEGIN EC PRIVATE KEY-----",
                   b"-----BEGIN ENCRYPTED PRIVATE KEY-----"):
        start = raw.find(marker)
        if start >= 0:
            end_marker = marker.replace(b"BEGIN", b"END")
            end = raw.find(end_marker, start)
            block = raw[start : end + len(end_marker)] if end >= 0 else raw[start:]
            try:
                key = serialization.load_pem_private_key(block, password.encode() if password else None)
            except (ValueError, TypeError):
                raise bad_parameter("The private key in the PEM could not be read (wrong or missing password?).") from None
            break
    if key is None:
        raise bad_parameter("The certificate to import must contain its private key.")
    leaf = next((c for c in certs if same_public_key(c.public_key(), key.public_key())), None)
    if leaf is None:
        raise bad_parameter("No certificate in the PEM matches its private key.")
    return Imported(key, leaf, [c for c in certs if c is not leaf], PEM)


def policy_from_certificate(cert: x509.Certificate, kty: str, key_size: int | None, crv: str | None, content_type: str) -> dict[str, Any]:
    """The policy Key Vault derives for an imported certificate (issuer Unknown, EmailContacts at 80 %)."""
    sans: dict[str, list[str]] = {}
    try:
        ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        sans = {
            k: v for k, v in {
                "dns_names": ext.get_values_for_type(x509.DNSName),
                "emails": ext.get_values_for_type(x509.RFC822Name),
                "uris": ext.get_values_for_type(x509.UniformResourceIdentifier),
                "ipAddresses": [str(a) for a in ext.get_values_for_type(x509.IPAddress)],
            }.items() if v
        }
    except x509.ExtensionNotFound:
        pass
    try:
        ekus = [e.dotted_string for e in cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value]
    except x509.ExtensionNotFound:
        ekus = []
    usage: list[str] = []
    try:
        ku = cert.extensions.get_extension_for_class(x509.KeyUsage).value
        flags = {
            "digitalSignature": ku.digital_signature, "nonRepudiation": ku.content_commitment,
            "keyEncipherment": ku.key_encipherment, "dataEncipherment": ku.data_encipherment,
            "keyAgreement": ku.key_agreement, "keyCertSign": ku.key_cert_sign, "cRLSign": ku.crl_sign,
        }
        usage = [k for k, v in flags.items() if v]
    except x509.ExtensionNotFound:
        pass
    life = cert.not_valid_after_utc - cert.not_valid_before_utc
    months = max(1, min(1200, round(life.days / 30.4)))
    key_props: dict[str, Any] = {"exportable": True, "kty": kty, "key_size": key_size, "reuse_key": False}
    if crv:
        key_props["crv"] = crv
    return {
        "key_props": key_props,
        "secret_props": {"contentType": content_type},
        "x509_props": {
            "subject": cert.subject.rfc4514_string(), "sans": sans, "ekus": ekus, "key_usage": usage,
            "validity_months": months, "basic_constraints": {"ca": _is_ca(cert)},
        },
        "lifetime_actions": [{"trigger": {"lifetime_percentage": 80}, "action": {"action_type": "EmailContacts"}}],
        "issuer": {"name": "Unknown"},
        "attributes": {"enabled": True},
    }


def _is_ca(cert: x509.Certificate) -> bool:
    try:
        return bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        return False

