"""JSON Web Keys as Key Vault speaks them: generation, import, public views.

Key material is kept as a JWK dict (RFC 7517/7518 field names, base64url without
padding) inside a sealed record; `public_jwk` is what ever leaves the server.
Key types: RSA/RSA-HSM (2048, 3072, 4096), EC/EC-HSM (P-256, P-384, P-521,
P-256K) and oct/oct-HSM (AES 128, 192, 256). "-HSM" types are accepted and
echoed, as Key Vault Premium and Managed HSM do; the material is software
either way (documented in docs/keys-and-certificates.md).
"""

from __future__ import annotations

import base64
import os
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec, rsa

from strongroom.keyvault.errors import KeyVaultError, bad_parameter

RSA_TYPES = ("RSA", "RSA-HSM")
EC_TYPES = ("EC", "EC-HSM")
OCT_TYPES = ("oct", "oct-HSM")
KEY_TYPES = RSA_TYPES + EC_TYPES + OCT_TYPES
RSA_SIZES = (2048, 3072, 4096)
OCT_SIZES = (128, 192, 256)
CURVES: dict[str, ec.EllipticCurve] = {
    "P-256": ec.SECP256R1(),
    "P-384": ec.SECP384R1(),
    "P-521": ec.SECP521R1(),
    "P-256K": ec.SECP256K1(),
}
CURVE_BITS = {"P-256": 256, "P-384": 384, "P-521": 521, "P-256K": 256}
ALL_OPS = ("encrypt", "decrypt", "sign", "verify", "wrapKey", "unwrapKey")
EC_OPS = ("sign", "verify")
# What Key Vault answers in key_ops when a create names none.
DEFAULT_OPS = {"RSA": ALL_OPS, "EC": EC_OPS, "oct": ("encrypt", "decrypt", "wrapKey", "unwrapKey")}
KNOWN_OPS = ALL_OPS + ("import", "export")
PUBLIC_FIELDS = ("n", "e", "crv", "x", "y")
PRIVATE_FIELDS = ("d", "p", "q", "dp", "dq", "qi", "k")


def b64u(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def b64u_decode(text: Any, field: str) -> bytes:
    if not isinstance(text, str):
        raise bad_parameter(f"The JSON Web Key field '{field}' must be a base64url string.")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (ValueError, TypeError):
        raise bad_parameter(f"The JSON Web Key field '{field}' is not valid base64url.") from None


def _int_b64(value: int, length: int | None = None) -> str:
    length = length or max(1, (value.bit_length() + 7) // 8)
    return b64u(value.to_bytes(length, "big"))


def _b64_int(text: Any, field: str) -> int:
    return int.from_bytes(b64u_decode(text, field), "big")


def family(kty: str) -> str:
    """RSA, EC or oct, whatever the protection suffix."""
    return kty.split("-", 1)[0]


def check_kty(kty: Any) -> str:
    if not isinstance(kty, str) or kty not in KEY_TYPES:
        raise bad_parameter(f"The key type '{kty}' is not valid. Valid key types: {', '.join(KEY_TYPES)}.")
    return kty


def generate(kty: str, key_size: Any = None, curve: Any = None, public_exponent: Any = None) -> dict[str, Any]:
    """A new key's JWK material (private parts included)."""
    fam = family(check_kty(kty))
    if fam == "RSA":
        size = 2048 if key_size is None else key_size
        if isinstance(size, bool) or size not in RSA_SIZES:
            raise bad_parameter(f"The key size {key_size} is not valid for an RSA key. Valid sizes: 2048, 3072, 4096.")
        exponent = 65537 if public_exponent is None else public_exponent
        if isinstance(exponent, bool) or exponent not in (3, 65537):
            raise bad_parameter(f"The public exponent {public_exponent} is not supported; use 65537.")
        return rsa_to_jwk(rsa.generate_private_key(exponent, size))
    if fam == "EC":
        crv = curve or "P-256"
        if not isinstance(crv, str) or crv not in CURVES:
            raise bad_parameter(f"The curve '{curve}' is not valid. Valid curves: {', '.join(CURVES)}.")
        if key_size is not None and key_size != CURVE_BITS[crv]:
            raise bad_parameter(f"The key size {key_size} does not match curve {crv}.")
        return ec_to_jwk(ec.generate_private_key(CURVES[crv]), crv)
    size = 256 if key_size is None else key_size
    if isinstance(size, bool) or size not in OCT_SIZES:
        raise bad_parameter(f"The key size {key_size} is not valid for an oct key. Valid sizes: 128, 192, 256.")
    return {"k": b64u(os.urandom(size // 8))}


def rsa_to_jwk(key: rsa.RSAPrivateKey) -> dict[str, Any]:
    priv = key.private_numbers()
    pub = priv.public_numbers
    return {
        "n": _int_b64(pub.n), "e": _int_b64(pub.e), "d": _int_b64(priv.d), "p": _int_b64(priv.p),
        "q": _int_b64(priv.q), "dp": _int_b64(priv.dmp1), "dq": _int_b64(priv.dmq1), "qi": _int_b64(priv.iqmp),
    }


def ec_to_jwk(key: ec.EllipticCurvePrivateKey, crv: str) -> dict[str, Any]:
    size = (CURVE_BITS[crv] + 7) // 8
    priv = key.private_numbers()
    return {
        "crv": crv, "x": _int_b64(priv.public_numbers.x, size), "y": _int_b64(priv.public_numbers.y, size),
        "d": _int_b64(priv.private_value, size),
    }


def curve_name(curve: ec.EllipticCurve) -> str:
    for name, c in CURVES.items():
        if c.name == curve.name:
            return name
    raise bad_parameter(f"The curve {curve.name} is not supported.")


def private_key(material: dict[str, Any], kty: str) -> Any:
    """The `cryptography` private key (bytes for oct) behind stored material."""
    fam = family(kty)
    if fam == "RSA":
        rsa_pub = rsa.RSAPublicNumbers(_b64_int(material["e"], "e"), _b64_int(material["n"], "n"))
        return rsa.RSAPrivateNumbers(
            _b64_int(material["p"], "p"), _b64_int(material["q"], "q"), _b64_int(material["d"], "d"),
            _b64_int(material["dp"], "dp"), _b64_int(material["dq"], "dq"), _b64_int(material["qi"], "qi"), rsa_pub,
        ).private_key()
    if fam == "EC":
        ec_pub = ec.EllipticCurvePublicNumbers(
            _b64_int(material["x"], "x"), _b64_int(material["y"], "y"), CURVES[material["crv"]]
        )
        return ec.EllipticCurvePrivateNumbers(_b64_int(material["d"], "d"), ec_pub).private_key()
    return b64u_decode(material["k"], "k")


def public_key(material: dict[str, Any], kty: str) -> Any:
    fam = family(kty)
    if fam == "RSA":
        return rsa.RSAPublicNumbers(_b64_int(material["e"], "e"), _b64_int(material["n"], "n")).public_key()
    if fam == "EC":
        return ec.EllipticCurvePublicNumbers(
            _b64_int(material["x"], "x"), _b64_int(material["y"], "y"), CURVES[material["crv"]]
        ).public_key()
    raise KeyVaultError(400, "BadParameter", "A symmetric key has no public part.")


def public_exponent(material: dict[str, Any]) -> int:
    return _b64_int(material["e"], "e")


def key_size(material: dict[str, Any], kty: str) -> int | None:
    fam = family(kty)
    if fam == "RSA":
        return _b64_int(material["n"], "n").bit_length()
    if fam == "oct":
        return len(b64u_decode(material["k"], "k")) * 8
    return None


def public_jwk(material: dict[str, Any]) -> dict[str, Any]:
    """The fields that may leave the server: never d, p, q, dp, dq, qi or k."""
    return {f: material[f] for f in PUBLIC_FIELDS if f in material}


MAX_PUBLIC_EXPONENT = 2**32  # what Key Vault and most libraries accept; larger ones only cost time


def _check_rsa_numbers(n: int, e: int, d: int) -> None:
    """Refuse an RSA key's numbers before any arithmetic on them: every check here is a comparison.

    Recovering the primes from (n, e, d) costs time in the size of e; a public
    exponent of thousands of bits held the event loop for seconds.
    """
    if n.bit_length() not in RSA_SIZES:
        raise bad_parameter(f"RSA keys of {n.bit_length()} bits are not supported. Valid sizes: 2048, 3072, 4096.")
    if not (3 <= e <= MAX_PUBLIC_EXPONENT and e & 1):
        raise bad_parameter("The RSA key's public exponent 'e' must be odd and between 3 and 2^32 (usually 65537).")
    if not 1 < d < n:
        raise bad_parameter("The RSA key's private exponent 'd' must be smaller than its modulus 'n'.")


def import_material(jwk: Any) -> tuple[str, dict[str, Any]]:
    """Validate an imported JWK (KeyImportParameters.key); returns (kty, private material).

    The key must carry its private part: Key Vault stores keys, not bare public keys.
    """
    if not isinstance(jwk, dict):
        raise bad_parameter("The 'key' property must be a JSON Web Key object.")
    kty = check_kty(jwk.get("kty"))
    fam = family(kty)
    try:
        if fam == "RSA":
            for f in ("n", "e", "d"):
                if not jwk.get(f):
                    raise bad_parameter(f"The RSA key is missing its '{f}' field; an imported key needs its private part.")
            n, e, d = (_b64_int(jwk[f], f) for f in ("n", "e", "d"))
            _check_rsa_numbers(n, e, d)
            if all(jwk.get(f) for f in ("p", "q")):
                p, q = _b64_int(jwk["p"], "p"), _b64_int(jwk["q"], "q")
                if not (1 < p < n and 1 < q < n and p * q == n):
                    raise bad_parameter("The RSA key's primes 'p' and 'q' do not match its modulus 'n'.")
            else:
                p, q = rsa.rsa_recover_prime_factors(n, e, d)
            priv = rsa.RSAPrivateNumbers(
                p, q, d, rsa.rsa_crt_dmp1(d, p), rsa.rsa_crt_dmq1(d, q), rsa.rsa_crt_iqmp(p, q),
                rsa.RSAPublicNumbers(e, n),
            ).private_key()
            return kty, rsa_to_jwk(priv)
        if fam == "EC":
            crv = jwk.get("crv")
            if not isinstance(crv, str) or crv not in CURVES:
                raise bad_parameter(f"The curve '{crv}' is not valid. Valid curves: {', '.join(CURVES)}.")
            if not jwk.get("d"):
                raise bad_parameter("The EC key is missing its 'd' field; an imported key needs its private part.")
            d_ec = _b64_int(jwk["d"], "d")
            if not 0 < d_ec or d_ec.bit_length() > CURVE_BITS[crv]:
                raise bad_parameter(f"The EC key's private value 'd' is out of range for curve {crv}.")
            priv_ec = ec.derive_private_key(d_ec, CURVES[crv])
            if jwk.get("x") and jwk.get("y"):
                nums = priv_ec.public_key().public_numbers()
                if (nums.x, nums.y) != (_b64_int(jwk["x"], "x"), _b64_int(jwk["y"], "y")):
                    raise bad_parameter("The EC key's public point does not match its private value.")
            return kty, ec_to_jwk(priv_ec, crv)
        raw = b64u_decode(jwk.get("k"), "k")
        if len(raw) * 8 not in OCT_SIZES:
            raise bad_parameter(f"oct keys of {len(raw) * 8} bits are not supported. Valid sizes: 128, 192, 256.")
        return kty, {"k": b64u(raw)}
    except ValueError:
        raise bad_parameter("The JSON Web Key is not a valid key.") from None


def check_key_ops(ops: Any) -> list[str] | None:
    if ops is None:
        return None
    if not isinstance(ops, list) or not all(isinstance(o, str) for o in ops):
        raise bad_parameter("'key_ops' must be an array of strings.")
    for o in ops:
        if o not in KNOWN_OPS:
            raise bad_parameter(f"The key operation '{o}' is not valid. Valid operations: {', '.join(KNOWN_OPS)}.")
    return list(dict.fromkeys(ops))
