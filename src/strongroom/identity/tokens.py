"""Access tokens: issuing them at the token endpoint and verifying them at the vault.

Tokens are RS256 JWTs shaped like Entra's. Verification checks the signature
against this instance's keys (never `none`, never HMAC), `iss`, `aud`, `exp` and
`nbf` with bounded skew, and `tid`; verified claims are cached until the token
expires, so the hot read path pays for one signature check per token.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from strongroom.barrier import SealedStore, records
from strongroom.util.clock import now

SIGNING_KEYS = "identity/signing-keys"
ALGORITHMS = ["RS256"]
TOKEN_LIFETIME = 3600
MAX_SKEW = 300
_CACHE_LIMIT = 10000


class TokenError(Exception):
    """The token is not acceptable; the message says why (it never contains the token)."""


@dataclass(frozen=True)
class SigningKey:
    kid: str
    private: rsa.RSAPrivateKey

    def public_jwk(self) -> dict[str, Any]:
        jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.private.public_key()))
        return {"kty": "RSA", "use": "sig", "kid": self.kid, "alg": "RS256", "n": jwk["n"], "e": jwk["e"]}

    def sign_rs256(self, claims: dict[str, Any]) -> str:
        """A compact RS256 JWS of `claims` with header {alg, kid, typ: JWT}, as PyJWT's encode makes it.

        The token endpoint signs one per login; PyJWT's general encode (header
        merging, key preparation and checks, datetime conversion) added ~5% to it.
        """
        payload = _b64(json.dumps(claims, separators=(",", ":")).encode())
        signing_input = _header_segment(self.kid) + b"." + payload
        signature = self.private.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())
        return (signing_input + b"." + _b64(signature)).decode()


def _b64(data: bytes) -> bytes:
    return base64.urlsafe_b64encode(data).rstrip(b"=")


@functools.lru_cache(maxsize=64)
def _header_segment(kid: str) -> bytes:
    return _b64(json.dumps({"alg": "RS256", "kid": kid, "typ": "JWT"}, separators=(",", ":"), sort_keys=True).encode())


def _new_key() -> dict[str, Any]:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    der = private.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    kid = base64.urlsafe_b64encode(hashlib.sha256(der).digest()[:20]).decode().rstrip("=")
    return {"kid": kid, "pem": pem, "created": now()}


def _load_rsa_key(pem: str) -> rsa.RSAPrivateKey:
    """A stored signing key; tokens are RS256 only, so any other kind of key is refused here, not at signing."""
    key = serialization.load_pem_private_key(pem.encode(), password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise TokenError("a stored token signing key is not an RSA key")
    return key


class SigningKeys:
    """Token signing keys kept in storage; the newest signs, all kept keys verify and are published.

    Rotation appends a key and retires the previous one; a retired key is kept
    (and published in the JWKS) until every token it signed has expired, and the
    immediately previous key is always kept. Other processes notice a rotation
    through a small generation record that is read at most once per
    `CHECK_INTERVAL` (and when a token names an unknown kid), so the hot path
    does no storage I/O.
    """

    CHECK_INTERVAL = 1.0

    def __init__(self, store: SealedStore, record_key: str = SIGNING_KEYS, retain: int = TOKEN_LIFETIME + MAX_SKEW) -> None:
        self.store = store
        self.record_key = record_key
        self.generation_key = record_key + "/generation"
        self.retain = retain
        self._generation: int | None = None
        self._checked = 0.0
        self._lock = threading.Lock()
        self.reload()

    def ensure(self) -> None:
        if not self._keys:
            self._write({"keys": [_new_key()]}, generation=1)
            self.reload()

    def _write(self, rec: dict[str, Any], generation: int) -> None:
        self.store.write({self.record_key: records.dump(rec), self.generation_key: str(generation).encode()})

    def _stored_generation(self) -> int:
        raw = self.store.get(self.generation_key)
        return int(raw) if raw else 0

    def reload(self) -> None:
        # Parsing an RSA key costs ~30 ms; keys already held are reused, so a
        # token with an unknown kid (which triggers a reload) stays cheap.
        known: dict[str, SigningKey] = getattr(self, "_by_kid", {})
        generation = self._stored_generation()
        rec = records.load(self.store, self.record_key) or {"keys": []}
        keys = [
            known.get(k["kid"])
            or SigningKey(k["kid"], _load_rsa_key(k["pem"]))
            for k in rec["keys"]
        ]
        self._keys, self._by_kid = keys, {k.kid: k for k in keys}
        self._generation, self._checked = generation, time.monotonic()

    def refresh(self, force: bool = False) -> None:
        """Reload if another process rotated since we last looked (at most once per CHECK_INTERVAL unless forced)."""
        t = time.monotonic()
        if not force and t - self._checked < self.CHECK_INTERVAL:
            return
        with self._lock:
            self._checked = t
            if self._stored_generation() != self._generation:
                self.reload()

    def rotate(self) -> SigningKey:
        """Add a new signing key; keep the previous one and any retired within `retain` seconds."""
        with self._lock:
            rec = records.load(self.store, self.record_key) or {"keys": []}
            t = now()
            kept = rec["keys"]
            if kept:
                kept[-1].setdefault("retired", t)
            # Drop keys retired long enough ago that no token they signed is still valid; keep the previous one always.
            kept = [k for i, k in enumerate(kept) if i == len(kept) - 1 or t - k.get("retired", t) < self.retain]
            kept.append(_new_key())
            self._write({"keys": kept}, generation=self._stored_generation() + 1)
            self.reload()
            return self._keys[-1]

    @property
    def current(self) -> SigningKey:
        self.refresh()
        return self._keys[-1]

    def find(self, kid: str) -> SigningKey | None:
        key = self._by_kid.get(kid)
        if key is None:  # another worker may have rotated: one small read tells
            self.refresh(force=True)
            key = self._by_kid.get(kid)
        return key

    def jwks(self) -> dict[str, Any]:
        self.refresh()
        return {"keys": [k.public_jwk() for k in self._keys]}


class TokenIssuer:
    def __init__(self, keys: SigningKeys, issuer: str, tenant_id: str) -> None:
        self.keys = keys
        self.issuer = issuer
        self.tenant_id = tenant_id

    def issue(self, *, audience: str, object_id: str, app_id: str, extra: dict[str, Any] | None = None) -> tuple[str, int]:
        t = now()
        claims: dict[str, Any] = {
            "aud": audience,
            "iss": self.issuer,
            "iat": t,
            "nbf": t,
            "exp": t + TOKEN_LIFETIME,
            "tid": self.tenant_id,
            "oid": object_id,
            "sub": object_id,
            "appid": app_id,
            "azp": app_id,
            "idtyp": "app",
            "ver": "2.0",
            "uti": uuid.uuid4().hex,
        }
        claims.update(extra or {})
        return self.keys.current.sign_rs256(claims), TOKEN_LIFETIME


class TokenVerifier:
    def __init__(self, keys: SigningKeys, issuer: str, tenant_id: str, audiences: list[str]) -> None:
        self.keys = keys
        self.issuer = issuer
        self.tenant_id = tenant_id
        self.audiences = audiences
        self._cache: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()

    def verify(self, token: str) -> dict[str, Any]:
        cached = self._cache.get(token)
        t = now()
        if cached is not None:
            if cached["exp"] + MAX_SKEW > t:
                return cached
            with self._lock:
                self._cache.pop(token, None)
        claims = self._verify_uncached(token)
        with self._lock:
            if len(self._cache) >= _CACHE_LIMIT:
                self._cache.clear()
            self._cache[token] = claims
        return claims

    def _verify_uncached(self, token: str) -> dict[str, Any]:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise TokenError("[AggregatedAuthenticationFailure] Error validating token: the token is not a JWT.") from None
        if header.get("alg") not in ALGORITHMS:
            raise TokenError(f"[AggregatedAuthenticationFailure] Error validating token: algorithm '{header.get('alg')}' is not allowed.")
        key = self.keys.find(str(header.get("kid", "")))
        if key is None:
            raise TokenError("AKV10046: Unable to resolve the key used for signature validation.")
        try:
            claims = jwt.decode(
                token,
                key.private.public_key(),
                algorithms=ALGORITHMS,
                audience=self.audiences,
                issuer=self.issuer,
                leeway=MAX_SKEW,
                options={"require": ["exp", "nbf", "iat", "iss", "aud", "tid", "oid"]},
            )
        except jwt.ExpiredSignatureError:
            raise TokenError("[TokenExpired] Error validating token: 'S2S12086'.") from None
        except jwt.ImmatureSignatureError:
            raise TokenError("[TokenNotYetValid] Error validating token: the token is not valid yet.") from None
        except jwt.InvalidAudienceError:
            raise TokenError(f"AKV10022: Invalid audience. Expected {' or '.join(self.audiences)}.") from None
        except jwt.InvalidIssuerError:
            raise TokenError(f"AKV10032: Invalid issuer. Expected one of {self.issuer}.") from None
        except jwt.MissingRequiredClaimError as exc:
            raise TokenError(f"[AggregatedAuthenticationFailure] Error validating token: claim '{exc.claim}' is missing.") from None
        except jwt.PyJWTError:
            raise TokenError("[AggregatedAuthenticationFailure] Error validating token: 'S2S17001'.") from None
        if claims.get("tid") != self.tenant_id:
            raise TokenError(f"AKV10032: Invalid issuer. Expected one of {self.issuer}; the token's tenant differs.")
        # Identity claims feed authorization and audit: they must be plain strings.
        for claim in ("oid", "sub", "appid", "azp"):
            if claim in claims and (not isinstance(claims[claim], str) or not claims[claim]):
                raise TokenError(f"[AggregatedAuthenticationFailure] Error validating token: claim '{claim}' is not valid.")
        return claims
