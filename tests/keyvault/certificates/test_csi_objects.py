"""Keys and certificates mounted by the CSI provider (the in-process `mount`, the code the gRPC service runs),
rendered as the Azure provider renders them (csi.md section 3)."""

from __future__ import annotations

import base64

import pytest
from azure.keyvault.certificates import CertificateClient, CertificateContentType, CertificatePolicy
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs12

from strongroom.csi.provider import mount
from tests.csi.csi_support import driver_attributes, objects_yaml, provider_config

from .conftest import unique


@pytest.fixture(scope="module")
def spc(server, vault):
    admin = server.admin
    params = {"keyvaultName": vault, "tenantId": admin["tenantId"], "usePodIdentity": "false"}
    return params, {"clientid": admin["clientId"], "clientsecret": admin["clientSecret"]}


def _mount(server, spc, *objects):
    params, secrets = spc
    result = mount(driver_attributes({**params, "objects": objects_yaml(*objects)}), secrets, config=provider_config(server))
    return {f.path: f.contents for f in result.files}, {v.id: v.version for v in result.object_versions}


def test_key_object_is_the_public_key_pem(server, spc, key_client):
    name = unique("csi-key")
    key = key_client.create_ec_key(name, curve="P-384")
    files, versions = _mount(server, spc, {"objectName": name, "objectType": "key"})
    public = serialization.load_pem_public_key(files[name])
    assert public.public_numbers().x == int.from_bytes(key.key.x, "big")
    assert versions == {f"key/{name}": key.properties.version}


def test_cert_object_is_the_leaf_pem_and_secret_object_the_key_and_chain(server, spc, cert_client: CertificateClient):
    name = unique("csi-cert")
    policy = CertificatePolicy(issuer_name="Strongroom", subject="CN=csi.internal", san_dns_names=["csi.internal"])
    cert = cert_client.begin_create_certificate(name, policy).result()
    files, versions = _mount(
        server, spc,
        {"objectName": name, "objectType": "cert", "objectAlias": "tls.crt"},
        {"objectName": name, "objectType": "secret", "objectAlias": "tls.pem"},
        {"objectName": name, "objectType": "secret", "objectAlias": "tls.pfx", "objectFormat": "pfx", "objectEncoding": "base64"},
    )
    leaf = x509.load_der_x509_certificate(cert.cer)
    assert x509.load_pem_x509_certificates(files["tls.crt"]) == [leaf]
    pem = files["tls.pem"]
    assert pem.startswith(b"-----BEGIN PRIVATE KEY-----")  # key first, then the chain leaf first
    chain = x509.load_pem_x509_certificates(pem)
    assert chain[0] == leaf and len(chain) == 2 and chain[1].subject == leaf.issuer
    key, pcert, _ = pkcs12.load_key_and_certificates(files["tls.pfx"], None)
    assert pcert == leaf and key.public_key().public_numbers() == leaf.public_key().public_numbers()
    assert versions[f"cert/{name}"] == cert.properties.version


def test_pem_certificate_secret_is_written_unchanged(server, spc, cert_client: CertificateClient, secret_client):
    name = unique("csi-pem")
    cert_client.begin_create_certificate(
        name, CertificatePolicy(issuer_name="Self", subject="CN=pem", content_type=CertificateContentType.pem)
    ).result()
    files, _ = _mount(server, spc, {"objectName": name, "objectType": "secret"})
    assert files[name] == secret_client.get_secret(name).value.encode()
    assert base64.b64encode(files[name])  # non-empty
