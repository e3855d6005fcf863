"""The instance's private certificate authority: the built-in `Strongroom` issuer.

Key Vault itself issues only self-signed certificates or goes through an
external CA; this CA lets a certificate policy say `"issuer": {"name":
"Strongroom"}` and get a leaf whose chain validates against one root that
clients trust (`GET /strongroom/pki/ca.pem`, or the chain inside the PFX).
The CA key is created once per instance, before any worker starts, and kept
behind the barrier like every other secret.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from strongroom.barrier import SealedStore, records

_KEY = "instance/private-ca"
VALIDITY_DAYS = 20 * 365


class PrivateCA:
    """The CA's key (ECDSA P-384) and self-signed certificate (20 years, pathlen 0)."""

    def __init__(self, key: ec.EllipticCurvePrivateKey, cert: x509.Certificate) -> None:
        self.key = key
        self.cert = cert

    @property
    def pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    @classmethod
    def load(cls, store: SealedStore) -> PrivateCA | None:
        rec = records.load(store, _KEY)
        if rec is None:
            return None
        key = serialization.load_pem_private_key(rec["key"].encode(), None)
        assert isinstance(key, ec.EllipticCurvePrivateKey)
        return cls(key, x509.load_pem_x509_certificate(rec["cert"].encode()))

    @classmethod
    def ensure(cls, store: SealedStore) -> PrivateCA:
        """The instance CA, created on first call (bootstrap calls this before workers start)."""
        found = cls.load(store)
        if found is not None:
            return found
        key = ec.generate_private_key(ec.SECP384R1())  # instant to make, so a first start stays fast
        now = datetime.now(UTC)
        name = x509.Name(
            [
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Strongroom"),
                x509.NameAttribute(NameOID.COMMON_NAME, f"Strongroom Private CA {uuid.uuid4().hex[:8]}"),
            ]
        )
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=10))
            .not_valid_after(now + timedelta(days=VALIDITY_DAYS))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True, content_commitment=False, key_encipherment=False, data_encipherment=False,
                    key_agreement=False, key_cert_sign=True, crl_sign=True, encipher_only=False, decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA384())
        )
        key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        record = {"key": key_pem.decode(), "cert": cert.public_bytes(serialization.Encoding.PEM).decode()}
        store.write({_KEY: records.dump(record)})
        return cls(key, cert)


def loader(store: SealedStore) -> Callable[[], PrivateCA]:
    """Load the CA once per process, on first use (bootstrap has created it)."""
    cached: list[PrivateCA] = []
    lock = threading.Lock()

    def get() -> PrivateCA:
        if not cached:
            with lock:
                if not cached:
                    cached.append(PrivateCA.ensure(store))
        return cached[0]

    return get
