"""How the CLI reaches a server: credentials, CA, tokens, vault host names.

By default it uses `admin.json` in the state dir; `--server`/STRONGROOM_SERVER
points elsewhere (credentials then come from AZURE_TENANT_ID, AZURE_CLIENT_ID
and AZURE_CLIENT_SECRET unless the state dir has an admin.json).
Vault requests go to the server's address with the vault's Host header, so no
/etc/hosts entry is needed for the CLI.
"""

from __future__ import annotations

import json
import os
import ssl
import weakref
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from strongroom.errors import describe

MANAGEMENT_SCOPE = "https://management.azure.com/.default"
GRAPH_SCOPE = "https://graph.microsoft.com/.default"


class CLIError(Exception):
    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def state_dir_default() -> Path:
    return Path(os.environ.get("STRONGROOM_STATE_DIR", ".strongroom"))


def _error_from(response: httpx.Response) -> CLIError:
    return CLIError(*describe(response.status_code, response.text))


class Client:
    def __init__(self, state_dir: Path | None = None, server: str | None = None) -> None:
        state_dir = state_dir or state_dir_default()
        admin_path = state_dir / "admin.json"
        admin: dict[str, Any] = json.loads(admin_path.read_text()) if admin_path.exists() else {}
        self.server = (server or os.environ.get("STRONGROOM_SERVER") or admin.get("server") or "").rstrip("/")
        if not self.server:
            raise CLIError(
                f"no server: {admin_path} does not exist. Start one with `strongroom up` or pass --server.",
                "NoServer",
            )
        self.tenant_id = admin.get("tenantId") or os.environ.get("AZURE_TENANT_ID", "")
        self.client_id = admin.get("clientId") or os.environ.get("AZURE_CLIENT_ID", "")
        self._client_secret = admin.get("clientSecret") or os.environ.get("AZURE_CLIENT_SECRET", "")
        ca = os.environ.get("STRONGROOM_CA_FILE") or admin.get("caFile") or str(state_dir / "ca.pem")
        # A context, not the path: httpx deprecated `verify=<str>`.
        verify: ssl.SSLContext | bool = ssl.create_default_context(cafile=ca) if Path(ca).exists() else True
        self.http = httpx.Client(verify=verify, timeout=30.0)
        weakref.finalize(self, self.http.close)  # its sockets closed, also when the CLI runs in-process
        self._tokens: dict[str, str] = {}
        self._meta: dict[str, Any] | None = None

    # -- discovery and tokens -------------------------------------------------

    def metadata(self) -> dict[str, Any]:
        if self._meta is None:
            try:
                r = self.http.get(f"{self.server}/strongroom/metadata")
            except httpx.HTTPError as exc:
                raise CLIError(f"cannot reach {self.server}: {exc}", "ServiceUnavailable") from None
            if r.status_code != 200:
                raise _error_from(r)
            self._meta = r.json()
            if not self.tenant_id:
                self.tenant_id = self._meta["tenantId"]
        return self._meta

    @property
    def subscription_id(self) -> str:
        return self.metadata()["subscriptionId"]

    def token(self, scope: str) -> str:
        if scope not in self._tokens:
            if not (self.client_id and self._client_secret):
                raise CLIError("no credentials: need admin.json in the state dir or AZURE_CLIENT_ID/AZURE_CLIENT_SECRET")
            tenant = self.tenant_id or self.metadata()["tenantId"]
            try:
                r = self.http.post(
                    f"{self.server}/{tenant}/oauth2/v2.0/token",
                    data={
                        "grant_type": "client_credentials",
                        "client_id": self.client_id,
                        "client_secret": self._client_secret,
                        "scope": scope,
                    },
                )
            except httpx.HTTPError as exc:
                raise CLIError(f"cannot reach {self.server}: {exc}", "ServiceUnavailable") from None
            if r.status_code != 200:
                raise _error_from(r)
            self._tokens[scope] = r.json()["access_token"]
        return self._tokens[scope]

    # -- requests -----------------------------------------------------------

    def _send(self, method: str, url: str, scope: str, *, host: str | None = None, **kwargs: Any) -> Any:
        headers = {"Authorization": f"Bearer {self.token(scope)}"}
        if host:
            headers["Host"] = host
        try:
            r = self.http.request(method, url, headers=headers, **kwargs)
        except httpx.HTTPError as exc:
            raise CLIError(f"cannot reach {self.server}: {exc}", "ServiceUnavailable") from None
        if r.status_code >= 400:
            raise _error_from(r)
        if r.status_code == 204 or not r.content:
            return None
        return r.json()

    def arm(self, method: str, path: str, **kwargs: Any) -> Any:
        params = {"api-version": "2023-07-01", **kwargs.pop("params", {})}
        return self._send(method, f"{self.server}{path}", MANAGEMENT_SCOPE, params=params, **kwargs)

    def graph(self, method: str, path: str, **kwargs: Any) -> Any:
        """Microsoft Graph-shaped calls (`/v1.0/...`), with a token for https://graph.microsoft.com."""
        return self._send(method, f"{self.server}{path}", GRAPH_SCOPE, **kwargs)

    def cluster(self, method: str, path: str, **kwargs: Any) -> Any:
        """Kubernetes-shaped calls to the local cluster (`/clusters/...`), with a management token."""
        return self._send(method, f"{self.server}{path}", MANAGEMENT_SCOPE, **kwargs)

    def vault_host(self, vault_name: str) -> str:
        return urlsplit(self.metadata()["vaultUrlTemplate"].replace("{name}", vault_name.lower())).netloc

    def vault(self, vault_name: str, method: str, path: str, **kwargs: Any) -> Any:
        params = {"api-version": "2026-04-01", **kwargs.pop("params", {})}
        scope = self.metadata()["vaultResource"] + "/.default"
        return self._send(
            method, f"{self.server}{path}", scope, host=self.vault_host(vault_name), params=params, **kwargs
        )

    def vault_pages(self, vault_name: str, path: str, params: dict[str, Any] | None = None) -> list[Any]:
        """Follow nextLink until the listing ends (a vault of thousands takes many pages: progress shows)."""
        from strongroom.cli.progress import activity

        items: list[Any] = []
        with activity(f"listing {path.strip('/')} of {vault_name}") as advance:
            page = self.vault(vault_name, "GET", path, params=params or {})
            while True:
                batch = page.get("value", [])
                items.extend(batch)
                advance(len(batch))
                next_link = page.get("nextLink")
                if not next_link:
                    return items
                parts = urlsplit(next_link)
                page = self._send(
                    "GET", f"{self.server}{parts.path}?{parts.query}", self.metadata()["vaultResource"] + "/.default",
                    host=parts.netloc,
                )
