"""Fixtures for the certificate tests: the official CertificateClient (and the secret and key clients that
see a certificate's backing objects) against the session's real server."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID


def unique(prefix: str = "c") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


@pytest.fixture(scope="session")
def cert_client(server, vault, admin_credential):
    from azure.keyvault.certificates import CertificateClient

    return CertificateClient(server.vault_url(vault), admin_credential, connection_verify=server.ca)


@pytest.fixture(scope="session")
def key_client(server, vault, admin_credential):
    from azure.keyvault.keys import KeyClient

    return KeyClient(server.vault_url(vault), admin_credential, connection_verify=server.ca)


def local_ca(common_name: str = "Test Root"):
    """A CA of the test's own, standing in for an external one."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(True, False, False, False, False, True, True, False, False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return key, cert


def leaf_for(public_key, subject: str, ca_key, ca_cert, dns: str | None = None, days: int = 90) -> x509.Certificate:
    now = datetime.now(UTC)
    builder = (
        x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
        .issuer_name(ca_cert.subject).public_key(public_key).serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5)).not_valid_after(now + timedelta(days=days))
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_cert.public_key()), critical=False)
    )
    if dns:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(dns)]), critical=False)
    return builder.sign(ca_key, hashes.SHA256())


def self_signed(subject: str = "imported.example", key=None) -> tuple[object, x509.Certificate]:
    """A private key and a self-signed certificate for it, made locally (to import)."""
    key = key or rsa.generate_private_key(65537, 2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=180))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(subject)]), critical=False)
        .sign(key, hashes.SHA256())
    )
    return key, cert
