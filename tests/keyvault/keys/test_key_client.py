"""The official KeyClient, unmodified, through every public method against a real server."""

from __future__ import annotations

import hashlib
import ssl
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError
from azure.keyvault.keys import (
    JsonWebKey,
    KeyClient,
    KeyCurveName,
    KeyOperation,
    KeyRotationLifetimeAction,
    KeyRotationPolicy,
    KeyRotationPolicyAction,
    KeyType,
)
from azure.keyvault.keys.crypto import SignatureAlgorithm
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from .conftest import unique

PRIVATE_FIELDS = ("d", "p", "q", "dp", "dq", "qi", "k")


def _rest(server, admin_credential, method: str, url: str, **kwargs) -> httpx.Response:
    token = admin_credential.get_token(f"https://vault.localhost:{server.port}/.default").token
    with httpx.Client(verify=ssl.create_default_context(cafile=server.ca)) as h:
        return h.request(method, url, headers={"Authorization": f"Bearer {token}"}, params={"api-version": "2026-04-01"}, **kwargs)


@pytest.mark.parametrize(
    "kty,size,curve",
    [("RSA", 2048, None), ("RSA", 3072, None), ("RSA", 4096, None), ("EC", None, "P-256"), ("EC", None, "P-384"),
     ("EC", None, "P-521"), ("oct", 128, None), ("oct", 192, None), ("oct", 256, None)],
)
def test_create_each_type_size_and_curve(key_client: KeyClient, kty, size, curve):
    name = unique(f"create-{kty.lower()}")
    if kty == "RSA":
        key = key_client.create_rsa_key(name, size=size)
        assert int.from_bytes(key.key.n, "big").bit_length() == size
        assert key.key.e == b"\x01\x00\x01"
        assert sorted(key.key_operations) == sorted(["encrypt", "decrypt", "sign", "verify", "wrapKey", "unwrapKey"])
    elif kty == "EC":
        key = key_client.create_ec_key(name, curve=curve)
        assert key.key.crv == curve and key.key.x and key.key.y
        assert sorted(key.key_operations) == ["sign", "verify"]
    else:
        key = key_client.create_oct_key(name, size=size)
        assert key.properties._attributes is not None
    assert key.key_type == kty
    assert key.name == name and len(key.properties.version) == 32
    # Private material never leaves the server.
    assert all(getattr(key.key, f, None) in (None, b"") for f in PRIVATE_FIELDS)


def test_get_answers_public_parts_only(server, key_client: KeyClient, admin_credential):
    names = {"RSA": unique("pub-rsa"), "EC": unique("pub-ec"), "oct": unique("pub-oct")}
    key_client.create_rsa_key(names["RSA"])
    key_client.create_ec_key(names["EC"])
    key_client.create_oct_key(names["oct"])
    for kty, name in names.items():
        body = _rest(server, admin_credential, "GET", f"{key_client.vault_url}/keys/{name}/").json()
        assert body["key"]["kty"] == kty
        assert not set(PRIVATE_FIELDS) & set(body["key"]), body["key"].keys()
        assert body["attributes"]["recoveryLevel"] == "Recoverable+Purgeable"
        assert body["key"]["kid"].startswith(f"{key_client.vault_url}/keys/{name}/")


def test_import_rsa_and_ec_keys_keeps_their_public_part(key_client: KeyClient, crypto_client_for):
    priv = rsa.generate_private_key(65537, 2048)
    nums = priv.private_numbers()

    def b(v: int) -> bytes:
        return v.to_bytes((v.bit_length() + 7) // 8, "big")

    jwk = JsonWebKey(kty="RSA", n=b(nums.public_numbers.n), e=b(nums.public_numbers.e), d=b(nums.d), p=b(nums.p),
                     q=b(nums.q), dp=b(nums.dmp1), dq=b(nums.dmq1), qi=b(nums.iqmp),
                     key_ops=["sign", "verify"])
    name = unique("imported-rsa")
    imported = key_client.import_key(name, jwk, tags={"origin": "local"})
    assert imported.key.n == jwk.n and imported.key_operations == ["sign", "verify"]
    assert imported.properties.tags == {"origin": "local"}
    # The server signs with the imported private key: the local public key verifies it.
    digest = hashlib.sha256(b"imported").digest()
    sig = crypto_client_for(imported).sign(SignatureAlgorithm.rs256, digest).signature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding, utils

    priv.public_key().verify(sig, digest, padding.PKCS1v15(), utils.Prehashed(hashes.SHA256()))

    ec_priv = ec.generate_private_key(ec.SECP384R1())
    en = ec_priv.private_numbers()
    ec_jwk = JsonWebKey(kty="EC", crv="P-384", x=en.public_numbers.x.to_bytes(48, "big"),
                        y=en.public_numbers.y.to_bytes(48, "big"), d=en.private_value.to_bytes(48, "big"))
    ec_key = key_client.import_key(unique("imported-ec"), ec_jwk, hardware_protected=True)
    assert ec_key.key_type == "EC-HSM" and ec_key.key.x == ec_jwk.x


def test_import_without_private_part_is_refused(key_client: KeyClient):
    pub = rsa.generate_private_key(65537, 2048).public_key().public_numbers()
    jwk = JsonWebKey(kty="RSA", n=pub.n.to_bytes(256, "big"), e=pub.e.to_bytes(3, "big"))
    with pytest.raises(HttpResponseError) as exc:
        key_client.import_key(unique("public-only"), jwk)
    assert exc.value.status_code == 400 and exc.value.error.code == "BadParameter"


def test_versions_list_and_paging(key_client: KeyClient):
    name = unique("versions")
    first = key_client.create_ec_key(name)
    second = key_client.create_ec_key(name)
    versions = {p.version for p in key_client.list_properties_of_key_versions(name)}
    assert versions == {first.properties.version, second.properties.version}
    assert key_client.get_key(name).properties.version == second.properties.version
    assert key_client.get_key(name, first.properties.version).key.x == first.key.x
    listed = [p.name for p in key_client.list_properties_of_keys(max_page_size=2)]
    assert name in listed and len(listed) == len(set(listed))


def test_update_key_properties(key_client: KeyClient):
    name = unique("update")
    key = key_client.create_rsa_key(name)
    expires = datetime.now(UTC).replace(microsecond=0) + timedelta(days=30)
    nbf = datetime.now(UTC).replace(microsecond=0) - timedelta(days=1)
    updated = key_client.update_key_properties(
        name, key.properties.version, enabled=False, expires_on=expires, not_before=nbf,
        key_operations=[KeyOperation.sign, KeyOperation.verify], tags={"team": "payments"},
    )
    assert updated.properties.enabled is False
    assert updated.properties.expires_on == expires and updated.properties.not_before == nbf
    assert updated.key_operations == ["sign", "verify"]
    assert updated.properties.tags == {"team": "payments"}
    assert key_client.get_key(name).properties.enabled is False


def test_delete_get_deleted_recover_purge(key_client: KeyClient):
    name = unique("lifecycle")
    key_client.create_rsa_key(name)
    deleted = key_client.begin_delete_key(name).result()
    assert deleted.recovery_id.endswith(f"/deletedkeys/{name}")
    assert deleted.scheduled_purge_date > deleted.deleted_date
    assert key_client.get_deleted_key(name).name == name
    assert name in [d.name for d in key_client.list_deleted_keys()]
    with pytest.raises(ResourceNotFoundError):
        key_client.get_key(name)
    with pytest.raises(ResourceExistsError):  # a deleted name cannot be reused until purged
        key_client.create_rsa_key(name)
    recovered = key_client.begin_recover_deleted_key(name).result()
    assert recovered.name == name and key_client.get_key(name).name == name
    key_client.begin_delete_key(name).wait()
    key_client.purge_deleted_key(name)
    with pytest.raises(ResourceNotFoundError) as exc:
        key_client.get_deleted_key(name)
    assert exc.value.error.code == "KeyNotFound"
    assert key_client.create_ec_key(name).name == name  # the name is free again


def test_backup_and_restore_every_version(key_client: KeyClient):
    name = unique("backup")
    v1 = key_client.create_rsa_key(name)
    v2 = key_client.create_rsa_key(name)
    blob = key_client.backup_key(name)
    key_client.begin_delete_key(name).wait()
    key_client.purge_deleted_key(name)
    restored = key_client.restore_key_backup(blob)
    assert restored.properties.version == v2.properties.version and restored.key.n == v2.key.n
    assert {p.version for p in key_client.list_properties_of_key_versions(name)} == {
        v1.properties.version, v2.properties.version}
    with pytest.raises(ResourceExistsError):
        key_client.restore_key_backup(blob)


def test_rotation_policy_and_rotate(key_client: KeyClient):
    name = unique("rotate")
    original = key_client.create_ec_key(name, curve=KeyCurveName.p_384, tags={"app": "billing"})
    default = key_client.get_key_rotation_policy(name)
    assert [(a.action, a.time_before_expiry) for a in default.lifetime_actions] == [(KeyRotationPolicyAction.notify, "P30D")]
    policy = key_client.update_key_rotation_policy(
        name,
        KeyRotationPolicy(
            expires_in="P90D",
            lifetime_actions=[
                KeyRotationLifetimeAction(KeyRotationPolicyAction.rotate, time_after_create="P30D"),
                KeyRotationLifetimeAction(KeyRotationPolicyAction.notify, time_before_expiry="P7D"),
            ],
        ),
    )
    assert policy.expires_in == "P90D" and policy.id.endswith(f"/keys/{name}/rotationpolicy")
    assert {(a.action, a.time_after_create, a.time_before_expiry) for a in policy.lifetime_actions} == {
        (KeyRotationPolicyAction.rotate, "P30D", None), (KeyRotationPolicyAction.notify, None, "P7D")}
    assert key_client.get_key_rotation_policy(name).created_on is not None
    rotated = key_client.rotate_key(name)
    assert rotated.properties.version != original.properties.version
    assert rotated.key.crv == "P-384" and rotated.properties.tags == {"app": "billing"}
    lifetime = rotated.properties.expires_on - rotated.properties.created_on
    assert lifetime == timedelta(days=90)
    with pytest.raises(HttpResponseError) as exc:
        key_client.update_key_rotation_policy(
            name, KeyRotationPolicy(lifetime_actions=[KeyRotationLifetimeAction(KeyRotationPolicyAction.rotate, time_after_create="P1D")])
        )
    assert exc.value.status_code == 400 and "7 days" in exc.value.message


def test_random_bytes(server, key_client: KeyClient, admin_credential):
    a, b = key_client.get_random_bytes(32), key_client.get_random_bytes(32)
    assert len(a) == 32 and a != b
    for count in (0, 129, "8"):
        r = _rest(server, admin_credential, "POST", f"{key_client.vault_url}/rng", json={"count": count})
        assert r.status_code == 400 and r.json()["error"]["code"] == "BadParameter"


def test_release_and_attestation_answer_unsupported_not_500(key_client: KeyClient):
    name = unique("release")
    key_client.create_rsa_key(name)
    with pytest.raises(HttpResponseError) as exc:
        key_client.release_key(name, "attestation-token")
    assert exc.value.status_code == 400 and exc.value.error.code == "BadParameter"
    assert "not supported" in exc.value.message
    with pytest.raises(HttpResponseError) as exc:
        key_client.get_key_attestation(name)
    assert exc.value.status_code == 400 and exc.value.error.code == "BadParameter"
    with pytest.raises(ResourceNotFoundError):
        key_client.release_key(unique("absent"), "attestation-token")
    with pytest.raises(HttpResponseError) as exc:
        key_client.create_rsa_key(unique("exportable"), exportable=True)
    assert exc.value.status_code == 400


def test_get_cryptography_client_signs(key_client: KeyClient):
    name = unique("crypto-from-client")
    key_client.create_ec_key(name, curve=KeyCurveName.p_256)
    crypto = key_client.get_cryptography_client(name)
    digest = hashlib.sha256(b"payload").digest()
    signed = crypto.sign(SignatureAlgorithm.es256, digest)
    assert len(signed.signature) == 64 and crypto.verify(SignatureAlgorithm.es256, digest, signed.signature).is_valid


def test_bad_input_gets_azure_errors(server, key_client: KeyClient, admin_credential):
    with pytest.raises(ResourceNotFoundError) as exc:
        key_client.get_key(unique("missing"))
    assert exc.value.error.code == "KeyNotFound" and "was not found in this key vault" in exc.value.message
    base = key_client.vault_url
    cases = [
        ("POST", f"{base}/keys/{unique('bad')}/create", {"kty": "DSA"}),
        ("POST", f"{base}/keys/{unique('bad')}/create", {"kty": "RSA", "key_size": 1024}),
        ("POST", f"{base}/keys/{unique('bad')}/create", {"kty": "EC", "crv": "P-192"}),
        ("POST", f"{base}/keys/{unique('bad')}/create", {"kty": "oct", "key_size": 512}),
        ("POST", f"{base}/keys/{unique('bad')}/create", {"kty": "RSA", "key_ops": ["launch"]}),
        ("POST", f"{base}/keys/bad_name!/create", {"kty": "RSA"}),
        ("PUT", f"{base}/keys/{unique('bad')}", {"key": {"kty": "RSA", "n": "!!!", "e": "AQAB", "d": "AQAB"}}),
        ("PUT", f"{base}/keys/{unique('bad')}/rotationpolicy", {"lifetimeActions": []}),
    ]
    for method, url, body in cases:
        r = _rest(server, admin_credential, method, url, json=body)
        assert r.status_code in (400, 404), (url, body, r.status_code, r.text)
        assert r.json()["error"]["code"] in ("BadParameter", "KeyNotFound"), r.text


@pytest.mark.parametrize("api_version", ["7.4", "7.6"])
def test_older_api_versions(server, vault, admin_credential, api_version):
    with KeyClient(server.vault_url(vault), admin_credential, api_version=api_version, connection_verify=server.ca) as client:
        name = unique(f"api-{api_version.replace('.', '')}")
        created = client.create_key(name, KeyType.rsa, size=2048)
        assert client.get_key(name).key.n == created.key.n
