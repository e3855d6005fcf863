"""jsonbytes writes exactly what the standard library wrote, so audit logs from before it still verify."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from strongroom.audit.chain import GENESIS, parse, seal
from strongroom.util import jsonbytes

# What Strongroom writes: text (any code point but lone surrogates), integers (some beyond 64 bits), booleans, null.
text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=20)
scalars = st.one_of(text, st.integers(min_value=-(2**70), max_value=2**70), st.booleans(), st.none())
values = st.recursive(
    scalars, lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(text, inner, max_size=4)), max_leaves=20
)


@settings(max_examples=400, deadline=None)
@given(values)
def test_same_bytes_as_the_standard_library(value):
    assert jsonbytes.dumps(value) == json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()
    assert jsonbytes.canonical(value) == json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def test_a_record_sealed_by_the_old_encoder_verifies():
    event = {"operationName": "SecretGet", "zeta": "é\u2028\x7f\x00\"\\", "a": {"n": 2**65, "list": [True, None, "中"]}}
    old_body = json.dumps(event, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    digest = __import__("hashlib").sha256(b"1\n%s\n" % GENESIS.encode() + old_body).hexdigest()
    line = old_body[:-1] + b',"chain":{"seq":1,"prev":"%s","hash":"%s"}}' % (GENESIS.encode(), digest.encode())
    assert line == seal(event, 1, GENESIS)[0]
    assert parse(line)[1].intact
