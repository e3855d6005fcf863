"""The built-in `Strongroom` issuer: certificates signed by the instance's private CA, whose chains validate."""

from __future__ import annotations

import base64
import ssl
from datetime import UTC, datetime

import httpx
import pytest
from azure.keyvault.certificates import CertificateClient, CertificateContentType, CertificatePolicy
from azure.keyvault.secrets import SecretClient
from cryptography import x509
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.verification import PolicyBuilder, Store, VerificationError

from .conftest import unique


@pytest.fixture(scope="module")
def ca_cert(server) -> x509.Certificate:
    r = httpx.get(f"{server.url}/strongroom/pki/ca.pem", verify=ssl.create_default_context(cafile=server.ca))
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/x-pem-file")
    return x509.load_pem_x509_certificate(r.content)


def _verify(leaf: x509.Certificate, roots: list[x509.Certificate], dns: str) -> list[x509.Certificate]:
    verifier = PolicyBuilder().store(Store(roots)).time(datetime.now(UTC)).build_server_verifier(x509.DNSName(dns))
    return verifier.verify(leaf, [])


def test_ca_certificate_is_a_ca(ca_cert):
    assert ca_cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is True
    assert ca_cert.extensions.get_extension_for_class(x509.KeyUsage).value.key_cert_sign is True
    assert ca_cert.issuer == ca_cert.subject


def test_leaf_from_the_strongroom_issuer_validates_against_the_ca(cert_client: CertificateClient, secret_client: SecretClient, ca_cert):
    name = unique("internal")
    policy = CertificatePolicy(issuer_name="Strongroom", subject="CN=svc.internal", san_dns_names=["svc.internal"])
    cert = cert_client.begin_create_certificate(name, policy).result()
    leaf = x509.load_der_x509_certificate(cert.cer)
    assert leaf.issuer == ca_cert.subject
    chain = _verify(leaf, [ca_cert], "svc.internal")
    assert chain[-1] == ca_cert
    with pytest.raises(VerificationError):
        _verify(leaf, [ca_cert], "other.internal")
    # The backing PFX carries the chain, so a server configured from the secret presents it.
    _, pcert, extra = pkcs12.load_key_and_certificates(base64.b64decode(secret_client.get_secret(name).value), None)
    assert pcert == leaf and extra == [ca_cert]


def test_self_signed_does_not_validate_against_the_ca(cert_client: CertificateClient, ca_cert):
    cert = cert_client.begin_create_certificate(
        unique("selfsigned"), CertificatePolicy(issuer_name="Self", subject="CN=svc.internal", san_dns_names=["svc.internal"])
    ).result()
    with pytest.raises(VerificationError):
        _verify(x509.load_der_x509_certificate(cert.cer), [ca_cert], "svc.internal")


def test_an_issuer_with_the_strongroom_provider_signs_with_the_ca(cert_client: CertificateClient, secret_client: SecretClient, ca_cert):
    issuer = unique("internal-ca")
    cert_client.create_issuer(issuer, "Strongroom")
    name = unique("via-issuer")
    policy = CertificatePolicy(issuer_name=issuer, subject="CN=api.internal", san_dns_names=["api.internal"],
                               content_type=CertificateContentType.pem)
    cert = cert_client.begin_create_certificate(name, policy).result()
    assert _verify(x509.load_der_x509_certificate(cert.cer), [ca_cert], "api.internal")[-1] == ca_cert
    pem = secret_client.get_secret(name).value.encode()
    assert x509.load_pem_x509_certificates(pem) == [x509.load_der_x509_certificate(cert.cer), ca_cert]
