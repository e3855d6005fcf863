"""Rendering as the Azure provider does, on Key Vault answers shaped exactly as the REST API returns them.

The certificate-backed secrets are built here with `cryptography`: a root, an
intermediate and a leaf, packed into a PFX the way Key Vault stores a
certificate's secret (base64 PKCS#12, content type application/x-pkcs12).
"""

from __future__ import annotations

import base64
import datetime as dt

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID

from strongroom.csi import render
from strongroom.csi.errors import ProviderError

VAULT = "https://kv1.vault.azure.net"


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _cert(subject: str, key, issuer: str, issuer_key, ca: bool) -> x509.Certificate:
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(_name(issuer))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()), critical=False)
    )
    return builder.sign(issuer_key, hashes.SHA256())


@pytest.fixture(scope="module")
def chain():
    root_key, mid_key, leaf_key = (ec.generate_private_key(ec.SECP256R1()) for _ in range(3))
    root = _cert("Root CA", root_key, "Root CA", root_key, ca=True)
    mid = _cert("Intermediate CA", mid_key, "Root CA", root_key, ca=True)
    leaf = _cert("web.example.com", leaf_key, "Intermediate CA", mid_key, ca=False)
    return leaf_key, leaf, mid, root


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _secret_bundle(value: str, content_type: str | None, kid: str | None) -> dict:
    bundle = {"value": value, "id": f"{VAULT}/secrets/web/0123456789abcdef0123456789abcdef", "attributes": {"enabled": True}}
    if content_type:
        bundle["contentType"] = content_type
    if kid:
        bundle["kid"] = f"{VAULT}/keys/web/0123456789abcdef0123456789abcdef"
        bundle["managed"] = True
    return bundle


def test_pfx_becomes_pkcs8_key_then_chain_leaf_first(chain):
    leaf_key, leaf, mid, root = chain
    # Bags deliberately out of order: root before intermediate.
    pfx = pkcs12.serialize_key_and_certificates(b"web", leaf_key, leaf, [root, mid], serialization.NoEncryption())
    out = render.render_secret(_secret_bundle(base64.b64encode(pfx).decode(), "application/x-pkcs12", "kid"))

    key_pem = leaf_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    assert out == key_pem + _pem(leaf) + _pem(mid) + _pem(root)
    assert out.startswith(b"-----BEGIN PRIVATE KEY-----\n")


def test_objectformat_pfx_keeps_the_stored_pfx(chain):
    leaf_key, leaf, mid, root = chain
    pfx = pkcs12.serialize_key_and_certificates(None, leaf_key, leaf, [mid], serialization.NoEncryption())
    stored = base64.b64encode(pfx).decode()
    bundle = _secret_bundle(stored, "application/x-pkcs12", "kid")
    assert render.render_secret(bundle, "pfx") == stored.encode()
    # with objectEncoding base64 the file holds the binary PFX, which opens again
    binary = render.render_secret(bundle, "pfx", "base64")
    assert binary == pfx
    assert pkcs12.load_pkcs12(binary, None).cert.certificate == leaf


def test_pem_content_type_is_written_as_stored(chain):
    leaf_key, leaf, mid, _ = chain
    stored = (_pem(leaf) + _pem(mid)).decode() + "trailing text kept as is\n"
    out = render.render_secret(_secret_bundle(stored, "application/x-pem-file", "kid"))
    assert out == stored.encode()


def test_a_secret_without_kid_is_never_converted(chain):
    leaf_key, leaf, _, _ = chain
    pfx = base64.b64encode(pkcs12.serialize_key_and_certificates(None, leaf_key, leaf, None, serialization.NoEncryption())).decode()
    assert render.render_secret(_secret_bundle(pfx, "application/x-pkcs12", None)) == pfx.encode()


def test_unknown_certificate_content_type_is_an_error():
    with pytest.raises(ProviderError, match="unknown content type 'text/plain'"):
        render.render_secret(_secret_bundle("x", "text/plain", "kid"))


def test_broken_pfx_error_does_not_echo_the_value():
    with pytest.raises(ProviderError) as info:
        render.render_secret(_secret_bundle("Q0FOQVJZ" * 4, "application/x-pkcs12", "kid"))
    assert "Q0FOQVJZ" not in str(info.value)


def test_incomplete_chain_keeps_the_order_it_came_in(chain):
    _, leaf, mid, root = chain
    other_key = ec.generate_private_key(ec.SECP256R1())
    stranger = _cert("Someone else", other_key, "Someone else", other_key, ca=True)
    assert render.order_chain([root, leaf, stranger]) == [root, leaf, stranger]
    assert render.order_chain([root, mid, leaf]) == [leaf, mid, root]


def test_cert_object_is_the_leaf_pem(chain):
    _, leaf, _, _ = chain
    bundle = {
        "id": f"{VAULT}/certificates/web/0123456789abcdef0123456789abcdef",
        "kid": f"{VAULT}/keys/web/0123456789abcdef0123456789abcdef",
        "sid": f"{VAULT}/secrets/web/0123456789abcdef0123456789abcdef",
        "x5t": "abc",
        "cer": base64.b64encode(leaf.public_bytes(serialization.Encoding.DER)).decode(),
        "attributes": {"enabled": True},
    }
    assert render.render_certificate(bundle) == _pem(leaf)


def _b64url(n: int, length: int | None = None) -> str:
    raw = n.to_bytes(length or (n.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _spki(public) -> bytes:
    return public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def test_rsa_key_object_is_the_public_key_pem():
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key()
    numbers = key.public_numbers()
    bundle = {"key": {"kid": f"{VAULT}/keys/k/1", "kty": "RSA-HSM", "key_ops": ["sign"], "n": _b64url(numbers.n), "e": _b64url(numbers.e)}}
    assert render.render_key(bundle) == _spki(key)


@pytest.mark.parametrize("crv, curve, size", [("P-256", ec.SECP256R1(), 32), ("P-384", ec.SECP384R1(), 48), ("P-521", ec.SECP521R1(), 66)])
def test_ec_key_object_is_the_public_key_pem(crv, curve, size):
    key = ec.generate_private_key(curve).public_key()
    n = key.public_numbers()
    bundle = {"key": {"kid": f"{VAULT}/keys/k/1", "kty": "EC", "crv": crv, "x": _b64url(n.x, size), "y": _b64url(n.y, size)}}
    assert render.render_key(bundle) == _spki(key)


@pytest.mark.parametrize(
    "jwk, message",
    [
        ({"kty": "oct", "k": "AAAA"}, "key type 'oct' currently not supported"),
        ({"kty": "EC", "crv": "P-256K", "x": "AA", "y": "AA"}, "curve P-256K is not supported"),
        ({"kty": "EC", "crv": "P-256", "x": "AQ", "y": "AQ"}, "not a point on P-256"),
    ],
)
def test_unsupported_keys_are_errors(jwk, message):
    with pytest.raises(ProviderError, match=message):
        render.render_key({"key": jwk})


def test_pem_block_wraps_at_64_columns_like_go():
    block = render.pem_block("CERTIFICATE", bytes(100)).decode().splitlines()
    assert block[0] == "-----BEGIN CERTIFICATE-----" and block[-1] == "-----END CERTIFICATE-----"
    assert [len(line) for line in block[1:-1]] == [64, 64, 8]  # 100 bytes -> 136 base64 characters
