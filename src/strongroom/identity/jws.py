"""Compact JWS for client assertions: parsed once, verified once.

The token endpoint needs an assertion's header and claims before it can pick the
key (issuer, kid), and then the signature checked. PyJWT parses the token anew
for each of those steps, and its strict base64url check walks every character in
Python: three parses cost more than the RSA verification itself (~160 of ~580 µs
per login). Here the token is parsed once with the same strictness as PyJWT
(base64url alphabet, padding, canonical encoding, JSON objects, `kid` a string,
`crit` only for extensions understood, no detached payload) and the signature is
verified by PyJWT's own algorithm objects over the exact bytes that were parsed.
"""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ec import SECP256R1
from jwt.algorithms import ECAlgorithm, RSAAlgorithm, RSAPSSAlgorithm

_ALPHABET = re.compile(rb"[A-Za-z0-9_-]*")
_SUPPORTED_CRIT = {"b64"}
_ALGORITHMS = {
    "RS256": RSAAlgorithm(RSAAlgorithm.SHA256),
    "PS256": RSAPSSAlgorithm(RSAPSSAlgorithm.SHA256),
    "ES256": ECAlgorithm(ECAlgorithm.SHA256, SECP256R1),  # the curve pinned, as PyJWT's own registry does
}


class MalformedToken(ValueError):
    """Not a well-formed compact JWS with JSON-object header and claims (the message never holds the token)."""


@dataclass(frozen=True)
class Jws:
    header: dict[str, Any]
    claims: dict[str, Any]
    signing_input: bytes
    signature: bytes


def _segment(segment: bytes, name: str) -> bytes:
    # As PyJWT: up to two trailing '=' (some issuers pad), otherwise base64url only, and canonical.
    stripped = segment.rstrip(b"=")
    padding = len(segment) - len(stripped)
    if padding > 2 or (padding and len(segment) % 4) or len(stripped) % 4 == 1 or not _ALPHABET.fullmatch(stripped):
        raise MalformedToken(f"invalid {name} encoding")
    decoded = base64.urlsafe_b64decode(stripped + b"=" * (-len(stripped) % 4))
    if base64.urlsafe_b64encode(decoded).rstrip(b"=") != stripped:
        raise MalformedToken(f"invalid {name} encoding")
    return decoded


def _object(raw: bytes, name: str) -> dict[str, Any]:
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError):
        raise MalformedToken(f"the {name} is not JSON") from None
    if not isinstance(value, dict):
        raise MalformedToken(f"the {name} is not a JSON object")
    return value


def _check_header(header: dict[str, Any]) -> None:
    if "kid" in header and not isinstance(header["kid"], str):
        raise MalformedToken("the kid header is not a string")
    if "crit" in header:
        crit = header["crit"]
        if not isinstance(crit, list) or not crit:
            raise MalformedToken("the crit header is not a non-empty list")
        for ext in crit:
            if not isinstance(ext, str) or ext not in _SUPPORTED_CRIT or ext not in header:
                raise MalformedToken("the crit header names an unsupported extension")
    if header.get("b64", True) is False:
        raise MalformedToken("detached payloads are not accepted")


def parse(token: str) -> Jws:
    """Header, claims and signature of a compact JWS, unverified (for choosing the key only)."""
    raw = token.encode("utf-8")
    try:
        signing_input, crypto = raw.rsplit(b".", 1)
        header_segment, payload_segment = signing_input.split(b".", 1)
    except ValueError:
        raise MalformedToken("not enough segments") from None
    header = _object(_segment(header_segment, "header"), "header")
    _check_header(header)
    claims = _object(_segment(payload_segment, "payload"), "payload")
    return Jws(header, claims, signing_input, _segment(crypto, "signature"))


def signature_valid(token: Jws, key: Any, alg: str) -> bool:
    """Whether `key` made the signature with `alg` (the caller has checked `alg` is one it accepts for `key`)."""
    algorithm = _ALGORITHMS[alg]
    return bool(algorithm.verify(token.signing_input, algorithm.prepare_key(key), token.signature))
