"""Key Vault's cryptographic operations over stored key material, with `cryptography`.

Signing is digest-based, as Key Vault's: the client hashes, sends the digest,
and gets the signature (RS*/PS* as PKCS#1 v1.5/PSS over the prehashed digest,
PSS salt = digest length; ES* as the raw r||s of JWS). Encryption: RSA1_5,
RSA-OAEP (SHA-1), RSA-OAEP-256 for RSA keys; AES-GCM (the service picks the
96-bit IV and returns it with the tag), AES-CBC and AES-CBC with PKCS#7
padding (the client supplies the IV) for oct keys. Key wrapping: the RSA
algorithms, and AES key wrap (RFC 3394, A*KW) for oct keys.

Every failure is a KeyVaultError (400 BadParameter for a wrong algorithm,
value or size), never an exception that could turn into a 500.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import padding as sym_padding
from cryptography.hazmat.primitives.asymmetric import ec, padding, utils
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.keywrap import InvalidUnwrap, aes_key_unwrap, aes_key_wrap

from strongroom.keyvault import jwk
from strongroom.keyvault.errors import KeyVaultError, bad_parameter

SIGN_HASHES: dict[str, hashes.HashAlgorithm] = {
    "RS256": hashes.SHA256(), "RS384": hashes.SHA384(), "RS512": hashes.SHA512(),
    "PS256": hashes.SHA256(), "PS384": hashes.SHA384(), "PS512": hashes.SHA512(),
    "ES256": hashes.SHA256(), "ES384": hashes.SHA384(), "ES512": hashes.SHA512(), "ES256K": hashes.SHA256(),
}
# ES algorithms are bound to one curve each (RFC 7518 3.4).
ES_CURVES = {"ES256": "P-256", "ES384": "P-384", "ES512": "P-521", "ES256K": "P-256K"}
RSA_ENCRYPTION = ("RSA1_5", "RSA-OAEP", "RSA-OAEP-256")
AES_GCM = {"A128GCM": 128, "A192GCM": 192, "A256GCM": 256}
AES_CBC = {"A128CBC": 128, "A192CBC": 192, "A256CBC": 256}
AES_CBCPAD = {"A128CBCPAD": 128, "A192CBCPAD": 192, "A256CBCPAD": 256}
AES_KW = {"A128KW": 128, "A192KW": 192, "A256KW": 256}
# Algorithms in the spec that this server does not implement (HSM-only or deprecated).
UNSUPPORTED = {"HS256", "HS384", "HS512", "RSNULL", "CKM_AES_KEY_WRAP", "CKM_AES_KEY_WRAP_PAD",
               "A128KWPAD", "A192KWPAD", "A256KWPAD"}


@dataclass
class Result:
    value: bytes
    iv: bytes | None = None
    tag: bytes | None = None
    aad: bytes | None = None


def _alg(alg: Any, known: tuple[str, ...] | dict, what: str) -> str:
    if not isinstance(alg, str) or not alg:
        raise bad_parameter(f"The 'alg' property is required and must name a {what} algorithm.")
    if alg in UNSUPPORTED:
        raise bad_parameter(f"The algorithm '{alg}' is not supported by this vault.")
    if alg not in known:
        raise bad_parameter(f"Invalid algorithm '{alg}' for this operation.")
    return alg


def _bad_key(alg: str, kty: str) -> KeyVaultError:
    return bad_parameter(f"The algorithm '{alg}' is not valid for a key of type '{kty}'.")


def _aes_key(material: dict[str, Any], kty: str, alg: str, bits: int) -> bytes:
    if jwk.family(kty) != "oct":
        raise _bad_key(alg, kty)
    key = jwk.private_key(material, kty)
    if len(key) * 8 != bits:
        raise bad_parameter(f"The algorithm '{alg}' needs a {bits}-bit key; this key has {len(key) * 8} bits.")
    return key


def _rsa_padding(alg: str) -> padding.AsymmetricPadding:
    if alg == "RSA1_5":
        return padding.PKCS1v15()
    h: hashes.HashAlgorithm = hashes.SHA1() if alg == "RSA-OAEP" else hashes.SHA256()
    return padding.OAEP(mgf=padding.MGF1(h), algorithm=h, label=None)


# -- sign / verify ---------------------------------------------------------------


def _check_sign_key(alg: str, material: dict[str, Any], kty: str, digest: bytes) -> None:
    fam = jwk.family(kty)
    if alg.startswith(("RS", "PS")) and fam != "RSA" or alg.startswith("ES") and fam != "EC" or fam == "oct":
        raise _bad_key(alg, kty)
    if fam == "EC" and ES_CURVES[alg] != material.get("crv"):
        raise bad_parameter(f"The algorithm '{alg}' cannot be used with a key on curve {material.get('crv')}.")
    size = SIGN_HASHES[alg].digest_size
    if len(digest) != size:
        raise bad_parameter(f"The digest for algorithm '{alg}' must be {size} bytes; {len(digest)} were given.")


def sign(material: dict[str, Any], kty: str, alg: Any, digest: bytes) -> bytes:
    alg = _alg(alg, SIGN_HASHES, "signature")
    _check_sign_key(alg, material, kty, digest)
    key = jwk.private_key(material, kty)
    prehashed = utils.Prehashed(SIGN_HASHES[alg])
    if alg.startswith("RS"):
        return key.sign(digest, padding.PKCS1v15(), prehashed)
    if alg.startswith("PS"):
        return key.sign(digest, padding.PSS(padding.MGF1(SIGN_HASHES[alg]), len(digest)), prehashed)
    r, s = utils.decode_dss_signature(key.sign(digest, ec.ECDSA(prehashed)))
    size = (jwk.CURVE_BITS[material["crv"]] + 7) // 8
    return r.to_bytes(size, "big") + s.to_bytes(size, "big")


def verify(material: dict[str, Any], kty: str, alg: Any, digest: bytes, signature: bytes) -> bool:
    alg = _alg(alg, SIGN_HASHES, "signature")
    _check_sign_key(alg, material, kty, digest)
    key = jwk.public_key(material, kty)
    prehashed = utils.Prehashed(SIGN_HASHES[alg])
    try:
        if alg.startswith("RS"):
            key.verify(signature, digest, padding.PKCS1v15(), prehashed)
        elif alg.startswith("PS"):
            key.verify(signature, digest, padding.PSS(padding.MGF1(SIGN_HASHES[alg]), len(digest)), prehashed)
        else:
            size = (jwk.CURVE_BITS[material["crv"]] + 7) // 8
            if len(signature) != 2 * size:
                return False
            der = utils.encode_dss_signature(int.from_bytes(signature[:size], "big"), int.from_bytes(signature[size:], "big"))
            key.verify(der, digest, ec.ECDSA(prehashed))
    except InvalidSignature:
        return False
    return True


# -- encrypt / decrypt ------------------------------------------------------------

ENCRYPTION = RSA_ENCRYPTION + tuple(AES_GCM) + tuple(AES_CBC) + tuple(AES_CBCPAD)


def encrypt(material: dict[str, Any], kty: str, alg: Any, plaintext: bytes, iv: bytes | None, aad: bytes | None) -> Result:
    alg = _alg(alg, ENCRYPTION, "encryption")
    if alg in RSA_ENCRYPTION:
        if jwk.family(kty) != "RSA":
            raise _bad_key(alg, kty)
        try:
            return Result(jwk.public_key(material, kty).encrypt(plaintext, _rsa_padding(alg)))
        except ValueError:
            raise bad_parameter("The plaintext is too long for this key and algorithm.") from None
    if alg in AES_GCM:
        key = _aes_key(material, kty, alg, AES_GCM[alg])
        if iv:
            raise bad_parameter(f"The algorithm '{alg}' does not take an iv; the service generates it.")
        nonce = os.urandom(12)
        sealed = AESGCM(key).encrypt(nonce, plaintext, aad or None)
        return Result(sealed[:-16], iv=nonce, tag=sealed[-16:], aad=aad or None)
    bits = AES_CBC.get(alg) or AES_CBCPAD[alg]
    key = _aes_key(material, kty, alg, bits)
    if not iv or len(iv) != 16:
        raise bad_parameter(f"The algorithm '{alg}' needs a 16-byte iv.")
    if alg in AES_CBCPAD:
        padder = sym_padding.PKCS7(128).padder()
        plaintext = padder.update(plaintext) + padder.finalize()
    elif len(plaintext) % 16:
        raise bad_parameter(f"The plaintext for algorithm '{alg}' must be a multiple of 16 bytes.")
    enc = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
    return Result(enc.update(plaintext) + enc.finalize(), iv=iv)


def decrypt(
    material: dict[str, Any], kty: str, alg: Any, ciphertext: bytes, iv: bytes | None, aad: bytes | None, tag: bytes | None
) -> Result:
    alg = _alg(alg, ENCRYPTION, "encryption")
    if alg in RSA_ENCRYPTION:
        if jwk.family(kty) != "RSA":
            raise _bad_key(alg, kty)
        try:
            return Result(jwk.private_key(material, kty).decrypt(ciphertext, _rsa_padding(alg)))
        except ValueError:
            raise bad_parameter("The ciphertext could not be decrypted with this key and algorithm.") from None
    if alg in AES_GCM:
        key = _aes_key(material, kty, alg, AES_GCM[alg])
        if not iv or not tag:
            raise bad_parameter(f"The algorithm '{alg}' needs the 'iv' and 'tag' returned by encrypt.")
        try:
            return Result(AESGCM(key).decrypt(iv, ciphertext + tag, aad or None))
        except (InvalidTag, ValueError):
            raise bad_parameter("The ciphertext could not be decrypted: the tag, iv or aad does not match.") from None
    bits = AES_CBC.get(alg) or AES_CBCPAD[alg]
    key = _aes_key(material, kty, alg, bits)
    if not iv or len(iv) != 16:
        raise bad_parameter(f"The algorithm '{alg}' needs a 16-byte iv.")
    if not ciphertext or len(ciphertext) % 16:
        raise bad_parameter(f"The ciphertext for algorithm '{alg}' must be a non-empty multiple of 16 bytes.")
    dec = Cipher(algorithms.AES(key), modes.CBC(iv)).decryptor()
    plain = dec.update(ciphertext) + dec.finalize()
    if alg in AES_CBCPAD:
        try:
            unpadder = sym_padding.PKCS7(128).unpadder()
            plain = unpadder.update(plain) + unpadder.finalize()
        except ValueError:
            raise bad_parameter("The ciphertext could not be decrypted: bad padding.") from None
    return Result(plain)


# -- wrap / unwrap ----------------------------------------------------------------

WRAPPING = RSA_ENCRYPTION + tuple(AES_KW)


def wrap(material: dict[str, Any], kty: str, alg: Any, key_bytes: bytes) -> bytes:
    alg = _alg(alg, WRAPPING, "key wrap")
    if alg in RSA_ENCRYPTION:
        return encrypt(material, kty, alg, key_bytes, None, None).value
    kek = _aes_key(material, kty, alg, AES_KW[alg])
    if len(key_bytes) < 16 or len(key_bytes) % 8:
        raise bad_parameter("AES key wrap needs a key of at least 16 bytes, a multiple of 8.")
    return aes_key_wrap(kek, key_bytes)


def unwrap(material: dict[str, Any], kty: str, alg: Any, wrapped: bytes) -> bytes:
    alg = _alg(alg, WRAPPING, "key wrap")
    if alg in RSA_ENCRYPTION:
        return decrypt(material, kty, alg, wrapped, None, None, None).value
    kek = _aes_key(material, kty, alg, AES_KW[alg])
    try:
        return aes_key_unwrap(kek, wrapped)
    except (InvalidUnwrap, ValueError):
        raise bad_parameter("The wrapped key could not be unwrapped with this key.") from None
