"""Access tokens are signed without PyJWT's general encoder: the bytes must be exactly what it would make."""

from __future__ import annotations

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

from strongroom.identity.tokens import SigningKey


def test_signed_token_is_pyjwts_byte_for_byte_and_verifies():
    key = SigningKey("kid-1", rsa.generate_private_key(public_exponent=65537, key_size=2048))
    claims = {"aud": "https://vault.localhost:8443", "iss": "https://localhost:8443/t/v2.0", "iat": 1_700_000_000,
              "nbf": 1_700_000_000, "exp": 1_700_003_600, "oid": "o", "appid": "a", "uti": "u" * 32,
              "xms_mirid": "/subscriptions/s/resourceGroups/rg-é/providers/x/y"}
    token = key.sign_rs256(claims)
    assert token == jwt.encode(claims, key.private, algorithm="RS256", headers={"kid": "kid-1", "typ": "JWT"})
    assert jwt.get_unverified_header(token) == {"alg": "RS256", "kid": "kid-1", "typ": "JWT"}
    assert jwt.decode(token, key.private.public_key(), algorithms=["RS256"], audience=claims["aud"],
                      options={"verify_exp": False}) == claims
