"""Property-based fuzzing (hypothesis) of the parsers hostile input reaches first (issue #10, section 6).

- the JSON body reader (server/bodies.decode_json): any bytes give a value that can be
  written back out (to an answer, the audit log, storage) or InvalidBody, and never
  anything else, nor take long;
- the compact JWS parser (identity/jws.parse): any text gives a Jws or MalformedToken;
- the data plane's bearer token verification, over the wire: forged tokens made of
  arbitrary JSON headers and claims are a 401, never a 5xx;
- JWK import (keyvault/jwk.import_material): any JSON object gives key material or a
  Key Vault error (400), never another exception.

Budget: `STRONGROOM_FUZZ_EXAMPLES` (scaled per property; `make fuzz` raises it).
"""

from __future__ import annotations

import base64
import json
import ssl
import time
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from strongroom.identity.jws import Jws, MalformedToken, parse
from strongroom.keyvault import jwk
from strongroom.keyvault.errors import KeyVaultError
from strongroom.server.bodies import MAX_DEPTH, InvalidBody, decode_json
from strongroom.util import jsonbytes
from tests.conftest import Server
from tests.fuzz.support import EXAMPLES, REQUEST_TIMEOUT

IN_PROCESS = settings(max_examples=EXAMPLES * 20, deadline=2000, suppress_health_check=list(HealthCheck), database=None)
OVER_THE_WIRE = settings(max_examples=EXAMPLES * 5, deadline=None, suppress_health_check=list(HealthCheck), database=None)

# JSON values whose strings include surrogates, NUL and non-ASCII: what a hostile client can escape into a body.
CHARS = st.characters(codec=None, categories=None)
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(CHARS),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(CHARS, max_size=8), inner, max_size=4),
    max_leaves=20,
)


def _escaped(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=True).encode()  # ASCII escapes carry lone surrogates through


def _mangled() -> st.SearchStrategy[bytes]:
    """Bytes near JSON: valid documents cut, spliced, nested deep or sprinkled with raw bytes."""
    doc = JSON_VALUES.map(_escaped)
    return st.one_of(
        st.binary(max_size=200),
        doc,
        st.tuples(doc, st.integers(0, 200)).map(lambda d: d[0][: d[1]]),
        st.tuples(doc, st.binary(max_size=8), st.integers(0, 200)).map(lambda d: d[0][: d[2]] + d[1] + d[0][d[2]:]),
        st.integers(MAX_DEPTH - 2, 5000).map(lambda n: b"[" * n + b"]" * n),
        st.integers(1, 3000).map(lambda n: b'{"a":' * n + b"1" + b"}" * n),
        st.sampled_from([b"NaN", b"-Infinity", b"1e999", b"[1e400]", b"1" * 5000, b'"\\ud800"', b'{"\\udfff":1}']),
    )


@IN_PROCESS
@given(_mangled())
def test_the_body_reader_returns_writable_json_or_invalid_body(raw: bytes) -> None:
    started = time.perf_counter()
    try:
        value = decode_json(raw)
    except InvalidBody as exc:
        assert exc.status == 400
        return
    finally:
        assert time.perf_counter() - started < 0.5
    jsonbytes.dumps(value)  # what the server does with it: answer, audit, store


@IN_PROCESS
@given(JSON_VALUES)
def test_the_body_reader_reads_back_any_valid_document_it_accepts(value: Any) -> None:
    raw = _escaped(value)
    try:
        assert decode_json(raw) == value
    except InvalidBody:
        text = json.dumps(value, ensure_ascii=False)
        assert any(0xD800 <= ord(c) <= 0xDFFF for c in text) or raw.count(b"[") + raw.count(b"{") > MAX_DEPTH


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


SEGMENT = st.one_of(JSON_VALUES.map(lambda v: _b64(_escaped(v))), st.binary(max_size=40).map(_b64),
                    st.text(max_size=20))
TOKENS = st.one_of(
    st.text(max_size=200),
    st.tuples(SEGMENT, SEGMENT, SEGMENT).map(".".join),
    st.tuples(st.dictionaries(st.sampled_from(["alg", "kid", "typ", "crit", "b64", "x5t", "jku"]), JSON_VALUES, max_size=4),
              st.dictionaries(st.sampled_from(["aud", "iss", "exp", "nbf", "iat", "tid", "oid", "appid", "sub"]),
                              JSON_VALUES, max_size=6),
              st.binary(max_size=300)).map(lambda t: f"{_b64(_escaped(t[0]))}.{_b64(_escaped(t[1]))}.{_b64(t[2])}"),
)


@IN_PROCESS
@given(TOKENS)
def test_the_jws_parser_returns_a_jws_or_malformed_token(token: str) -> None:
    try:
        assert isinstance(parse(token), Jws)
    except MalformedToken:
        pass


@pytest.fixture(scope="module")
def data_plane(server: Server) -> dict[str, Any]:
    server.cli("keyvault", "create", "--name", "kv-fuzz-tokens")
    return {"url": server.vault_url("kv-fuzz-tokens") + "/secrets?api-version=7.5",
            "verify": ssl.create_default_context(cafile=server.ca)}


@OVER_THE_WIRE
@given(token=TOKENS.filter(lambda t: t.isascii() and t.isprintable() and t and t.strip() == t))
def test_forged_bearer_tokens_are_a_401_never_a_server_error(data_plane: dict[str, Any], token: str) -> None:
    r = httpx.get(data_plane["url"], headers={"Authorization": f"Bearer {token}"}, verify=data_plane["verify"],
                  timeout=REQUEST_TIMEOUT)
    assert r.status_code in (400, 401), (token[:80], r.status_code, r.text[:200])


B64_FIELD = st.one_of(st.binary(max_size=64).map(_b64), st.binary(min_size=250, max_size=520).map(_b64), JSON_VALUES)
JWKS = st.one_of(
    JSON_VALUES,
    st.fixed_dictionaries(
        {"kty": st.sampled_from(["RSA", "RSA-HSM", "EC", "EC-HSM", "oct", "oct-HSM", "x"]) | JSON_VALUES},
        optional={f: B64_FIELD for f in ("n", "e", "d", "p", "q", "dp", "dq", "qi", "x", "y", "k")}
        | {"crv": st.sampled_from(["P-256", "P-384", "P-521", "P-256K", "x"]) | JSON_VALUES,
           "key_ops": JSON_VALUES},
    ),
)


@IN_PROCESS
@given(JWKS)
def test_jwk_import_gives_material_or_a_key_vault_error(key: Any) -> None:
    try:
        kty, material = jwk.import_material(key)
    except KeyVaultError as exc:
        assert exc.status == 400
        return
    assert isinstance(kty, str) and isinstance(material, dict)
