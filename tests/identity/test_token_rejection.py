"""The vault data plane refuses every token it should, with Azure's 401 and Bearer challenge.

Forged tokens are built here by hand; tokens that must carry a valid signature
are signed with the server's own key, read through the library from the test
server's state dir (as an attacker who stole the key could, but a client could not).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import ssl
import time
import uuid
from dataclasses import dataclass
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from strongroom.barrier import Barrier, Keyring, SealedStore
from strongroom.barrier.keyring import master_key_path
from strongroom.identity.directory import Directory, Tenant
from strongroom.identity.tokens import MAX_SKEW, SigningKeys, TokenIssuer
from strongroom.server.runtime import token_issuer_url
from strongroom.settings import Settings
from strongroom.storage import open_storage

MISSING_TOKEN = {"error": {"code": "Unauthorized", "message": "AKV10000: Request is missing a Bearer or PoP token."}}


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def compact(header: dict[str, Any], claims: dict[str, Any]) -> str:
    """header.payload, unsigned."""
    return b64url(json.dumps(header).encode()) + "." + b64url(json.dumps(claims).encode())


@dataclass
class ServerKeys:
    """The running server's token signing side, opened read-only from its state dir.

    Not a whole Runtime: that would also open an audit writer beside the server's own.
    """

    settings: Settings
    tenant: Tenant
    signing_keys: SigningKeys
    issuer: TokenIssuer


@pytest.fixture(scope="module")
def rt(server):
    settings = Settings(state_dir=server.state_dir, port=server.port)
    storage = open_storage(settings.storage)
    store = SealedStore(storage, Barrier(Keyring.load(master_key_path(settings.state_dir))))
    tenant = Directory(store).tenant()
    keys = SigningKeys(store)
    yield ServerKeys(settings, tenant, keys, TokenIssuer(keys, token_issuer_url(settings, tenant.tenant_id), tenant.tenant_id))
    storage.close()


@pytest.fixture(scope="module")
def probe(server, vault):
    """GET the vault's secret list with a given Authorization header (or none)."""
    client = httpx.Client(verify=ssl.create_default_context(cafile=server.ca), timeout=10)

    def send(authorization: str | bytes | None) -> httpx.Response:
        headers = {} if authorization is None else {"Authorization": authorization}
        return client.get(f"{server.vault_url(vault)}/secrets", params={"api-version": "7.4"}, headers=headers)

    yield send
    client.close()


@pytest.fixture(scope="module")
def challenge(server, rt: ServerKeys) -> str:
    return f'Bearer authorization="{server.url}/{rt.tenant.tenant_id}", resource="https://vault.localhost:{server.port}"'


@pytest.fixture(scope="module")
def kid(rt: ServerKeys) -> str:
    return rt.signing_keys.current.kid


def good_claims(rt: ServerKeys, **overrides: Any) -> dict[str, Any]:
    """Claims the server would issue to its admin for this vault's audience."""
    t = int(time.time())
    claims = {
        "aud": rt.settings.vault_resource,
        "iss": rt.issuer.issuer,
        "iat": t,
        "nbf": t,
        "exp": t + 3600,
        "tid": rt.tenant.tenant_id,
        "oid": rt.tenant.admin_object_id,
        "sub": rt.tenant.admin_object_id,
        "appid": "strongroom-test",
        "ver": "2.0",
        "uti": uuid.uuid4().hex,
    }
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


def server_signed(rt: ServerKeys, claims: dict[str, Any], alg: str = "RS256") -> str:
    key = rt.signing_keys.current
    return jwt.encode(claims, key.private, algorithm=alg, headers={"kid": key.kid, "typ": "JWT"})


def assert_unauthorized(resp: httpx.Response, challenge: str, token: str | None = None) -> None:
    assert resp.status_code == 401, resp.text
    body = resp.json()
    assert set(body) == {"error"} and body["error"]["code"] == "Unauthorized"
    assert body["error"]["message"]
    assert resp.headers["www-authenticate"] == challenge
    if token:
        assert token not in resp.text  # never echo a credential back


def test_a_good_server_signed_token_is_accepted(rt, probe):
    """The control case: everything the rejections below change is valid here."""
    resp = probe(f"Bearer {server_signed(rt, good_claims(rt))}")
    assert resp.status_code == 200, resp.text


# -- no usable credential ----------------------------------------------------------


@pytest.mark.parametrize("header", [None, "", "Bearer", "bearer", "Basic dXNlcjpwYXNz", "PoP"])
def test_missing_token_gets_the_exact_azure_answer(probe, challenge, header):
    resp = probe(header)
    assert resp.status_code == 401
    assert resp.json() == MISSING_TOKEN
    assert resp.headers["www-authenticate"] == challenge


@pytest.mark.parametrize(
    "token",
    ["garbage", "a.b.c", "a.b", "....", "eyJhbGciOiJSUzI1NiJ9.e30.", "x" * 10000, "eyJ9.eyJ9.eyJ9.eyJ9.eyJ9",
     b64url(b"\xff\xfe") + "." + b64url(b"{}") + ".sig", b64url(b"[]") + "." + b64url(b"{}") + ".sig"],
    ids=["word", "three-dots", "two-parts", "empty-parts", "no-signature", "huge", "jwe-shape", "bad-utf8", "header-not-object"],
)
def test_garbage_tokens(probe, challenge, token):
    assert_unauthorized(probe(f"Bearer {token}"), challenge, token if len(token) > 8 else None)


def test_non_ascii_authorization_header(probe, challenge):
    assert_unauthorized(probe("Bearer é€".encode()), challenge)


# -- forged signatures -------------------------------------------------------------


def test_alg_none(rt, probe, challenge, kid):
    for alg in ("none", "None", "NONE"):
        token = compact({"alg": alg, "typ": "JWT", "kid": kid}, good_claims(rt)) + "."
        assert_unauthorized(probe(f"Bearer {token}"), challenge, token)


def _hs256(rt: ServerKeys, kid: str, secret: bytes) -> str:
    signing_input = compact({"alg": "HS256", "typ": "JWT", "kid": kid}, good_claims(rt))
    sig = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64url(sig)}"


def test_hs256_signed_with_the_servers_public_key(rt, probe, challenge, kid):
    """The classic key-confusion attack: the public key used as an HMAC secret."""
    public = rt.signing_keys.current.private.public_key()
    secrets = [
        public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo),
        public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.PKCS1),
        public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo),
        json.dumps(rt.signing_keys.current.public_jwk()).encode(),
        jwt.algorithms.RSAAlgorithm.to_jwk(public).encode(),
    ]
    for secret in secrets:
        token = _hs256(rt, kid, secret)
        assert_unauthorized(probe(f"Bearer {token}"), challenge, token)


def test_other_asymmetric_algorithms_with_the_servers_key(rt, probe, challenge):
    for alg in ("RS512", "PS256"):
        token = server_signed(rt, good_claims(rt), alg=alg)
        assert_unauthorized(probe(f"Bearer {token}"), challenge, token)


@pytest.fixture(scope="module")
def attacker_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def rs256(header: dict[str, Any], claims: dict[str, Any], key: rsa.RSAPrivateKey) -> str:
    """Sign by hand, so headers PyJWT would refuse to write (e.g. a numeric kid) can be sent."""
    signing_input = compact({"alg": "RS256", "typ": "JWT", **header}, claims)
    return f"{signing_input}.{b64url(key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256()))}"


def test_unknown_kid(rt, probe, challenge, attacker_key):
    for header in ({"kid": "not-a-key-of-this-server"}, {}, {"kid": ""}, {"kid": 42}, {"kid": None}, {"kid": ["x"]}):
        token = rs256(header, good_claims(rt), attacker_key)
        assert_unauthorized(probe(f"Bearer {token}"), challenge, token)


def test_unknown_kids_stay_cheap(rt, probe, challenge, kid, attacker_key):
    """An unknown kid makes the server look for newly rotated keys; that must not cost a key parse.

    Timed against the same number of bad signatures under the known kid, interleaved,
    so machine load affects both alike. Re-parsing the RSA keys costs ~30 ms a request.
    """
    unknown = [rs256({"kid": f"kid-{i}"}, good_claims(rt), attacker_key) for i in range(60)]
    known = [rs256({"kid": kid}, good_claims(rt), attacker_key) for _ in range(60)]
    spent = {"unknown": 0.0, "known": 0.0}
    for u, k in zip(unknown, known, strict=True):
        for label, token in (("unknown", u), ("known", k)):
            started = time.monotonic()
            assert probe(f"Bearer {token}").status_code == 401
            spent[label] += time.monotonic() - started
    assert spent["unknown"] < 3 * spent["known"] + 0.5, spent


def test_own_key_under_the_servers_kid(rt, probe, challenge, kid, attacker_key):
    token = rs256({"kid": kid}, good_claims(rt), attacker_key)
    assert_unauthorized(probe(f"Bearer {token}"), challenge, token)


def test_embedded_jwk_is_not_trusted(rt, probe, challenge, kid, attacker_key):
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(attacker_key.public_key()))
    token = jwt.encode(good_claims(rt), attacker_key, algorithm="RS256", headers={"kid": kid, "jwk": jwk})
    assert_unauthorized(probe(f"Bearer {token}"), challenge, token)


def test_flipped_signature_and_payload_bytes(rt, probe, challenge):
    token = server_signed(rt, good_claims(rt))
    head, payload, sig = token.split(".")
    raw = bytearray(base64.urlsafe_b64decode(sig + "=" * (-len(sig) % 4)))
    raw[0] ^= 0x01
    raw[-1] ^= 0x80
    assert_unauthorized(probe(f"Bearer {head}.{payload}.{b64url(bytes(raw))}"), challenge)
    # Same signature over a payload with a different object id.
    other = b64url(json.dumps(good_claims(rt, oid=str(uuid.uuid4()))).encode())
    assert_unauthorized(probe(f"Bearer {head}.{other}.{sig}"), challenge)
    assert_unauthorized(probe(f"Bearer {head}.{payload}."), challenge)
    assert_unauthorized(probe(f"Bearer {head}.{payload}"), challenge)


# -- properly signed, wrong claims ---------------------------------------------------

MARGIN = 60  # well clear of the skew window either way


def _claims_cases(rt: ServerKeys) -> dict[str, dict[str, Any]]:
    t = int(time.time())
    return {
        "expired": good_claims(rt, iat=t - 7200, nbf=t - 7200, exp=t - MAX_SKEW - MARGIN),
        "not-yet-valid": good_claims(rt, nbf=t + MAX_SKEW + MARGIN),
        "wrong-audience-management": good_claims(rt, aud="https://management.azure.com"),
        "wrong-audience-other": good_claims(rt, aud="api://AzureADTokenExchange"),
        "audience-list-without-vault": good_claims(rt, aud=["https://storage.azure.com"]),
        "wrong-issuer": good_claims(rt, iss=f"https://sts.windows.net/{rt.tenant.tenant_id}/"),
        "issuer-of-another-tenant": good_claims(rt, iss=f"{rt.settings.authority}/{uuid.uuid4()}/v2.0"),
        "other-tenant": good_claims(rt, tid=str(uuid.uuid4())),
        "missing-exp": good_claims(rt, exp=None),
        "missing-tid": good_claims(rt, tid=None),
        "missing-oid": good_claims(rt, oid=None),
        "missing-aud": good_claims(rt, aud=None),
        "exp-not-a-number": good_claims(rt, exp="tomorrow"),
        "nbf-not-a-number": good_claims(rt, nbf="now"),
        "tid-not-a-string": good_claims(rt, tid=["x"]),
        "oid-not-a-string": good_claims(rt, oid={"a": 1}),
        "sub-not-a-string": good_claims(rt, sub=7),
        "empty-oid": good_claims(rt, oid=""),
    }


CLAIM_CASES = [
    "expired", "not-yet-valid", "wrong-audience-management", "wrong-audience-other", "audience-list-without-vault",
    "wrong-issuer", "issuer-of-another-tenant", "other-tenant", "missing-exp", "missing-tid", "missing-oid",
    "missing-aud", "exp-not-a-number", "nbf-not-a-number", "tid-not-a-string", "oid-not-a-string", "sub-not-a-string", "empty-oid",
]


@pytest.mark.parametrize("case", CLAIM_CASES)
def test_server_signed_token_with_bad_claims(rt, probe, challenge, case):
    token = server_signed(rt, _claims_cases(rt)[case])
    assert_unauthorized(probe(f"Bearer {token}"), challenge, token)


def test_management_token_from_the_token_endpoint_is_refused(server, probe, challenge):
    """A real token, issued for ARM, must not open a vault."""
    a = server.admin
    r = httpx.post(
        f"{server.url}/{a['tenantId']}/oauth2/v2.0/token",
        data={"grant_type": "client_credentials", "client_id": a["clientId"], "client_secret": a["clientSecret"],
              "scope": "https://management.azure.com/.default"},
        verify=ssl.create_default_context(cafile=server.ca),
    )
    assert r.status_code == 200, r.text
    token = r.json()["access_token"]
    assert_unauthorized(probe(f"Bearer {token}"), challenge, token)


# -- the skew window ---------------------------------------------------------------


def test_tokens_inside_the_skew_window_are_accepted(rt, probe):
    t = int(time.time())
    just_expired = good_claims(rt, iat=t - 3600, nbf=t - 3600, exp=t - MAX_SKEW + MARGIN)
    assert probe(f"Bearer {server_signed(rt, just_expired)}").status_code == 200
    early = good_claims(rt, iat=t, nbf=t + MAX_SKEW - MARGIN)
    assert probe(f"Bearer {server_signed(rt, early)}").status_code == 200


def test_cached_token_is_refused_once_it_expires(rt, probe, challenge):
    """Verified claims are cached; the cache must not outlive the token (plus skew)."""
    t = int(time.time())
    token = server_signed(rt, good_claims(rt, iat=t - 3600, nbf=t - 3600, exp=t - MAX_SKEW + 4))
    assert probe(f"Bearer {token}").status_code == 200
    time.sleep(5)
    assert_unauthorized(probe(f"Bearer {token}"), challenge, token)
