"""The local Strongroom server as the agent reaches it: its TokenRequest API and its metadata.

Kubelet asks the API server for a pod-bound service-account token; the agent asks
the local cluster's TokenRequest API
(`POST /clusters/local/api/v1/namespaces/<ns>/serviceaccounts/<sa>/token`, the API
behind `strongroom cluster token`) with a management token of the instance admin
(`admin.json` in the state dir) or of a principal with the "Strongroom Node Agent"
role (AZURE_TENANT_ID/AZURE_CLIENT_ID/AZURE_CLIENT_SECRET). When no vault DNS suffix
or authority is given, the agent also reads them from the server's
`/strongroom/metadata`. The agent has its own small client for these two calls so
that it does not depend on the CLI (which only parses the flags and calls in here).
"""

from __future__ import annotations

import json
import os
import ssl
from pathlib import Path
from typing import Any

import httpx

from strongroom.agent.tokens import ServiceAccountToken, TokenRequestError
from strongroom.errors import describe

MANAGEMENT_SCOPE = "https://management.azure.com/.default"
TOKEN_SECONDS = 3600


def state_dir_default() -> Path:
    return Path(os.environ.get("STRONGROOM_STATE_DIR", ".strongroom"))


class ClusterAPIError(Exception):
    """The server refused or did not answer; `code` is its error code (`ServiceUnavailable`: no answer)."""

    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


def _error_from(response: httpx.Response) -> ClusterAPIError:
    """Kubernetes' Status (the cluster API), ARM's `{"error": {...}}` or Entra's `{"error", "error_description"}`."""
    return ClusterAPIError(*describe(response.status_code, response.text))


class LocalCluster:
    """One connection to the local server: where it is, whom to trust, which credentials to use."""

    def __init__(self, state_dir: Path | None = None, server: str | None = None) -> None:
        state_dir = state_dir or state_dir_default()
        admin_path = state_dir / "admin.json"
        admin: dict[str, Any] = json.loads(admin_path.read_text()) if admin_path.exists() else {}
        self.server = (server or os.environ.get("STRONGROOM_SERVER") or admin.get("server") or "").rstrip("/")
        if not self.server:
            raise ClusterAPIError(
                f"no server: {admin_path} does not exist. Start one with `strongroom up` or pass --server.", "NoServer"
            )
        self.tenant_id = admin.get("tenantId") or os.environ.get("AZURE_TENANT_ID", "")
        self.client_id = admin.get("clientId") or os.environ.get("AZURE_CLIENT_ID", "")
        self._client_secret = admin.get("clientSecret") or os.environ.get("AZURE_CLIENT_SECRET", "")
        ca = os.environ.get("STRONGROOM_CA_FILE") or admin.get("caFile") or str(state_dir / "ca.pem")
        # A context, not the path (httpx deprecated `verify=<str>`), as cli/client.py does.
        verify: ssl.SSLContext | bool = ssl.create_default_context(cafile=ca) if Path(ca).exists() else True
        self.http = httpx.Client(verify=verify, timeout=30.0)
        self._token: str | None = None
        self._meta: dict[str, Any] | None = None

    def _call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            return self.http.request(method, f"{self.server}{path}", **kwargs)
        except httpx.HTTPError as exc:
            raise ClusterAPIError(f"cannot reach {self.server}: {exc}", "ServiceUnavailable") from None

    def metadata(self) -> dict[str, Any]:
        """`/strongroom/metadata`: tenant, authority, vault URL template (public, no token)."""
        if self._meta is None:
            r = self._call("GET", "/strongroom/metadata")
            if r.status_code != 200:
                raise _error_from(r)
            self._meta = r.json()
            self.tenant_id = self.tenant_id or self._meta["tenantId"]
        return self._meta

    def _management_token(self) -> str:
        if self._token is None:
            if not (self.client_id and self._client_secret):
                raise ClusterAPIError(
                    "no credentials: need admin.json in the state dir or AZURE_CLIENT_ID/AZURE_CLIENT_SECRET"
                )
            tenant = self.tenant_id or self.metadata()["tenantId"]
            form = {"grant_type": "client_credentials", "client_id": self.client_id,
                    "client_secret": self._client_secret, "scope": MANAGEMENT_SCOPE}
            r = self._call("POST", f"/{tenant}/oauth2/v2.0/token", data=form)
            if r.status_code != 200:
                raise _error_from(r)
            self._token = r.json()["access_token"]
        return self._token

    def request_token(self, namespace: str, service_account: str, audience: str, pod_name: str) -> dict[str, Any]:
        """TokenRequest for the pod: its `status` (`token`, `expirationTimestamp`)."""
        body = {
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenRequest",
            "spec": {
                "audiences": [audience],
                "expirationSeconds": TOKEN_SECONDS,
                "boundObjectRef": {"kind": "Pod", "apiVersion": "v1", "name": pod_name},
            },
        }
        path = f"/clusters/local/api/v1/namespaces/{namespace}/serviceaccounts/{service_account}/token"
        r = self._call("POST", path, json=body, headers={"Authorization": f"Bearer {self._management_token()}"})
        if r.status_code >= 400:
            raise _error_from(r)
        return r.json()["status"]


class ClusterTokens:
    """TokenSource backed by the local cluster's TokenRequest API (what kubelet does for a pod)."""

    def __init__(self, state_dir: Path | None, server: str | None) -> None:
        self.state_dir = state_dir
        self.server = server
        self._cluster: LocalCluster | None = None

    def cluster(self) -> LocalCluster:
        """The connection; the metadata lookup shares it (one TLS set-up, not two)."""
        if self._cluster is None:
            self._cluster = LocalCluster(self.state_dir, self.server)
        return self._cluster

    def token(self, namespace: str, service_account: str, audience: str, pod_name: str) -> ServiceAccountToken:
        for attempt in (1, 2):
            try:
                status = self.cluster().request_token(namespace, service_account, audience, pod_name)
                return ServiceAccountToken(status["token"], status["expirationTimestamp"])
            except ClusterAPIError as exc:
                self._cluster = None  # a fresh connection next time: its cached management token may have expired
                if exc.code == "ServiceUnavailable":
                    raise TokenRequestError(exc.message, True) from None
                if attempt == 2:
                    hint = ""
                    if exc.code == "NotFound":
                        hint = (". Hint: create it with `strongroom cluster serviceaccount create "
                                f"--namespace {namespace} --name {service_account}`")
                    raise TokenRequestError(f"{exc.message}{hint}", False) from None
        raise AssertionError("unreachable")
