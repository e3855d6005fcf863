"""The official CryptographyClient against real keys: the server's results checked with `cryptography`.

A signature made by the server verifies locally against the public JWK, and a
signature made locally verifies on the server; ciphertexts and wrapped keys
cross between the two in both directions. Operations the SDK would do locally
(encrypt, verify, wrap with a public key) reach the server through a principal
that may use keys but not read them (`remote_credential`).
"""

from __future__ import annotations

import hashlib
import os
from datetime import UTC, datetime, timedelta

import pytest
from azure.core.exceptions import HttpResponseError
from azure.keyvault.keys import JsonWebKey, KeyClient
from azure.keyvault.keys.crypto import EncryptionAlgorithm, KeyWrapAlgorithm, SignatureAlgorithm
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import padding as sym_padding
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, utils
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.keywrap import aes_key_unwrap, aes_key_wrap

from .conftest import unique

HASHES = {"256": hashes.SHA256(), "384": hashes.SHA384(), "512": hashes.SHA512()}
CURVES = {"ES256": ("P-256", ec.SECP256R1()), "ES384": ("P-384", ec.SECP384R1()), "ES512": ("P-521", ec.SECP521R1())}


def _int(b: bytes) -> int:
    return int.from_bytes(b, "big")


def _public_key(jwk: JsonWebKey):
    """The public key rebuilt from the JWK the server answered (no SDK help)."""
    if jwk.kty.startswith("RSA"):
        return rsa.RSAPublicNumbers(_int(jwk.e), _int(jwk.n)).public_key()
    curve = {"P-256": ec.SECP256R1(), "P-384": ec.SECP384R1(), "P-521": ec.SECP521R1()}[jwk.crv]
    return ec.EllipticCurvePublicNumbers(_int(jwk.x), _int(jwk.y), curve).public_key()


def _verify_locally(public_key, alg: str, digest: bytes, signature: bytes) -> None:
    h = utils.Prehashed(HASHES[alg[2:]])
    if alg.startswith("RS"):
        public_key.verify(signature, digest, padding.PKCS1v15(), h)
    elif alg.startswith("PS"):
        public_key.verify(signature, digest, padding.PSS(padding.MGF1(HASHES[alg[2:]]), len(digest)), h)
    else:
        half = len(signature) // 2
        der = utils.encode_dss_signature(_int(signature[:half]), _int(signature[half:]))
        public_key.verify(der, digest, ec.ECDSA(h))


def _sign_locally(private_key, alg: str, digest: bytes) -> bytes:
    h = utils.Prehashed(HASHES[alg[2:]])
    if alg.startswith("RS"):
        return private_key.sign(digest, padding.PKCS1v15(), h)
    if alg.startswith("PS"):
        return private_key.sign(digest, padding.PSS(padding.MGF1(HASHES[alg[2:]]), len(digest)), h)
    r, s = utils.decode_dss_signature(private_key.sign(digest, ec.ECDSA(h)))
    size = (private_key.curve.key_size + 7) // 8
    return r.to_bytes(size, "big") + s.to_bytes(size, "big")


def _rsa_jwk(priv: rsa.RSAPrivateKey) -> JsonWebKey:
    n = priv.private_numbers()

    def b(v: int) -> bytes:
        return v.to_bytes((v.bit_length() + 7) // 8, "big")

    return JsonWebKey(kty="RSA", n=b(n.public_numbers.n), e=b(n.public_numbers.e), d=b(n.d), p=b(n.p), q=b(n.q),
                      dp=b(n.dmp1), dq=b(n.dmq1), qi=b(n.iqmp))


def _ec_jwk(priv: ec.EllipticCurvePrivateKey, crv: str) -> JsonWebKey:
    n = priv.private_numbers()
    size = (priv.curve.key_size + 7) // 8
    return JsonWebKey(kty="EC", crv=crv, x=n.public_numbers.x.to_bytes(size, "big"),
                      y=n.public_numbers.y.to_bytes(size, "big"), d=n.private_value.to_bytes(size, "big"))


@pytest.fixture(scope="module")
def rsa_pair(key_client: KeyClient):
    """An RSA key whose private half the test also holds (imported), to check results both ways."""
    priv = rsa.generate_private_key(65537, 2048)
    return priv, key_client.import_key(unique("rsa-pair"), _rsa_jwk(priv))


@pytest.fixture(scope="module")
def oct_pair(key_client: KeyClient):
    keys = {}
    for bits in (128, 192, 256):
        raw = os.urandom(bits // 8)
        keys[bits] = (raw, key_client.import_key(unique(f"aes{bits}"), JsonWebKey(kty="oct", k=raw)))
    return keys


@pytest.mark.parametrize("alg", ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512"])
def test_server_signature_verifies_locally_and_local_signature_on_server(
    key_client: KeyClient, crypto_client_for, remote_credential, alg
):
    digest = hashlib.new(f"sha{alg[2:]}", f"message for {alg}".encode()).digest()
    if alg.startswith("ES"):
        crv, curve = CURVES[alg]
        local = ec.generate_private_key(curve)
        key = key_client.import_key(unique(f"sig-{alg.lower()}"), _ec_jwk(local, crv))
    else:
        local = rsa.generate_private_key(65537, 2048)
        key = key_client.import_key(unique(f"sig-{alg.lower()}"), _rsa_jwk(local))
    server_sig = crypto_client_for(key).sign(SignatureAlgorithm(alg), digest).signature
    _verify_locally(_public_key(key.key), alg, digest, server_sig)  # raises if it does not verify

    remote = crypto_client_for(key.id, remote_credential)  # verify runs on the server
    local_sig = _sign_locally(local, alg, digest)
    assert remote.verify(SignatureAlgorithm(alg), digest, local_sig).is_valid
    tampered = bytes([local_sig[0] ^ 1]) + local_sig[1:]
    assert not remote.verify(SignatureAlgorithm(alg), digest, tampered).is_valid
    with pytest.raises(InvalidSignature):
        _verify_locally(_public_key(key.key), alg, digest, tampered)


def test_key_vault_rsa_private_key_signs_through_the_vault(key_client: KeyClient, crypto_client_for):
    key = key_client.create_rsa_key(unique("rsa-private-key"), size=3072)
    private = crypto_client_for(key).create_rsa_private_key()
    data = b"signed by a key that never leaves the vault"
    sig = private.sign(data, padding.PKCS1v15(), hashes.SHA256())
    _public_key(key.key).verify(sig, data, padding.PKCS1v15(), hashes.SHA256())
    assert private.key_size == 3072


@pytest.mark.parametrize("alg", ["RSA1_5", "RSA-OAEP", "RSA-OAEP-256"])
def test_rsa_encryption_crosses_both_ways(rsa_pair, crypto_client_for, remote_credential, alg):
    priv, key = rsa_pair
    pad = {"RSA1_5": padding.PKCS1v15(),
           "RSA-OAEP": padding.OAEP(padding.MGF1(hashes.SHA1()), hashes.SHA1(), None),
           "RSA-OAEP-256": padding.OAEP(padding.MGF1(hashes.SHA256()), hashes.SHA256(), None)}[alg]
    remote = crypto_client_for(key.id, remote_credential)
    server_ct = remote.encrypt(EncryptionAlgorithm(alg), b"from the server").ciphertext
    assert priv.decrypt(server_ct, pad) == b"from the server"
    local_ct = priv.public_key().encrypt(b"from the test", pad)
    assert remote.decrypt(EncryptionAlgorithm(alg), local_ct).plaintext == b"from the test"
    wrapped = remote.wrap_key(KeyWrapAlgorithm(alg), b"k" * 32).encrypted_key
    assert priv.decrypt(wrapped, pad) == b"k" * 32
    assert remote.unwrap_key(KeyWrapAlgorithm(alg), wrapped).key == b"k" * 32


@pytest.mark.parametrize("bits", [128, 192, 256])
def test_aes_gcm_cbc_and_key_wrap_with_oct_keys(oct_pair, crypto_client_for, remote_credential, bits):
    raw, key = oct_pair[bits]
    # Remote: a CryptographyClient that can read an oct key (whose JWK has no `k`) wraps "locally" with a random
    # key of its own (azure-keyvault-keys 4.11.3, SymmetricKey.from_jwk), so oct keys are used through a client
    # that cannot read them, as a service principal with only crypto permissions would.
    client = crypto_client_for(key.id, remote_credential)
    aad = b"header"
    gcm = client.encrypt(EncryptionAlgorithm(f"A{bits}GCM"), b"gcm plaintext", additional_authenticated_data=aad)
    assert len(gcm.iv) == 12 and len(gcm.tag) == 16  # the service chooses the IV
    assert AESGCM(raw).decrypt(gcm.iv, gcm.ciphertext + gcm.tag, aad) == b"gcm plaintext"
    back = client.decrypt(EncryptionAlgorithm(f"A{bits}GCM"), gcm.ciphertext, iv=gcm.iv, authentication_tag=gcm.tag,
                          additional_authenticated_data=aad)
    assert back.plaintext == b"gcm plaintext"
    with pytest.raises(HttpResponseError) as exc:  # a wrong tag is refused, not decrypted
        client.decrypt(EncryptionAlgorithm(f"A{bits}GCM"), gcm.ciphertext, iv=gcm.iv, authentication_tag=b"\0" * 16,
                       additional_authenticated_data=aad)
    assert exc.value.status_code == 400

    iv = os.urandom(16)
    cbc = client.encrypt(EncryptionAlgorithm(f"A{bits}CBCPAD"), b"cbc plaintext", iv=iv)
    dec = Cipher(algorithms.AES(raw), modes.CBC(iv)).decryptor()
    unpadder = sym_padding.PKCS7(128).unpadder()
    assert unpadder.update(dec.update(cbc.ciphertext) + dec.finalize()) + unpadder.finalize() == b"cbc plaintext"
    assert client.decrypt(EncryptionAlgorithm(f"A{bits}CBCPAD"), cbc.ciphertext, iv=iv).plaintext == b"cbc plaintext"

    cek = os.urandom(32)
    wrapped = client.wrap_key(KeyWrapAlgorithm(f"A{bits}KW"), cek).encrypted_key
    assert aes_key_unwrap(raw, wrapped) == cek
    assert client.unwrap_key(KeyWrapAlgorithm(f"A{bits}KW"), aes_key_wrap(raw, cek)).key == cek


def test_generated_oct_key_round_trips(key_client: KeyClient, crypto_client_for, remote_credential):
    key = key_client.create_oct_key(unique("aes-generated"), size=256, hardware_protected=True)
    assert key.key_type == "oct-HSM"
    client = crypto_client_for(key.id, remote_credential)
    cek = os.urandom(32)
    assert client.unwrap_key(KeyWrapAlgorithm.aes_256, client.wrap_key(KeyWrapAlgorithm.aes_256, cek).encrypted_key).key == cek


def test_disabled_key_is_refused(key_client: KeyClient, crypto_client_for):
    name = unique("disabled")
    key = key_client.create_rsa_key(name)
    key_client.update_key_properties(name, enabled=False)
    with pytest.raises(HttpResponseError) as exc:
        crypto_client_for(key).sign(SignatureAlgorithm.rs256, hashlib.sha256(b"x").digest())
    assert exc.value.status_code == 403 and exc.value.error.code == "Forbidden"
    assert exc.value.error.message == "Operation sign is not allowed on a disabled key."
    assert exc.value.response.json()["error"]["innererror"]["code"] == "KeyDisabled"


def test_key_ops_limit_what_a_key_does(key_client: KeyClient, crypto_client_for, remote_credential):
    key = key_client.create_rsa_key(unique("sign-only"), key_operations=["sign", "verify"])
    remote = crypto_client_for(key.id, remote_credential)
    assert remote.sign(SignatureAlgorithm.ps256, hashlib.sha256(b"x").digest()).signature
    with pytest.raises(HttpResponseError) as exc:
        remote.encrypt(EncryptionAlgorithm.rsa_oaep_256, b"nope")
    assert exc.value.status_code == 403 and exc.value.error.message == "Operation encrypt is not permitted on this key."
    assert exc.value.response.json()["error"]["innererror"]["code"] == "KeyOperationForbidden"


def test_expired_and_not_yet_valid_keys(key_client: KeyClient, crypto_client_for, remote_credential, rsa_pair):
    past = datetime.now(UTC) - timedelta(days=1)
    expired = key_client.create_rsa_key(unique("expired"), expires_on=past)
    remote = crypto_client_for(expired.id, remote_credential)
    digest = hashlib.sha256(b"x").digest()
    for attempt in (lambda: remote.sign(SignatureAlgorithm.rs256, digest),
                    lambda: remote.encrypt(EncryptionAlgorithm.rsa_oaep, b"x"),
                    lambda: remote.wrap_key(KeyWrapAlgorithm.rsa_oaep, b"k" * 16)):
        with pytest.raises(HttpResponseError) as exc:
            attempt()
        assert exc.value.status_code == 403 and exc.value.error.message.endswith("is not allowed on an expired key.")
    # Decrypt, unwrap and verify still work outside the validity window (Key Vault's date-time controlled operations).
    public = _public_key(expired.key)
    ct = public.encrypt(b"old data", padding.OAEP(padding.MGF1(hashes.SHA1()), hashes.SHA1(), None))
    assert remote.decrypt(EncryptionAlgorithm.rsa_oaep, ct).plaintext == b"old data"
    future = key_client.create_rsa_key(unique("future"), not_before=datetime.now(UTC) + timedelta(days=1))
    with pytest.raises(HttpResponseError) as exc:
        crypto_client_for(future.id, remote_credential).sign(SignatureAlgorithm.rs256, digest)
    assert exc.value.status_code == 403


def test_wrong_algorithm_or_digest_is_a_bad_parameter(key_client: KeyClient, crypto_client_for, remote_credential):
    rsa_key = key_client.create_rsa_key(unique("wrong-alg"))
    ec_key = key_client.create_ec_key(unique("wrong-curve"), curve="P-256")
    remote_rsa = crypto_client_for(rsa_key.id, remote_credential)
    remote_ec = crypto_client_for(ec_key.id, remote_credential)
    attempts = [
        lambda: remote_rsa.sign(SignatureAlgorithm.es256, hashlib.sha256(b"x").digest()),
        lambda: remote_rsa.sign(SignatureAlgorithm.rs256, b"short digest"),
        lambda: remote_ec.sign(SignatureAlgorithm.es384, hashlib.sha384(b"x").digest()),
        lambda: remote_rsa.encrypt(EncryptionAlgorithm.a256_gcm, b"x"),
        lambda: remote_rsa.decrypt(EncryptionAlgorithm.rsa_oaep_256, b"not a ciphertext"),
    ]
    for attempt in attempts:
        with pytest.raises(HttpResponseError) as exc:
            attempt()
        assert exc.value.status_code == 400 and exc.value.error.code == "BadParameter", exc.value.message


def test_crypto_client_from_a_versionless_id_uses_the_latest_version(key_client: KeyClient, crypto_client_for, remote_credential):
    name = unique("versionless")
    first = key_client.create_ec_key(name, curve="P-256")
    latest = key_client.create_ec_key(name, curve="P-256")
    # Denied keys/get, the client never learns the version and posts to /keys/<name>//sign.
    remote = crypto_client_for(f"{key_client.vault_url}/keys/{name}", remote_credential)
    digest = hashlib.sha256(b"latest").digest()
    result = remote.sign(SignatureAlgorithm.es256, digest)
    _verify_locally(_public_key(latest.key), "ES256", digest, result.signature)
    with pytest.raises(InvalidSignature):
        _verify_locally(_public_key(first.key), "ES256", digest, result.signature)
