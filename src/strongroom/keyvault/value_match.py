"""Does a string from a repository equal a current secret value? Answered without sending a value.

The exchange (used by `strongroom lint --server`, served by `server/lint_api.py`):

- The linter picks a fresh random salt per request and sends `HMAC-SHA256(salt, LABEL || candidate)`
  for each candidate string, never a candidate itself.
- The server computes the same keyed digest of the current value of each secret the CALLER
  may read (getSecret, checked per secret) and answers the names whose digest was sent.

Why this leaks nothing:
- No secret value and no digest of one leaves the server: the answer is names, for digests
  the caller itself sent.
- Secrets the caller may not read are never digested, so the answer (and the work done)
  is the same whether a candidate equals such a secret or nothing at all.
- The salt makes digests from different requests incomparable and precomputed tables
  useless, should a request body ever be captured; it may be chosen by the client because
  only the server can test a digest against a value, and it only answers about secrets the
  caller could read anyway. Nothing of the request is logged or audited but counts.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Callable, Iterator
from typing import Any

from strongroom.keyvault.errors import bad_parameter

LABEL = b"strongroom-lint-value-match-v1\x00"
SALT_MIN_BYTES = 16
SALT_MAX_BYTES = 64
DIGEST_BYTES = 32
MAX_DIGESTS = 5000  # per request; the linter sends more in several requests
MAX_BODY_BYTES = 64 + MAX_DIGESTS * 48 + 1024  # base64url digests (43 chars) in JSON


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def digest(salt: bytes, candidate: str) -> bytes:
    return hmac.new(salt, LABEL + candidate.encode("utf-8"), hashlib.sha256).digest()


def parse_request(body: Any) -> tuple[bytes, set[bytes]]:
    """`{"salt": b64url, "digests": [b64url, ...]}` -> (salt, digests), or BadParameter."""
    if not isinstance(body, dict) or not isinstance(body.get("salt"), str) or not isinstance(body.get("digests"), list):
        raise bad_parameter("The body must be {\"salt\": <base64url>, \"digests\": [<base64url>, ...]}.")
    try:
        salt = unb64(body["salt"])
    except (ValueError, TypeError):
        raise bad_parameter("salt is not base64url.") from None
    if not SALT_MIN_BYTES <= len(salt) <= SALT_MAX_BYTES:
        raise bad_parameter(f"salt must be {SALT_MIN_BYTES} to {SALT_MAX_BYTES} random bytes.")
    raw = body["digests"]
    if len(raw) > MAX_DIGESTS:
        raise bad_parameter(f"At most {MAX_DIGESTS} digests per request; send the rest in another request.")
    digests: set[bytes] = set()
    for d in raw:
        try:
            value = unb64(d) if isinstance(d, str) else b""
        except (ValueError, TypeError):
            value = b""
        if len(value) != DIGEST_BYTES:
            raise bad_parameter(f"Each digest must be {DIGEST_BYTES} bytes of HMAC-SHA256, base64url.")
        digests.add(value)
    return salt, digests


def matches(
    current_values: Iterator[tuple[str, Callable[[], str | None]]],
    may_read: Callable[[str], bool],
    salt: bytes,
    digests: set[bytes],
) -> list[tuple[str, bytes]]:
    """(secret name, matching digest) for each readable secret whose current value was sent.

    `current_values` yields (name, loader); the loader is called only after `may_read(name)`
    allowed it, so an unreadable value is never even opened.
    """
    found: list[tuple[str, bytes]] = []
    for name, load in current_values:
        if not may_read(name):
            continue
        value = load()
        if value is None:
            continue
        d = digest(salt, value)
        if d in digests:
            found.append((name, d))
    return found
