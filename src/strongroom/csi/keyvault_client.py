"""A minimal Key Vault data-plane client: the GETs a mount needs, over plain REST.

It does what the Azure SDKs' challenge policy does, so it works unchanged against
Azure Key Vault and against Strongroom: the first request to a vault goes out
without a token; the 401's `WWW-Authenticate: Bearer authorization="...",
resource="..."` names the token resource (scope `<resource>/.default`), which is
cached per vault host. The resource must be a DNS suffix of the vault's host, as
the SDK's `verify_challenge_resource` demands, so a vault can never make us fetch
a token for some other service. Without a usable challenge the cloud's vault
resource (https://vault.azure.net on the public cloud) is used.

Errors are raised as `VaultRequestError` (the service answered) and
`VaultUnreachable` (it did not); the provider turns them into messages that
name the object.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

import httpx

from strongroom.csi.credentials import Credential
from strongroom.csi.errors import FAILED_PRECONDITION, ProviderError

API_VERSION = "7.4"
COLLECTIONS = {"secret": "secrets", "key": "keys", "cert": "certificates"}
MAX_PAGES = 100  # a version listing longer than 100 pages is a loop, not a vault


class VaultRequestError(Exception):
    """The vault answered with an error status."""

    def __init__(self, status: int, body: dict[str, Any]) -> None:
        super().__init__(f"HTTP {status}")
        self.status = status
        self.body = body


class VaultUnreachable(Exception):
    """No answer: DNS, connection, TLS or timeout."""

    def __init__(self, cause: Exception) -> None:
        super().__init__(str(cause))
        self.cause = cause


@dataclass(frozen=True)
class Challenge:
    authorization: str
    resource: str
    scope: str


@dataclass(frozen=True)
class VersionInfo:
    version: str
    created: int
    enabled: bool


_PARAM = re.compile(r'([A-Za-z_]+)\s*=\s*"([^"]*)"|([A-Za-z_]+)\s*=\s*([^,\s]+)')


def parse_challenge(header: str | None) -> Challenge | None:
    """`Bearer authorization="https://login.../<tenant>", resource="https://vault.azure.net"` -> Challenge."""
    if not header:
        return None
    scheme, _, rest = header.strip().partition(" ")
    if scheme.lower() != "bearer":
        return None
    params: dict[str, str] = {}
    for m in _PARAM.finditer(rest):
        key = (m.group(1) or m.group(3)).lower()
        params[key] = m.group(2) if m.group(1) else m.group(4)
    authorization = params.get("authorization") or params.get("authorization_uri") or ""
    scope = params.get("scope", "")
    resource = params.get("resource", "")
    if not scope and resource:
        scope = resource.rstrip("/") + "/.default"
    if not scope:
        return None
    if not resource:
        resource = scope[: -len("/.default")] if scope.endswith("/.default") else scope
    return Challenge(authorization, resource, scope)


def _netloc(url: str) -> str:
    parts = urlsplit(url if "://" in url else f"https://{url}")
    host = (parts.hostname or "").lower()
    port = parts.port
    return host if port in (None, 443) and parts.scheme in ("https", "") else f"{host}:{port}"


def resource_matches(resource: str, vault_url: str) -> bool:
    """The SDK's rule: the vault host must end with "." + the resource's host (ports compared too)."""
    return _netloc(vault_url).endswith("." + _netloc(resource))


def challenge_from(response: httpx.Response, vault_url: str, fallback_resource: str) -> Challenge:
    """The token a vault's unauthenticated answer asks for: the one challenge probe of the provider and the agent.

    Without a usable `WWW-Authenticate` challenge the cloud's vault resource is used;
    a resource that is not a DNS suffix of the vault's host is refused (ProviderError),
    so a vault can never make us fetch a token for some other service.
    """
    challenge = parse_challenge(response.headers.get("www-authenticate"))
    if challenge is None:
        fallback = fallback_resource.rstrip("/")
        return Challenge("", fallback, fallback + "/.default")
    if not resource_matches(challenge.resource, vault_url):
        raise ProviderError(
            FAILED_PRECONDITION,
            f"the vault {vault_url.rstrip('/')} asked for a token for '{challenge.resource}', "
            "which is not a DNS suffix of the vault's host; refusing to send a token there. "
            "Hint: check the vault DNS suffix (--vault-dns-suffix or the cloud's keyVaultDNSSuffix).",
        )
    return challenge


class ChallengeCache:
    """Per vault host, shared by all mounts of one provider process."""

    def __init__(self) -> None:
        self._items: dict[str, Challenge] = {}
        self._lock = threading.Lock()

    def get(self, host: str) -> Challenge | None:
        with self._lock:
            return self._items.get(host)

    def put(self, host: str, challenge: Challenge) -> None:
        with self._lock:
            self._items[host] = challenge


class KeyVaultClient:
    def __init__(
        self,
        http: httpx.Client,
        vault_url: str,
        credential: Credential,
        fallback_resource: str,
        challenges: ChallengeCache,
        api_version: str = API_VERSION,
    ) -> None:
        self.http = http
        self.vault_url = vault_url.rstrip("/")
        self.credential = credential
        self.fallback_resource = fallback_resource.rstrip("/")
        self.challenges = challenges
        self.api_version = api_version
        self._host = _netloc(self.vault_url)

    # -- objects -----------------------------------------------------------

    def get_object(self, object_type: str, name: str, version: str = "") -> dict[str, Any]:
        """GET {vault}/{secrets|keys|certificates}/{name}/{version} (empty version = latest)."""
        path = f"/{COLLECTIONS[object_type]}/{quote(name, safe='')}/{quote(version, safe='')}"
        return self._get_json(f"{self.vault_url}{path}", {"api-version": self.api_version})

    def versions(self, object_type: str, name: str) -> list[VersionInfo]:
        """Every version of an object (listing needs the `readMetadata`/list permission)."""
        url: str | None = f"{self.vault_url}/{COLLECTIONS[object_type]}/{quote(name, safe='')}/versions"
        params: dict[str, str] | None = {"api-version": self.api_version, "maxresults": "25"}
        out: list[VersionInfo] = []
        for _ in range(MAX_PAGES):
            if url is None:
                return out
            page = self._get_json(url, params)
            for item in page.get("value") or []:
                ident = item.get("kid") if object_type == "key" else item.get("id")
                attrs = item.get("attributes") or {}
                if not ident:
                    continue
                out.append(
                    VersionInfo(
                        version=version_of(ident),
                        created=int(attrs.get("created") or 0),
                        enabled=attrs.get("enabled") is not False,
                    )
                )
            url, params = self._next(page.get("nextLink"))
        raise ProviderError(FAILED_PRECONDITION, f"listing versions of {name} did not end after {MAX_PAGES} pages")

    def _next(self, next_link: Any) -> tuple[str | None, dict[str, str] | None]:
        if not next_link:
            return None, None
        link = str(next_link)
        # The token goes only to the vault it was issued for.
        if _netloc(link) != self._host or urlsplit(link).scheme != "https":
            raise ProviderError(FAILED_PRECONDITION, f"the vault returned a nextLink to another host ({_netloc(link)})")
        return link, None

    # -- transport -----------------------------------------------------------

    def _send(self, url: str, params: dict[str, str] | None, token: str | None) -> httpx.Response:
        headers = {"Accept": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        try:
            return self.http.get(url, params=params, headers=headers)
        except httpx.HTTPError as exc:
            raise VaultUnreachable(exc) from None

    def _challenge_from(self, response: httpx.Response) -> Challenge:
        return challenge_from(response, self.vault_url, self.fallback_resource)

    def _get_json(self, url: str, params: dict[str, str] | None) -> dict[str, Any]:
        challenge = self.challenges.get(self._host)
        if challenge is None:
            first = self._send(url, params, None)
            if first.status_code != 401:
                return _body_or_raise(first)
            challenge = self._challenge_from(first)
            self.challenges.put(self._host, challenge)
        response = self._send(url, params, self.credential.get_token(challenge.scope))
        if response.status_code == 401 and response.headers.get("www-authenticate"):
            renewed = self._challenge_from(response)
            if renewed != challenge:  # the vault moved (e.g. another tenant): follow it once
                self.challenges.put(self._host, renewed)
                response = self._send(url, params, self.credential.get_token(renewed.scope))
        return _body_or_raise(response)


def _body_or_raise(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    if response.status_code >= 400:
        raise VaultRequestError(response.status_code, body)
    return body


def version_of(ident: str) -> str:
    """`https://kv1.vault.azure.net/secrets/name/<version>` -> `<version>` (as the Go SDK's ID.Version())."""
    parts = [p for p in urlsplit(ident).path.split("/") if p]
    return parts[2] if len(parts) >= 3 else ""
