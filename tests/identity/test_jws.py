"""The client-assertion parser accepts exactly the tokens PyJWT accepted before it, and verifies the same signatures.

The token endpoint used to parse assertions with PyJWT (three times per login); it
now parses once with identity/jws.py. A token one accepts and the other refuses
would change which assertions get AADSTS50027, so both are run over the same
well-formed and malformed inputs.
"""

from __future__ import annotations

import base64
import json

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from strongroom.identity.jws import MalformedToken, parse, signature_valid

RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
EC_KEY = ec.generate_private_key(ec.SECP256R1())
CLAIMS = {"iss": "https://issuer.example", "sub": "system:serviceaccount:ns:sa", "aud": ["api://AzureADTokenExchange"],
          "exp": 2_000_000_000, "iat": 1_700_000_000}


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def obj(value: object) -> str:
    return b64(json.dumps(value).encode())


GOOD = jwt.encode(CLAIMS, RSA_KEY, algorithm="RS256", headers={"kid": "k1"})
H, P, S = GOOD.split(".")

TOKENS = {
    "good": GOOD,
    "padded-signature": f"{H}.{P}.{S}" + "=" * (-len(S) % 4),
    "over-padded": f"{H}.{P}.{S}===",
    "bad-padding-length": f"{H}.{P}.{S}=",
    "non-canonical-last-char": f"{H}.{P}.{S[:-1]}{'B' if S[-1] == 'A' else chr(ord(S[-1]) + 1)}",
    "standard-alphabet": f"{H}.{P}.{S.replace('-', '+').replace('_', '/')}+/",
    "junk-characters": f"{H}.{P}.!!!!",
    "two-segments": f"{H}.{P}",
    "four-segments": f"{H}.{P}.{S}.{S}",
    "empty": "..",
    "one-char-segment": f"{H}.{P}.A",
    "header-not-object": f"{obj([1, 2])}.{P}.{S}",
    "payload-not-object": f"{H}.{obj('claims')}.{S}",
    "header-not-json": f"{b64(b'{nope')}.{P}.{S}",
    "payload-not-utf8": f"{H}.{b64(bytes([0xff, 0xfe]))}.{S}",
    "kid-number": f"{obj({'alg': 'RS256', 'kid': 7})}.{P}.{S}",
    "crit-unsupported": f"{obj({'alg': 'RS256', 'crit': ['exp'], 'exp': 1})}.{P}.{S}",
    "crit-empty": f"{obj({'alg': 'RS256', 'crit': []})}.{P}.{S}",
    "crit-b64-missing": f"{obj({'alg': 'RS256', 'crit': ['b64']})}.{P}.{S}",
    "crit-b64-true": f"{obj({'alg': 'RS256', 'crit': ['b64'], 'b64': True})}.{P}.{S}",
    "b64-false": f"{obj({'alg': 'RS256', 'crit': ['b64'], 'b64': False})}..{S}",
    "deep-json": f"{H}.{b64(b'[' * 100000)}.{S}",
}


def pyjwt_accepts(token: str) -> bool:
    """What the endpoint did before: PyJWT's unverified header and claims."""
    try:
        jwt.get_unverified_header(token)
        claims = jwt.decode(token, options={"verify_signature": False})
    except (jwt.PyJWTError, ValueError):
        return False
    return isinstance(claims, dict)


def ours_accepts(token: str) -> bool:
    try:
        parse(token)
    except MalformedToken:
        return False
    return True


@pytest.mark.parametrize("name", list(TOKENS))
def test_accepts_and_refuses_as_pyjwt(name):
    token = TOKENS[name]
    assert ours_accepts(token) == pyjwt_accepts(token), name


def test_parsed_header_and_claims_are_pyjwts():
    parsed = parse(GOOD)
    assert parsed.header == jwt.get_unverified_header(GOOD)
    assert parsed.claims == CLAIMS


@pytest.mark.parametrize("alg,private", [("RS256", RSA_KEY), ("PS256", RSA_KEY), ("ES256", EC_KEY)])
def test_signatures_verify_with_the_right_key_only(alg, private):
    token = jwt.encode(CLAIMS, private, algorithm=alg)
    assert signature_valid(parse(token), private.public_key(), alg)
    other = (rsa.generate_private_key(public_exponent=65537, key_size=2048) if alg != "ES256"
             else ec.generate_private_key(ec.SECP256R1()))
    assert not signature_valid(parse(token), other.public_key(), alg)
    h, p, s = token.split(".")
    tampered = f"{h}.{obj({**CLAIMS, 'sub': 'system:serviceaccount:ns:other'})}.{s}"
    assert not signature_valid(parse(tampered), private.public_key(), alg)
