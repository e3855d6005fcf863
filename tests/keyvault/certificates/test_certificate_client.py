"""The official CertificateClient, unmodified, through every public method against a real server.

Issued certificates are parsed with cryptography.x509; every version's backing
key and secret are checked through the key and secret clients.
"""

from __future__ import annotations

import base64
import ipaddress
from datetime import UTC, datetime, timedelta

import pytest
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError
from azure.keyvault.certificates import (
    AdministratorContact,
    CertificateClient,
    CertificateContact,
    CertificateContentType,
    CertificateOperation,
    CertificatePolicy,
    CertificatePolicyAction,
    KeyCurveName,
    KeyType,
    KeyUsageType,
    LifetimeAction,
    WellKnownIssuerNames,
)
from azure.keyvault.secrets import SecretClient
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from .conftest import leaf_for, local_ca, self_signed, unique


def test_create_with_the_default_policy(cert_client: CertificateClient, key_client, secret_client: SecretClient):
    name = unique("default")
    cert = cert_client.begin_create_certificate(name, CertificatePolicy.get_default()).result()
    parsed = x509.load_der_x509_certificate(cert.cer)
    assert parsed.subject.rfc4514_string() == "CN=DefaultPolicy"
    assert parsed.issuer == parsed.subject  # Self: signed with its own key
    assert cert.properties.x509_thumbprint == parsed.fingerprint(hashes.SHA1())
    assert cert.properties.expires_on - cert.properties.not_before == timedelta(days=365, minutes=10)
    policy = cert.policy
    assert (policy.issuer_name, policy.key_type, policy.key_size, policy.exportable, policy.reuse_key) == (
        "Self", KeyType.rsa, 2048, True, False)
    assert policy.content_type == CertificateContentType.pkcs12 and policy.validity_in_months == 12
    assert [(a.action, a.lifetime_percentage) for a in policy.lifetime_actions] == [(CertificatePolicyAction.auto_renew, 80)]
    assert sorted(policy.enhanced_key_usage) == sorted([ExtendedKeyUsageOID.SERVER_AUTH.dotted_string,
                                                        ExtendedKeyUsageOID.CLIENT_AUTH.dotted_string])
    # The backing key and secret: same name and version, managed, the secret pointing at the key.
    key = key_client.get_key(name)
    assert key.properties.version == cert.properties.version and key.properties.managed
    assert key.id == cert.key_id
    secret = secret_client.get_secret(name)
    assert secret.id == cert.secret_id and secret.properties.managed
    assert secret.properties.key_id == cert.key_id and secret.properties.content_type == "application/x-pkcs12"
    pkey, pcert, _ = pkcs12.load_key_and_certificates(base64.b64decode(secret.value), None)
    assert pcert == parsed and pkey.public_key().public_numbers() == parsed.public_key().public_numbers()


def test_create_from_a_full_policy(cert_client: CertificateClient, secret_client: SecretClient):
    name = unique("full")
    policy = CertificatePolicy(
        issuer_name=WellKnownIssuerNames.self,
        subject="CN=api.example.com, O=Contoso, C=US",
        san_dns_names=["api.example.com", "www.example.com"],
        san_emails=["ops@example.com"],
        key_type=KeyType.ec, key_curve_name=KeyCurveName.p_384, exportable=True, reuse_key=True,
        content_type=CertificateContentType.pem, validity_in_months=6,
        key_usage=[KeyUsageType.digital_signature, KeyUsageType.key_agreement],
        enhanced_key_usage=[ExtendedKeyUsageOID.SERVER_AUTH.dotted_string],
        lifetime_actions=[LifetimeAction(CertificatePolicyAction.email_contacts, days_before_expiry=30)],
    )
    cert = cert_client.begin_create_certificate(name, policy, tags={"env": "test"}).result()
    parsed = x509.load_der_x509_certificate(cert.cer)
    assert parsed.subject.rfc4514_string() == "CN=api.example.com,O=Contoso,C=US"  # encoded C, O, CN
    assert isinstance(parsed.public_key(), ec.EllipticCurvePublicKey) and parsed.public_key().curve.name == "secp384r1"
    san = parsed.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["api.example.com", "www.example.com"]
    assert san.get_values_for_type(x509.RFC822Name) == ["ops@example.com"]
    ku = parsed.extensions.get_extension_for_class(x509.KeyUsage).value
    assert ku.digital_signature and ku.key_agreement and not ku.key_encipherment
    assert list(parsed.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value) == [ExtendedKeyUsageOID.SERVER_AUTH]
    assert 180 <= (parsed.not_valid_after_utc - parsed.not_valid_before_utc).days <= 185
    assert cert.properties.tags == {"env": "test"}
    secret = secret_client.get_secret(name)
    assert secret.properties.content_type == "application/x-pem-file"
    assert secret.value.startswith("-----BEGIN PRIVATE KEY-----") and "-----BEGIN CERTIFICATE-----" in secret.value
    # reuse_key: the next version keeps the key.
    again = cert_client.begin_create_certificate(name, policy).result()
    assert x509.load_der_x509_certificate(again.cer).public_key() == parsed.public_key()


def test_versions_properties_and_policy_updates(cert_client: CertificateClient, secret_client: SecretClient, key_client):
    name = unique("versions")
    first = cert_client.begin_create_certificate(name, CertificatePolicy.get_default()).result()
    second = cert_client.begin_create_certificate(name, CertificatePolicy.get_default()).result()
    assert {v.version for v in cert_client.list_properties_of_certificate_versions(name)} == {
        first.properties.version, second.properties.version}
    assert cert_client.get_certificate_version(name, first.properties.version).cer == first.cer
    assert cert_client.get_certificate(name).properties.version == second.properties.version
    assert name in [c.name for c in cert_client.list_properties_of_certificates()]
    # A new key per version unless reuse_key.
    assert x509.load_der_x509_certificate(first.cer).public_key() != x509.load_der_x509_certificate(second.cer).public_key()

    updated = cert_client.update_certificate_properties(name, second.properties.version, enabled=False, tags={"a": "b"})
    assert updated.properties.enabled is False and updated.properties.tags == {"a": "b"}
    with pytest.raises(HttpResponseError) as exc:  # the backing secret follows the certificate
        secret_client.get_secret(name)
    assert exc.value.status_code == 403
    assert key_client.get_key(name).properties.enabled is False
    cert_client.update_certificate_properties(name, second.properties.version, enabled=True)

    # The given properties replace the stored ones; the rest (issuer, subject, key) stays.
    changed = cert_client.update_certificate_policy(name, CertificatePolicy(
        validity_in_months=3, lifetime_actions=[LifetimeAction(CertificatePolicyAction.auto_renew, days_before_expiry=10)]))
    assert changed.validity_in_months == 3 and changed.lifetime_actions[0].days_before_expiry == 10
    assert changed.issuer_name == "Self" and changed.subject == "CN=DefaultPolicy" and changed.key_size == 2048
    third = cert_client.begin_create_certificate(name, cert_client.get_certificate_policy(name)).result()
    lifetime = x509.load_der_x509_certificate(third.cer)
    assert 88 <= (lifetime.not_valid_after_utc - lifetime.not_valid_before_utc).days <= 93


def test_pending_operation_cancel_and_merge_with_an_external_ca(cert_client: CertificateClient, secret_client: SecretClient):
    name = unique("merge")
    policy = CertificatePolicy(issuer_name=WellKnownIssuerNames.unknown, subject="CN=merged.example", san_dns_names=["merged.example"])
    pending = cert_client.begin_create_certificate(name, policy).result()
    assert isinstance(pending, CertificateOperation) and pending.status == "inProgress"
    csr = x509.load_der_x509_csr(pending.csr)
    assert csr.is_signature_valid and csr.subject.rfc4514_string() == "CN=merged.example"
    assert cert_client.get_certificate_operation(name).request_id == pending.request_id
    assert cert_client.cancel_certificate_operation(name).cancellation_requested is True
    assert cert_client.get_certificate(name).cer is None  # the version exists, not yet issued
    with pytest.raises(HttpResponseError) as exc:
        cert_client.begin_create_certificate(name, policy).result()  # one operation at a time
    assert exc.value.status_code == 409

    ca_key, ca_cert = local_ca()
    wrong = leaf_for(ec.generate_private_key(ec.SECP256R1()).public_key(), "merged.example", ca_key, ca_cert)
    with pytest.raises(HttpResponseError) as exc:
        cert_client.merge_certificate(name, [wrong.public_bytes(serialization.Encoding.DER)])
    assert exc.value.status_code == 400

    leaf = leaf_for(csr.public_key(), "merged.example", ca_key, ca_cert, dns="merged.example")
    merged = cert_client.merge_certificate(
        name, [leaf.public_bytes(serialization.Encoding.DER), ca_cert.public_bytes(serialization.Encoding.DER)]
    )
    assert merged.cer == leaf.public_bytes(serialization.Encoding.DER)
    done = cert_client.get_certificate_operation(name)
    assert done.status == "completed" and done.target.endswith(f"/certificates/{name}")
    _, pcert, chain = pkcs12.load_key_and_certificates(base64.b64decode(secret_client.get_secret(name).value), None)
    assert pcert == leaf and chain == [ca_cert]
    with pytest.raises(ResourceNotFoundError):  # nothing left to merge
        cert_client.merge_certificate(name, [leaf.public_bytes(serialization.Encoding.DER)])


def test_delete_certificate_operation(cert_client: CertificateClient):
    name = unique("abort")
    cert_client.begin_create_certificate(name, CertificatePolicy(issuer_name="Unknown", subject="CN=abort")).result()
    deleted = cert_client.delete_certificate_operation(name)
    assert deleted.status == "inProgress"
    with pytest.raises(ResourceNotFoundError) as exc:
        cert_client.get_certificate_operation(name)
    assert exc.value.error.code == "PendingCertificateNotFound"
    left = cert_client.get_certificate(name)
    assert left.cer is None and left.properties.enabled is False  # as Key Vault leaves an aborted version
    assert name not in [c.name for c in cert_client.list_properties_of_certificates()]
    assert name in [c.name for c in cert_client.list_properties_of_certificates(include_pending=True)]


def test_delete_recover_purge_backup_restore_with_key_and_secret(
    cert_client: CertificateClient, secret_client: SecretClient, key_client
):
    name = unique("lifecycle")
    created = cert_client.begin_create_certificate(name, CertificatePolicy.get_default()).result()
    deleted = cert_client.begin_delete_certificate(name).result()
    assert deleted.recovery_id.endswith(f"/deletedcertificates/{name}") and deleted.cer == created.cer
    assert cert_client.get_deleted_certificate(name).name == name
    assert name in [c.name for c in cert_client.list_deleted_certificates()]
    for get in (lambda: secret_client.get_secret(name), lambda: key_client.get_key(name), lambda: cert_client.get_certificate(name)):
        with pytest.raises(ResourceNotFoundError):
            get()
    recovered = cert_client.begin_recover_deleted_certificate(name).result()
    assert recovered.cer == created.cer
    assert secret_client.get_secret(name).properties.version == created.properties.version
    assert key_client.get_key(name).properties.version == created.properties.version

    blob = cert_client.backup_certificate(name)
    cert_client.begin_delete_certificate(name).wait()
    cert_client.purge_deleted_certificate(name)
    with pytest.raises(ResourceNotFoundError):
        cert_client.get_deleted_certificate(name)
    with pytest.raises(ResourceNotFoundError):
        secret_client.get_deleted_secret(name)
    restored = cert_client.restore_certificate_backup(blob)
    assert restored.cer == created.cer and restored.policy.issuer_name == "Self"
    assert secret_client.get_secret(name).properties.key_id == created.key_id
    with pytest.raises(ResourceExistsError):
        cert_client.restore_certificate_backup(blob)


def test_import_pfx_with_and_without_password_and_pem(cert_client: CertificateClient, secret_client: SecretClient):
    key, cert = self_signed("pfx.example")
    pfx = pkcs12.serialize_key_and_certificates(b"x", key, cert, None, serialization.BestAvailableEncryption(b"s3cret"))
    imported = cert_client.import_certificate(unique("pfx-pw"), pfx, password="s3cret")
    assert imported.cer == cert.public_bytes(serialization.Encoding.DER)
    assert imported.policy.issuer_name == "Unknown" and imported.policy.subject == "CN=pfx.example"
    assert imported.policy.san_dns_names == ["pfx.example"]
    plain = pkcs12.serialize_key_and_certificates(b"x", key, cert, None, serialization.NoEncryption())
    name = unique("pfx")
    cert_client.import_certificate(name, plain, tags={"src": "pfx"})
    value = secret_client.get_secret(name).value
    assert pkcs12.load_key_and_certificates(base64.b64decode(value), None)[1] == cert  # stored without a password

    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    pem += cert.public_bytes(serialization.Encoding.PEM)
    pem_name = unique("pem")
    from_pem = cert_client.import_certificate(pem_name, pem, policy=CertificatePolicy(content_type=CertificateContentType.pem))
    assert from_pem.cer == imported.cer
    assert secret_client.get_secret(pem_name).properties.content_type == "application/x-pem-file"

    with pytest.raises(HttpResponseError) as exc:
        cert_client.import_certificate(unique("badpw"), pfx, password="wrong")
    assert exc.value.status_code == 400 and exc.value.error.code == "BadParameter"
    with pytest.raises(HttpResponseError) as exc:  # a certificate without its private key cannot be imported
        cert_client.import_certificate(unique("nokey"), cert.public_bytes(serialization.Encoding.PEM))
    assert exc.value.status_code == 400


def test_import_of_an_ed25519_certificate_is_bad_parameter(cert_client: CertificateClient):
    """Certificates hold RSA or EC keys: an Ed25519 PEM gets 400 BadParameter (matching its certificate to its
    key once asked the key for RSA/EC public numbers, an AttributeError and a 500)."""
    key = ed25519.Ed25519PrivateKey.generate()
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ed25519.example")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now).not_valid_after(now + timedelta(days=30))
        .sign(key, None)
    )
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    pem += cert.public_bytes(serialization.Encoding.PEM)
    name = unique("ed25519")
    with pytest.raises(HttpResponseError) as exc:
        cert_client.import_certificate(name, pem, policy=CertificatePolicy(content_type=CertificateContentType.pem))
    assert exc.value.status_code == 400 and exc.value.error.code == "BadParameter"
    assert "RSA and EC" in exc.value.error.message
    with pytest.raises(ResourceNotFoundError):  # nothing half-written
        cert_client.get_certificate(name)


def test_import_keeps_any_subject(cert_client: CertificateClient):
    """A subject with attributes that have no short name (emailAddress) and escaped commas round-trips."""
    from datetime import datetime, timedelta

    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(65537, 2048)
    name = x509.Name([x509.NameAttribute(x509.NameOID.ORGANIZATION_NAME, "Contoso, Ltd"),
                      x509.NameAttribute(x509.NameOID.EMAIL_ADDRESS, "ops@example.com"),
                      x509.NameAttribute(x509.NameOID.COMMON_NAME, "odd.example")])
    now = datetime.now(UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key()).serial_number(7)
            .not_valid_before(now).not_valid_after(now + timedelta(days=30)).sign(key, hashes.SHA256()))
    pfx = pkcs12.serialize_key_and_certificates(b"x", key, cert, None, serialization.NoEncryption())
    imported = cert_client.import_certificate(unique("odd-subject"), pfx)
    assert imported.policy.subject == name.rfc4514_string()
    renamed = cert_client.begin_create_certificate(
        unique("odd-renew"), CertificatePolicy(issuer_name="Self", subject=imported.policy.subject)).result()
    assert x509.load_der_x509_certificate(renamed.cer).subject == name


def test_issuers(cert_client: CertificateClient):
    name = unique("issuer")
    created = cert_client.create_issuer(
        name, "Test", account_id="acct", password="pw", organization_id="org-1",
        admin_contacts=[AdministratorContact(first_name="Ada", last_name="L", email="ada@example.com", phone="1")],
    )
    assert created.provider == "Test" and created.account_id == "acct" and created.enabled is True
    assert created.admin_contacts[0].email == "ada@example.com"
    assert cert_client.get_issuer(name).organization_id == "org-1"
    updated = cert_client.update_issuer(name, enabled=False, account_id="acct2")
    assert updated.enabled is False and updated.account_id == "acct2" and updated.provider == "Test"
    assert name in [i.name for i in cert_client.list_properties_of_issuers()]
    assert cert_client.delete_issuer(name).name == name
    with pytest.raises(ResourceNotFoundError):
        cert_client.get_issuer(name)
    with pytest.raises(HttpResponseError) as exc:
        cert_client.create_issuer("Self", "Test")
    assert exc.value.status_code == 400


def test_issuer_from_a_provider_this_server_cannot_reach_fails_the_operation(cert_client: CertificateClient):
    issuer = unique("digicert")
    cert_client.create_issuer(issuer, "DigiCert", account_id="a", password="p")
    op = cert_client.begin_create_certificate(unique("external"), CertificatePolicy(issuer_name=issuer, subject="CN=x")).result()
    assert op.status == "failed" and op.error.code == "CertificateIssuerUnreachable"


def test_contacts(cert_client: CertificateClient):
    contacts = [CertificateContact(email="a@example.com", name="A", phone="1"), CertificateContact(email="b@example.com")]
    set_ = cert_client.set_contacts(contacts)
    assert [c.email for c in set_] == ["a@example.com", "b@example.com"]
    assert [(c.email, c.name, c.phone) for c in cert_client.get_contacts()][0] == ("a@example.com", "A", "1")
    assert len(cert_client.delete_contacts()) == 2
    with pytest.raises(ResourceNotFoundError):
        cert_client.get_contacts()


def test_backing_key_and_secret_are_managed_by_key_vault(cert_client: CertificateClient, secret_client: SecretClient, key_client):
    name = unique("managed")
    cert_client.begin_create_certificate(name, CertificatePolicy.get_default()).result()
    for attempt, inner in ((lambda: secret_client.begin_delete_secret(name).result(), "SecretManagedByKeyVault"),
                           (lambda: secret_client.set_secret(name, "overwrite"), "SecretManagedByKeyVault"),
                           (lambda: key_client.begin_delete_key(name).result(), "KeyManagedByKeyVault"),
                           (lambda: key_client.create_rsa_key(name), "KeyManagedByKeyVault")):
        with pytest.raises(HttpResponseError) as exc:
            attempt()
        assert exc.value.status_code == 403
        assert exc.value.response.json()["error"]["innererror"]["code"] == inner
    # A name taken by a plain secret cannot become a certificate.
    plain = unique("plain")
    secret_client.set_secret(plain, "v")
    with pytest.raises(ResourceExistsError):
        cert_client.begin_create_certificate(plain, CertificatePolicy.get_default()).result()


def test_secret_get_with_out_content_type_converts_pfx_to_pem(cert_client: CertificateClient, secret_client: SecretClient):
    name = unique("pfx2pem")
    cert = cert_client.begin_create_certificate(name, CertificatePolicy.get_default()).result()
    pem = secret_client.get_secret(name, out_content_type="application/x-pem-file")
    assert pem.properties.content_type == "application/x-pem-file"
    key = serialization.load_pem_private_key(pem.value.encode(), None)
    leaf = x509.load_pem_x509_certificates(pem.value.encode())[0]
    assert leaf.public_bytes(serialization.Encoding.DER) == cert.cer
    assert key.public_key().public_numbers() == leaf.public_key().public_numbers()
    same = secret_client.get_secret(name, out_content_type="application/x-pkcs12")
    assert same.properties.content_type == "application/x-pkcs12"


def test_bad_policies_get_bad_parameter(cert_client: CertificateClient):
    bad = [
        CertificatePolicy(issuer_name="Self", subject="not a dn"),
        CertificatePolicy(issuer_name="Self", subject="CN=x", key_type=KeyType.rsa, key_size=1024),
        CertificatePolicy(issuer_name="Self", subject="CN=x", validity_in_months=0),
        CertificatePolicy(issuer_name="Self", subject="CN=x",
                          lifetime_actions=[LifetimeAction(CertificatePolicyAction.auto_renew, lifetime_percentage=100)]),
        CertificatePolicy(issuer_name="Unknown", subject="CN=x",
                          lifetime_actions=[LifetimeAction(CertificatePolicyAction.auto_renew, lifetime_percentage=50)]),
        CertificatePolicy(issuer_name="no-such-issuer", subject="CN=x"),
    ]
    for policy in bad:
        with pytest.raises(HttpResponseError) as exc:
            cert_client.begin_create_certificate(unique("bad"), policy).result()
        assert exc.value.status_code == 400 and exc.value.error.code == "BadParameter", exc.value.message


def test_ip_address_sans(cert_client: CertificateClient, server, admin_credential):
    """SANs beyond what the SDK's policy model carries (ipAddresses, uris), through the REST body."""
    import httpx

    name = unique("ipsan")
    token = admin_credential.get_token(f"https://vault.localhost:{server.port}/.default").token
    body = {"policy": {"issuer": {"name": "Self"}, "x509_props": {
        "subject": "CN=10.0.0.1", "sans": {"ipAddresses": ["10.0.0.1", "::1"], "uris": ["spiffe://cluster/ns/app"]}}}}
    r = httpx.post(f"{cert_client.vault_url}/certificates/{name}/create", params={"api-version": "7.6"}, json=body,
                   headers={"Authorization": f"Bearer {token}"}, verify=server.ssl_context)
    assert r.status_code == 202 and r.headers["Location"].startswith(f"{cert_client.vault_url}/certificates/{name}/pending")
    san = x509.load_der_x509_certificate(cert_client.get_certificate(name).cer).extensions.get_extension_for_class(
        x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("10.0.0.1"), ipaddress.ip_address("::1")]
    assert san.get_values_for_type(x509.UniformResourceIdentifier) == ["spiffe://cluster/ns/app"]
