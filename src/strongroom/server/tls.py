"""The instance's local CA and the server certificate it signs."""

from __future__ import annotations

import datetime as dt
import ipaddress
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from strongroom.util.files import write_file_atomically, write_private_file

CA_FILE = "ca.pem"
CA_KEY_FILE = "ca.key"
CERT_FILE = "server.pem"
KEY_FILE = "server.key"


def server_names(dns_suffix: str, public_host: str = "localhost") -> list[str]:
    names = ["localhost", f"vault.{dns_suffix}", f"*.vault.{dns_suffix}"]
    return names if public_host in names else [*names, public_host]


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _make_ca(state_dir: Path) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Strongroom local CA"),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Strongroom")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(_now() - dt.timedelta(minutes=5))
        .not_valid_after(_now() + dt.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    write_private_file(state_dir / CA_KEY_FILE, _pem_key(key))
    write_file_atomically(state_dir / CA_FILE, cert.public_bytes(serialization.Encoding.PEM))
    return cert, key


def _load_ca(state_dir: Path) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    cert = x509.load_pem_x509_certificate((state_dir / CA_FILE).read_bytes())
    key = serialization.load_pem_private_key((state_dir / CA_KEY_FILE).read_bytes(), password=None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    return cert, key


def _cert_names(path: Path) -> set[str]:
    cert = x509.load_pem_x509_certificate(path.read_bytes())
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    if cert.not_valid_after_utc < _now() + dt.timedelta(days=7):
        return set()  # about to expire: treat as missing so it is re-issued
    return set(san.get_values_for_type(x509.DNSName))


def ensure_certificates(state_dir: Path, dns_suffix: str, public_host: str = "localhost") -> None:
    """Create the CA on first start; (re)issue the server certificate when its names are wrong."""
    if (state_dir / CA_FILE).exists() and (state_dir / CA_KEY_FILE).exists():
        ca_cert, ca_key = _load_ca(state_dir)
    else:
        ca_cert, ca_key = _make_ca(state_dir)
    names = server_names(dns_suffix, public_host)
    cert_path = state_dir / CERT_FILE
    if cert_path.exists() and (state_dir / KEY_FILE).exists() and set(names) <= _cert_names(cert_path):
        return
    key = ec.generate_private_key(ec.SECP256R1())
    san = [x509.DNSName(n) for n in names] + [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(_now() - dt.timedelta(minutes=5))
        .not_valid_after(_now() + dt.timedelta(days=825))
        .add_extension(x509.SubjectAlternativeName(san), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    write_private_file(state_dir / KEY_FILE, _pem_key(key))
    write_file_atomically(cert_path, cert.public_bytes(serialization.Encoding.PEM))


def check_key_pair(cert_file: str, key_file: str) -> None:
    """ValueError unless `cert_file` and `key_file` are a PEM certificate (chain) and its private key."""
    import ssl

    try:
        ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(cert_file, key_file)
    except ssl.SSLError as exc:
        reason = exc.reason or exc.__class__.__name__
        raise ValueError(f"{cert_file} and {key_file} are not a certificate and its private key ({reason})") from None
    except OSError as exc:
        raise ValueError(f"cannot read the certificate or key: {exc.strerror}") from None
