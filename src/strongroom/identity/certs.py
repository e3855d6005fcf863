"""Certificate credentials of app registrations: parsing, thumbprints, and self-signed certificates for --create-cert.

Only the public certificate is registered; the private key stays with the
client (az writes it next to the certificate into a local PEM file).
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import uuid
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID


class CertificateError(ValueError):
    """The certificate text is not a usable X.509 certificate with an RSA key."""


def load_certificate(text: str | bytes) -> x509.Certificate:
    """A PEM certificate, or base64 DER (with or without PEM armour lines), as `az --cert` accepts."""
    data = text.encode() if isinstance(text, str) else text
    try:
        if b"-----BEGIN CERTIFICATE-----" in data:
            cert = x509.load_pem_x509_certificate(data)
        else:
            body = b"".join(line.strip() for line in data.splitlines() if not line.startswith(b"-----"))
            try:
                der = base64.b64decode(body, validate=True)
            except binascii.Error:
                der = data  # raw DER bytes
            cert = x509.load_der_x509_certificate(der)
    except ValueError:
        raise CertificateError("the value is not a PEM or DER X.509 certificate") from None
    if not isinstance(cert.public_key(), rsa.RSAPublicKey):
        raise CertificateError("only certificates with RSA keys can sign client assertions (RS256/PS256)")
    return cert


def key_credential(cert: x509.Certificate, display_name: str | None = None) -> dict[str, Any]:
    """The stored form of a registered certificate (Graph's keyCredential plus what verification needs)."""
    return {
        "keyId": str(uuid.uuid4()),
        "displayName": display_name or cert.subject.rfc4514_string(),
        "thumbprint": cert.fingerprint(hashes.SHA1()).hex().upper(),  # Graph's customKeyIdentifier
        "thumbprintSha256": cert.fingerprint(hashes.SHA256()).hex(),
        "der": base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode(),
        "start": int(cert.not_valid_before_utc.timestamp()),
        "end": int(cert.not_valid_after_utc.timestamp()),
    }


def self_signed(common_name: str, years: int = 1) -> tuple[bytes, x509.Certificate]:
    """A new RSA key and a self-signed certificate for it; returns (key+certificate PEM, certificate)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name[:64] or "strongroom")])
    start = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + dt.timedelta(days=365 * years))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ) + cert.public_bytes(serialization.Encoding.PEM)
    return pem, cert
