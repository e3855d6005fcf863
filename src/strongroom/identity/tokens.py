"""Access tokens: issuing them at the token endpoint and verifying them at the vault.

Tokens are RS256 JWTs shaped like Entra's. Verification checks the signature
against this instance's keys (never `none`, never HMAC), `iss`, `aud`, `exp` and
`nbf` with bounded skew, and `tid`; verified claims are cached until the token
expires, so the hot read path pays for one signature check per token.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
import uuid
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from strongroom.barrier import SealedStore
from strongroom.keyvault import records
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


def _new_key() -> dict[str, Any]:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    der = private.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    kid = base64.urlsafe_b64encode(hashlib.sha256(der).digest()[:20]).decode().rstrip("=")
    return {"kid": kid, "pem": pem, "created": now()}


class SigningKeys:
    """The instance's token signing keys; the last one signs, all of them verify."""

    def __init__(self, store: SealedStore) -> None:
        self.store = store
        self.reload()

    def ensure(self) -> None:
        if not self._keys:
            self.store.write({SIGNING_KEYS: records.dump({"keys": [_new_key()]})})
            self.reload()

    def reload(self) -> None:
        # Parsing an RSA key costs ~30 ms; keys already held are reused, so a
        # token with an unknown kid (which triggers a reload) stays cheap.
        known: dict[str, SigningKey] = getattr(self, "_by_kid", {})
        rec = records.load(self.store, SIGNING_KEYS) or {"keys": []}
        self._keys = [
            known.get(k["kid"])
            or SigningKey(k["kid"], serialization.load_pem_private_key(k["pem"].encode(), password=None))
            for k in rec["keys"]
        ]
        self._by_kid = {k.kid: k for k in self._keys}

    @property
    def current(self) -> SigningKey:
        return self._keys[-1]

    def find(self, kid: str) -> SigningKey | None:
        key = self._by_kid.get(kid)
        if key is None:  # another worker may have rotated
            self.reload()
            key = self._by_kid.get(kid)
        return key

    def jwks(self) -> dict[str, Any]:
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
        key = self.keys.current
        token = jwt.encode(claims, key.private, algorithm="RS256", headers={"kid": key.kid, "typ": "JWT"})
        return token, TOKEN_LIFETIME


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
