"""Vault objects -> file contents, byte for byte as the Azure provider writes them.

- `secret`: the value as stored. A certificate-backed secret (`kid` set) depends on
  its content type: `application/x-pem-file` is written as stored;
  `application/x-pkcs12` becomes the private key (PKCS#8 `PRIVATE KEY`) followed
  by the certificates, leaf first, then intermediates, then the root — or stays
  the stored base64 PFX with `objectFormat: pfx`. Then `objectEncoding` (base64,
  hex) decodes the text into the bytes written.
- `cert`: the leaf certificate (`cer`) as one PEM `CERTIFICATE` block.
- `key`: the public key as PEM `PUBLIC KEY` (PKIX), from the JWK's RSA n/e or
  EC crv/x/y (P-256, P-384, P-521).

Errors never quote the value being rendered.
"""

from __future__ import annotations

import base64
import binascii
from typing import TYPE_CHECKING, Any

from strongroom.csi.errors import FAILED_PRECONDITION, ProviderError

# `cryptography` is imported where a key or PFX is rendered, not here: a mount of plain
# secrets (the common case) then starts ~0.1 s sooner as a process.
if TYPE_CHECKING:
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import pkcs12

PEM_FILE = "application/x-pem-file"
PKCS12 = "application/x-pkcs12"
CURVES: dict[str, str] = {"P-256": "SECP256R1", "P-384": "SECP384R1", "P-521": "SECP521R1"}  # JWK crv -> ec class


class RenderError(ProviderError):
    def __init__(self, message: str) -> None:
        super().__init__(FAILED_PRECONDITION, message)


def pem_block(kind: str, der: bytes) -> bytes:
    """Go's pem.EncodeToMemory: 64-column base64 between BEGIN/END lines."""
    text = base64.b64encode(der).decode()
    body = "\n".join(text[i : i + 64] for i in range(0, len(text), 64))
    return f"-----BEGIN {kind}-----\n{body}\n-----END {kind}-----\n".encode()


# -- secrets ---------------------------------------------------------------


def secret_text(bundle: dict[str, Any], object_format: str = "") -> str:
    """The text a secret object yields before `objectEncoding` is applied."""
    value = bundle.get("value")
    if not isinstance(value, str):
        raise RenderError("secret value is nil")
    if not bundle.get("kid"):
        return value
    content_type = bundle.get("contentType") or ""
    if content_type == PEM_FILE:
        return value
    if content_type == PKCS12:
        if object_format.lower() == "pfx":
            return value
        return pfx_to_pem(value)
    raise RenderError(
        f"failed to get certificate: unknown content type '{content_type}' "
        f"(a certificate's secret is {PKCS12} or {PEM_FILE})"
    )


def _load_pfx(raw: bytes) -> pkcs12.PKCS12KeyAndCertificates:
    from cryptography.hazmat.primitives.serialization import pkcs12

    last: Exception | None = None
    for password in (None, b""):  # Key Vault's PFX has no password; some tools write an empty one
        try:
            return pkcs12.load_pkcs12(raw, password)
        except ValueError as exc:
            last = exc
    raise RenderError(f"the certificate's PFX cannot be opened without a password ({type(last).__name__})")


def pfx_to_pem(value: str) -> str:
    """Base64 PFX -> PEM private key (PKCS#8) followed by the chain, leaf first."""
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise RenderError("the certificate's secret is not base64 PFX data") from None
    from cryptography.hazmat.primitives import serialization

    bundle = _load_pfx(raw)
    out = b""
    if bundle.key is not None:
        out += bundle.key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    certs = ([bundle.cert.certificate] if bundle.cert else []) + [c.certificate for c in bundle.additional_certs]
    for cert in order_chain(certs):
        out += cert.public_bytes(serialization.Encoding.PEM)
    return out.decode()


def _ski(cert: x509.Certificate) -> bytes | None:
    from cryptography import x509

    try:
        return cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    except x509.ExtensionNotFound:
        return None


def _aki(cert: x509.Certificate) -> bytes | None:
    from cryptography import x509

    try:
        return cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value.key_identifier
    except x509.ExtensionNotFound:
        return None


def _issued_by(child: x509.Certificate, parent: x509.Certificate) -> bool:
    aki, ski = _aki(child), _ski(parent)
    if aki is not None and ski is not None:
        return aki == ski
    return child.issuer == parent.subject and child.subject != child.issuer


def order_chain(certs: list[x509.Certificate]) -> list[x509.Certificate]:
    """Leaf -> intermediates -> root, as the Azure provider's --construct-pem-chain does.

    The leaf is the certificate that issued no other. If the certificates do not
    form one complete chain, they keep the order they came in (the Azure
    provider does the same).
    """
    if len(certs) < 2:
        return certs
    parent_of: dict[int, int] = {}
    is_parent: set[int] = set()
    for i, child in enumerate(certs):
        for j, parent in enumerate(certs):
            if i != j and _issued_by(child, parent):
                parent_of[i] = j
                is_parent.add(j)
                break
    leaves = [i for i in range(len(certs)) if i not in is_parent]
    if not leaves:
        return certs
    chain: list[int] = []
    node: int | None = leaves[0]
    while node is not None and node not in chain:
        chain.append(node)
        node = parent_of.get(node)
    if len(chain) != len(certs):
        return certs
    return [certs[i] for i in chain]


def decode(content: str, object_encoding: str) -> bytes:
    """`objectEncoding`: the text is base64 or hex of the bytes to write (utf-8: as is)."""
    enc = object_encoding.lower()
    if enc in ("", "utf-8"):
        return content.encode("utf-8")
    if enc == "base64":
        try:
            return base64.b64decode(content, validate=True)
        except (binascii.Error, ValueError):
            raise RenderError("objectEncoding is base64 but the value is not valid base64") from None
    if enc == "hex":
        try:
            return binascii.unhexlify(content)
        except (binascii.Error, ValueError):
            raise RenderError("objectEncoding is hex but the value is not valid hex") from None
    raise RenderError("invalid objectEncoding; should be utf-8, base64 or hex")


def render_secret(bundle: dict[str, Any], object_format: str = "", object_encoding: str = "") -> bytes:
    return decode(secret_text(bundle, object_format), object_encoding)


# -- certificates and keys ----------------------------------------------------


def render_certificate(bundle: dict[str, Any]) -> bytes:
    cer = bundle.get("cer")
    if not isinstance(cer, str) or not cer:
        raise RenderError("certificate value is nil")
    try:
        der = base64.b64decode(cer, validate=True)
    except (binascii.Error, ValueError):
        raise RenderError("the certificate's cer field is not base64") from None
    return pem_block("CERTIFICATE", der)


def _b64url_int(value: Any, field: str) -> int:
    if not isinstance(value, str) or not value:
        raise RenderError(f"the key has no {field}")
    try:
        return int.from_bytes(base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)), "big")
    except (binascii.Error, ValueError):
        raise RenderError(f"the key's {field} is not base64url") from None


def render_key(bundle: dict[str, Any]) -> bytes:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec, rsa

    jwk = bundle.get("key")
    if not isinstance(jwk, dict):
        raise RenderError("key value is nil")
    kty = jwk.get("kty")
    if kty in ("RSA", "RSA-HSM"):
        public: Any = rsa.RSAPublicNumbers(_b64url_int(jwk.get("e"), "e"), _b64url_int(jwk.get("n"), "n")).public_key()
    elif kty in ("EC", "EC-HSM"):
        crv = jwk.get("crv")
        if crv not in CURVES:
            raise RenderError(f"curve {crv} is not supported (P-256, P-384 and P-521 are)")
        try:
            public = ec.EllipticCurvePublicNumbers(
                _b64url_int(jwk.get("x"), "x"), _b64url_int(jwk.get("y"), "y"), getattr(ec, CURVES[crv])()
            ).public_key()
        except ValueError:
            raise RenderError(f"the key's x/y is not a point on {crv}") from None
    else:
        raise RenderError(f"failed to get key: key type '{kty}' currently not supported (RSA and EC are)")
    return public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
