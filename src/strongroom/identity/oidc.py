"""Verifying tokens of external OIDC issuers (Kubernetes clusters, GitHub, ...) for federated credentials.

The issuer's `/.well-known/openid-configuration` and its `jwks_uri` are fetched
over HTTPS only, verified against the system CAs plus the configured CA files
(the local cluster's CA among them), with no redirects, a size cap per document
(MAX_DOCUMENT) and one deadline for the whole fetch (TIMEOUT, both documents,
however slowly an issuer drips them). The `jwks_uri` must be on the issuer's own
host and port (as with Kubernetes, AKS, EKS, GKE and GitHub Actions issuers).
Keys are cached per issuer; an unknown `kid` triggers a refetch at
most once per REFETCH_INTERVAL, so forged kids cannot make the server hammer
an issuer (and a key the issuer just rotated in is picked up within seconds).
Only issuers named in a federated credential are ever fetched (the caller
guarantees that), so an assertion cannot point the server at a URL of its
choosing.

Fetches are single-flight: concurrent requests for one issuer wait (at most the
deadline) for the one fetch under way and share its result, a failure included,
which is answered from the cache for REFETCH_INTERVAL. At most
MAX_FETCHES_IN_FLIGHT issuers are fetched at once per process. A failure's answer
names only its kind (unreachable, too slow, untrusted certificate, unusable
documents); the details (URLs, another host's HTTP status) go to the server log.
"""

from __future__ import annotations

import json
import logging
import ssl
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import jwt
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

if TYPE_CHECKING:
    import httpx

ALGORITHMS = ("RS256", "ES256")
MAX_DOCUMENT = 512 * 1024
MAX_KEYS = 100  # Entra keeps the first 100 keys of an issuer
CACHE_TTL = 3600.0
REFETCH_INTERVAL = 2.0
TIMEOUT = 5.0  # for the whole fetch: discovery document and JWKS
MAX_FETCHES_IN_FLIGHT = 4

log = logging.getLogger("strongroom.identity")

# What a failed fetch's answer may say: its kind, nothing about other hosts' answers.
UNREACHABLE = "the issuer's metadata could not be fetched"
TOO_SLOW = "the issuer's metadata did not arrive in time"
UNTRUSTED = "certificate verify failed; is the issuer's CA configured (--issuer-ca-file)?"
UNUSABLE = "the issuer's metadata is not usable"
BUSY = "too many issuer fetches are under way; retry shortly"

_in_flight = threading.BoundedSemaphore(MAX_FETCHES_IN_FLIGHT)


class IssuerUnavailable(Exception):
    """The issuer's metadata could not be fetched or is not usable.

    `str()` is the kind of failure, safe to answer; `detail` says exactly why, for the server log.
    """

    def __init__(self, message: str, detail: str | None = None) -> None:
        super().__init__(message)
        self.detail = detail or message


class KeyNotFound(Exception):
    """The issuer publishes no key the assertion's header names."""


class FetchNeeded(Exception):
    """The key cannot be answered from the cache (a fetch is due or under way) and the caller asked not to wait."""


@dataclass
class _Entry:
    keys: dict[str, Any]  # kid -> public key object
    algs: dict[str, str]  # kid -> the alg the key may verify
    fetched: float | None = None  # monotonic time of the last good fetch
    attempted: float | None = None  # monotonic time of the last attempt
    error: IssuerUnavailable | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)


def ssl_context(ca_files: list[str]) -> ssl.SSLContext:
    """System trust (certifi) plus private CAs, e.g. an on-prem cluster's or this instance's own."""
    import certifi

    ctx = ssl.create_default_context(cafile=certifi.where())
    for path in ca_files:
        ctx.load_verify_locations(cafile=path)
    return ctx


def _get_json(client: httpx.Client, url: str, what: str, deadline: float) -> dict[str, Any]:
    """GET one JSON document by `deadline` (monotonic): every read is bounded by what is left of it."""
    import httpx

    if urlsplit(url).scheme != "https":
        raise IssuerUnavailable(UNUSABLE, f"the {what} URL '{url}' is not https")
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise IssuerUnavailable(TOO_SLOW, f"no time left for the {what} at {url}")
    try:
        with client.stream("GET", url, headers={"Accept": "application/json"}, timeout=httpx.Timeout(remaining)) as r:
            if r.status_code != 200:
                raise IssuerUnavailable(UNREACHABLE, f"GET {url} answered HTTP {r.status_code}")
            length = r.headers.get("content-length", "")
            if length.isdigit() and int(length) > MAX_DOCUMENT:
                raise IssuerUnavailable(UNUSABLE, f"the {what} at {url} is larger than {MAX_DOCUMENT} bytes")
            body = bytearray()
            for chunk in r.iter_bytes():
                body += chunk
                if len(body) > MAX_DOCUMENT:
                    raise IssuerUnavailable(UNUSABLE, f"the {what} at {url} is larger than {MAX_DOCUMENT} bytes")
                if time.monotonic() > deadline:
                    raise IssuerUnavailable(TOO_SLOW, f"the {what} at {url} arrived too slowly")
    except ssl.SSLError as exc:
        raise IssuerUnavailable(UNTRUSTED if "CERTIFICATE_VERIFY_FAILED" in str(exc) else UNREACHABLE,
                                f"TLS to {url} failed ({exc.reason})") from None
    except httpx.TimeoutException:
        raise IssuerUnavailable(TOO_SLOW, f"GET {url} timed out") from None
    except httpx.ConnectError as exc:
        untrusted = "CERTIFICATE_VERIFY_FAILED" in str(exc)
        raise IssuerUnavailable(UNTRUSTED if untrusted else UNREACHABLE, f"GET {url}: {type(exc).__name__}: {exc}") from None
    except httpx.HTTPError as exc:
        raise IssuerUnavailable(UNREACHABLE, f"GET {url} failed: {type(exc).__name__}") from None
    try:
        doc = json.loads(body)
    except ValueError:
        raise IssuerUnavailable(UNUSABLE, f"the {what} at {url} is not JSON") from None
    if not isinstance(doc, dict):
        raise IssuerUnavailable(UNUSABLE, f"the {what} at {url} is not a JSON object")
    return doc


def _origin(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    return (parts.hostname or "").lower(), parts.port or 443


def _parse_jwks(jwks: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    keys: dict[str, Any] = {}
    algs: dict[str, str] = {}
    raw_keys = jwks.get("keys")
    if not isinstance(raw_keys, list):
        raise IssuerUnavailable(UNUSABLE, "the JWKS has no 'keys' array")
    for jwk in raw_keys[:MAX_KEYS]:
        if not isinstance(jwk, dict) or jwk.get("use", "sig") != "sig":
            continue
        kid = str(jwk.get("kid", ""))
        try:
            if jwk.get("kty") == "RSA" and jwk.get("alg", "RS256") == "RS256":
                keys[kid], algs[kid] = RSAAlgorithm.from_jwk(jwk), "RS256"
            elif jwk.get("kty") == "EC" and jwk.get("crv") == "P-256" and jwk.get("alg", "ES256") == "ES256":
                keys[kid], algs[kid] = ECAlgorithm.from_jwk(jwk), "ES256"
        except (jwt.InvalidKeyError, ValueError, KeyError, TypeError):
            continue  # one bad key does not spoil the others
    return keys, algs


class IssuerKeys:
    """Cached signing keys of external issuers, fetched on demand."""

    def __init__(self, ca_files: list[str], timeout: float = TIMEOUT) -> None:
        self._ca_files = ca_files
        self._timeout = timeout
        self._client_: httpx.Client | None = None
        self._entries: dict[str, _Entry] = {}
        self._lock = threading.Lock()

    @property
    def _client(self) -> httpx.Client:
        """Made on the first fetch: httpx (and the rich/pygments it loads) cost a worker ~7 MB it rarely needs."""
        if self._client_ is None:
            import httpx

            self._client_ = httpx.Client(verify=ssl_context(self._ca_files), timeout=self._timeout, follow_redirects=False)
        return self._client_

    def close(self) -> None:
        if self._client_ is not None:
            self._client_.close()

    def _fetch(self, issuer: str) -> tuple[dict[str, Any], dict[str, str]]:
        if not _in_flight.acquire(blocking=False):
            raise IssuerUnavailable(BUSY, f"{MAX_FETCHES_IN_FLIGHT} issuer fetches were under way")
        try:
            deadline = time.monotonic() + self._timeout
            url = issuer.rstrip("/") + "/.well-known/openid-configuration"
            config = _get_json(self._client, url, "discovery document", deadline)
            if config.get("issuer") != issuer:
                raise IssuerUnavailable(
                    UNUSABLE, f"the discovery document names issuer '{config.get('issuer')}', not '{issuer}'"
                )
            jwks_uri = config.get("jwks_uri")
            if not isinstance(jwks_uri, str):
                raise IssuerUnavailable(UNUSABLE, "the discovery document has no jwks_uri")
            if _origin(jwks_uri) != _origin(issuer):
                raise IssuerUnavailable(UNUSABLE, f"the jwks_uri '{jwks_uri}' is not on the issuer's host")
            return _parse_jwks(_get_json(self._client, jwks_uri, "JWKS", deadline))
        finally:
            _in_flight.release()

    def _entry(self, issuer: str) -> _Entry:
        with self._lock:
            entry = self._entries.get(issuer)
            if entry is None:
                entry = self._entries[issuer] = _Entry({}, {})
            return entry

    def key(self, issuer: str, kid: str | None, alg: str, fetch: bool = True) -> Any:
        """The public key that should have signed a token of `issuer` with this header.

        With `fetch=False` (a caller on the event loop) nothing blocks: FetchNeeded is
        raised instead of fetching or of waiting for another thread's fetch.
        """
        entry = self._entry(issuer)
        # One fetch per issuer at a time; the others wait (no longer than a fetch may take) and reuse its result.
        waited_from = time.monotonic()
        if not (entry.lock.acquire(timeout=self._timeout + 1.0) if fetch else entry.lock.acquire(blocking=False)):
            if not fetch:
                raise FetchNeeded(issuer)
            raise IssuerUnavailable(TOO_SLOW, f"waited {self._timeout + 1.0:g} s for another fetch of {issuer}")
        try:
            t = time.monotonic()
            stale = entry.fetched is None or t - entry.fetched > CACHE_TTL
            unknown = kid is not None and kid not in entry.keys
            # Fetch when stale or a new kid appears, but at most once per REFETCH_INTERVAL: neither forged
            # kids nor a dead issuer make every token request wait for the network.
            # `attempted` is when the last fetch ended: one that ended while this caller waited is its answer.
            if (
                (stale or unknown)
                and (entry.attempted is None or t - entry.attempted >= REFETCH_INTERVAL)
                and not (entry.attempted is not None and entry.attempted >= waited_from)
            ):
                if not fetch:
                    raise FetchNeeded(issuer)
                try:
                    entry.keys, entry.algs = self._fetch(issuer)
                    entry.fetched, entry.error = t, None
                except IssuerUnavailable as exc:
                    log.warning("federated issuer %s: %s", issuer, exc.detail)
                    entry.error = exc  # the last good keys keep serving through a short outage
                finally:
                    entry.attempted = time.monotonic()
            if entry.error and (entry.fetched is None or t - entry.fetched > 2 * CACHE_TTL):
                raise IssuerUnavailable(str(entry.error), entry.error.detail)
            if not entry.keys:
                raise IssuerUnavailable(UNUSABLE, "the issuer's JWKS has no RS256 or ES256 signing key")
            if kid is None and len(entry.keys) == 1:
                kid = next(iter(entry.keys))
            key = entry.keys.get(kid or "")
            if key is None or entry.algs.get(kid or "") != alg:
                raise KeyNotFound(f"the issuer publishes no {alg} key with kid '{kid}'")
            return key
        finally:
            entry.lock.release()

