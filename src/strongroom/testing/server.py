"""A throwaway Strongroom for tests: `strongroom up` in a subprocess, on a free port, in a temporary state dir.

    with StrongroomServer() as s:
        client = SecretClient(s.vault("kv1"), s.credential())

While started, this process resolves the instance's vault host names and trusts
its CA (see process_patch.py); `stop()` undoes both. Set-up calls (vaults,
identities, role assignments) go over HTTP as the instance admin, as the CLI's do.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from strongroom.testing.process_patch import ProcessPatch

RESOURCE_GROUP = "strongroom"
MANAGEMENT_SCOPE = "https://management.azure.com/.default"
EXCHANGE_AUDIENCE = "api://AzureADTokenExchange"
VAULTS_API = "2023-07-01"
IDENTITY_API = "2023-01-31"
AUTHZ_API = "2022-04-01"
CLUSTER = "/clusters/local"


class StrongroomError(RuntimeError):
    """The server did not start, or refused a set-up call (the message carries its error)."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Identity:
    """A user-assigned managed identity federated with a service account of the instance's local cluster.

    For workload identity, give the app `env()` (what the Azure workload identity
    webhook injects) or use `credential()`.
    """

    name: str
    client_id: str
    principal_id: str
    tenant_id: str
    resource_id: str
    authority: str
    namespace: str
    service_account: str
    _server: StrongroomServer

    def federated_token(self, duration: int = 3600) -> str:
        """A fresh service-account token for the identity's federated credential."""
        return self._server._cluster_token(self.namespace, self.service_account, duration)

    def federated_token_file(self, duration: int = 3600) -> Path:
        """Write a fresh token to a file only this user can read (AZURE_FEDERATED_TOKEN_FILE) and return its path."""
        path = self._server.work_dir / "tokens" / f"{self.namespace}.{self.service_account}"
        path.parent.mkdir(mode=0o700, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(self.federated_token(duration))
        os.replace(tmp, path)
        return path

    def env(self) -> dict[str, str]:
        """The variables the workload identity webhook puts into a pod."""
        return {
            "AZURE_CLIENT_ID": self.client_id,
            "AZURE_TENANT_ID": self.tenant_id,
            "AZURE_AUTHORITY_HOST": self.authority,
            "AZURE_FEDERATED_TOKEN_FILE": str(self.federated_token_file()),
        }

    def credential(self, aio: bool = False) -> Any:
        """azure-identity's WorkloadIdentityCredential for this identity (sync, or `aio=True`)."""
        credential_class: Any
        if aio:
            from azure.identity.aio import WorkloadIdentityCredential as AsyncWorkloadIdentityCredential
            credential_class = AsyncWorkloadIdentityCredential
        else:
            from azure.identity import WorkloadIdentityCredential
            credential_class = WorkloadIdentityCredential
        return credential_class(
            tenant_id=self.tenant_id, client_id=self.client_id, token_file_path=str(self.federated_token_file()),
            authority=self.authority, disable_instance_discovery=True,
        )


class StrongroomServer:
    """One Strongroom instance for a test session (or a `with` block)."""

    def __init__(
        self,
        state_dir: Path | str | None = None,
        port: int | None = None,
        extra_args: list[str] | tuple[str, ...] = (),
        startup_timeout: float = 60.0,
        patch_process: bool = True,
    ) -> None:
        self._own_dir = state_dir is None
        self.work_dir = Path(tempfile.mkdtemp(prefix="strongroom-")) if state_dir is None else Path(state_dir).parent
        self.state_dir = self.work_dir / "state" if state_dir is None else Path(state_dir)
        self.port = port or free_port()
        self.extra_args = list(extra_args)
        self.startup_timeout = startup_timeout
        self.patch_process = patch_process
        self.proc: subprocess.Popen | None = None
        self.log_path = self.work_dir / f"server-{self.port}.log"
        self._patch: ProcessPatch | None = None
        self._http: httpx.Client | None = None
        self._token: str | None = None
        self._meta: dict[str, Any] = {}

    # -- lifecycle ------------------------------------------------------------

    def start(self) -> StrongroomServer:
        self.work_dir.mkdir(parents=True, exist_ok=True)
        cmd = [sys.executable, "-m", "strongroom.cli.main", "up", "--state-dir", str(self.state_dir),
               "--port", str(self.port), *self.extra_args]
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         cwd=self.work_dir)
        try:
            self._wait_healthy()
            self._meta = self._http_client().get(f"{self.url}/strongroom/metadata").json()
        except BaseException:
            self.stop()
            raise
        if self.patch_process:
            self._patch = ProcessPatch(f"vault.{self._meta['dnsSuffix']}", "127.0.0.1", Path(self.ca_file),
                                       self.work_dir / "ca-bundle.pem")
            self._patch.apply()
        return self

    def _wait_healthy(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        ca = self.state_dir / "ca.pem"
        while time.monotonic() < deadline:
            if self.proc is None or self.proc.poll() is not None:
                raise StrongroomError(f"strongroom up exited early:\n{self._log_tail()}")
            if ca.exists() and (self.state_dir / "admin.json").exists():
                try:
                    with httpx.Client(verify=ssl.create_default_context(cafile=str(ca)), timeout=2) as c:
                        if c.get(f"{self.url}/healthz").status_code == 200:
                            return
                except (httpx.HTTPError, OSError, ssl.SSLError):
                    pass
            time.sleep(0.05)
        raise StrongroomError(f"strongroom up not healthy within {self.startup_timeout}s:\n{self._log_tail()}")

    def _log_tail(self, chars: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return "(no log)"

    def stop(self) -> None:
        if self._patch is not None:
            self._patch.undo()
            self._patch = None
        if self._http is not None:
            self._http.close()
            self._http = None
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def cleanup(self) -> None:
        """Stop, and remove the temporary directory this object made (never a state dir it was given)."""
        self.stop()
        if self._own_dir:
            shutil.rmtree(self.work_dir, ignore_errors=True)

    def __enter__(self) -> StrongroomServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.cleanup()

    # -- what tests use -------------------------------------------------------

    @property
    def url(self) -> str:
        return f"https://localhost:{self.port}"

    @property
    def authority(self) -> str:
        """AZURE_AUTHORITY_HOST of this instance (its token endpoint's host)."""
        return self._meta.get("authority", self.url)

    @property
    def ca_file(self) -> str:
        return str(self.state_dir / "ca.pem")

    @property
    def admin(self) -> dict[str, Any]:
        return json.loads((self.state_dir / "admin.json").read_text())

    @property
    def tenant_id(self) -> str:
        return self.admin["tenantId"]

    @property
    def subscription_id(self) -> str:
        return self.admin["subscriptionId"]

    def vault_url(self, name: str) -> str:
        return self._meta["vaultUrlTemplate"].replace("{name}", name.lower())

    def env(self) -> dict[str, str]:
        """Variables for a child process that should use this instance as the admin (DefaultAzureCredential reads them)."""
        a = self.admin
        return {
            "AZURE_TENANT_ID": a["tenantId"], "AZURE_CLIENT_ID": a["clientId"], "AZURE_CLIENT_SECRET": a["clientSecret"],
            "AZURE_AUTHORITY_HOST": self.authority, "REQUESTS_CA_BUNDLE": str(self.work_dir / "ca-bundle.pem"),
            "SSL_CERT_FILE": str(self.work_dir / "ca-bundle.pem"), "NODE_EXTRA_CA_CERTS": self.ca_file,
            "STRONGROOM_STATE_DIR": str(self.state_dir),
        }

    def credential(self, aio: bool = False) -> Any:
        """azure-identity's ClientSecretCredential for the instance admin (sync, or `aio=True`)."""
        credential_class: Any
        if aio:
            from azure.identity.aio import ClientSecretCredential as AsyncClientSecretCredential
            credential_class = AsyncClientSecretCredential
        else:
            from azure.identity import ClientSecretCredential
            credential_class = ClientSecretCredential
        a = self.admin
        return credential_class(a["tenantId"], a["clientId"], a["clientSecret"], authority=self.authority,
                                disable_instance_discovery=True)

    def vault(self, name: str, *, enable_rbac_authorization: bool = True) -> str:
        """The URL of vault `name`, created first if it does not exist."""
        if self._find_vault(name) is None:
            body = {"location": "local", "properties": {
                "tenantId": self.tenant_id, "sku": {"family": "A", "name": "standard"},
                "enableRbacAuthorization": enable_rbac_authorization,
            }}
            self._arm("PUT", self._vault_path(name), VAULTS_API, json=body)
        return self.vault_url(name)

    def identity(self, name: str, role: str | None = "Key Vault Secrets User", scope: str | None = None,
                 namespace: str = "default") -> Identity:
        """A managed identity with `role` at `scope`, federated with service account `namespace/name`.

        `scope`: a vault name or URL, an ARM scope (`/subscriptions/...`), or None for the subscription.
        """
        path = f"/subscriptions/{self.subscription_id}/resourceGroups/{RESOURCE_GROUP}/providers/" \
               f"Microsoft.ManagedIdentity/userAssignedIdentities/{name}"
        mi = self._arm("PUT", path, IDENTITY_API, json={"location": "local"})
        props = mi["properties"]
        if role:
            self._assign(role, self._scope(scope), props["principalId"])
        self._ensure_service_account(namespace, name)
        issuer = self._http_client().get(f"{self.url}{CLUSTER}/.well-known/openid-configuration").json()["issuer"]
        fic = {"properties": {"issuer": issuer, "subject": f"system:serviceaccount:{namespace}:{name}",
                              "audiences": [EXCHANGE_AUDIENCE]}}
        self._arm("PUT", f"{path}/federatedIdentityCredentials/{namespace}-{name}", IDENTITY_API, json=fic)
        return Identity(name=name, client_id=props["clientId"], principal_id=props["principalId"],
                        tenant_id=props["tenantId"], resource_id=mi["id"], authority=self.authority,
                        namespace=namespace, service_account=name, _server=self)

    # -- HTTP as the instance admin -------------------------------------------

    def _http_client(self) -> httpx.Client:
        if self._http is None:
            self._http = httpx.Client(verify=ssl.create_default_context(cafile=self.ca_file), timeout=30)
        return self._http

    def _admin_token(self) -> str:
        if self._token is None:
            a = self.admin
            r = self._http_client().post(f"{self.url}/{a['tenantId']}/oauth2/v2.0/token", data={
                "grant_type": "client_credentials", "client_id": a["clientId"], "client_secret": a["clientSecret"],
                "scope": MANAGEMENT_SCOPE,
            })
            if r.status_code != 200:
                raise StrongroomError(f"admin token: HTTP {r.status_code} {r.text[:300]}")
            self._token = r.json()["access_token"]
        return self._token

    def _call(self, method: str, path: str, params: dict[str, str] | None = None, **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self._admin_token()}"}
        return self._http_client().request(method, f"{self.url}{path}", params=params, headers=headers, **kwargs)

    def _arm(self, method: str, path: str, api_version: str, **kwargs: Any) -> Any:
        params = {"api-version": api_version, **kwargs.pop("params", {})}
        r = self._call(method, path, params=params, **kwargs)
        if r.status_code >= 400:
            raise StrongroomError(f"{method} {path}: HTTP {r.status_code} {r.text[:500]}")
        return r.json() if r.content else None

    def _vault_path(self, name: str) -> str:
        return f"/subscriptions/{self.subscription_id}/resourceGroups/{RESOURCE_GROUP}/providers/" \
               f"Microsoft.KeyVault/vaults/{name}"

    def _find_vault(self, name: str) -> dict[str, Any] | None:
        vaults = self._arm("GET", f"/subscriptions/{self.subscription_id}/providers/Microsoft.KeyVault/vaults", VAULTS_API)
        return next((v for v in vaults["value"] if v["name"].lower() == name.lower()), None)

    def _scope(self, scope: str | None) -> str:
        if scope is None:
            return f"/subscriptions/{self.subscription_id}"
        if scope.startswith("/"):
            return scope.rstrip("/")
        name = (urlsplit(scope).hostname or "").split(".")[0] if "://" in scope else scope
        vault = self._find_vault(name)
        if vault is None:
            self.vault(name)
            vault = self._find_vault(name)
            if vault is None:
                raise StrongroomError(f"vault {name} was created but is not listed")
        return vault["id"]

    def _assign(self, role: str, scope: str, principal_id: str) -> None:
        escaped = role.replace("'", "''")
        found = self._arm("GET", f"{scope}/providers/Microsoft.Authorization/roleDefinitions", AUTHZ_API,
                          params={"$filter": f"roleName eq '{escaped}'"})["value"]
        if not found:
            raise StrongroomError(f"role '{role}' does not exist")
        props = {"roleDefinitionId": found[0]["id"], "principalId": principal_id, "principalType": "ServicePrincipal"}
        self._arm("PUT", f"{scope}/providers/Microsoft.Authorization/roleAssignments/{uuid.uuid4()}", AUTHZ_API,
                  json={"properties": props})

    def _ensure_service_account(self, namespace: str, name: str) -> None:
        path = f"{CLUSTER}/api/v1/namespaces/{namespace}/serviceaccounts"
        if self._call("GET", f"{path}/{name}").status_code == 200:
            return
        body = {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": name, "namespace": namespace}}
        r = self._call("POST", path, json=body)
        if r.status_code >= 400:
            raise StrongroomError(f"service account {namespace}/{name}: HTTP {r.status_code} {r.text[:300]}")

    def _cluster_token(self, namespace: str, name: str, duration: int) -> str:
        body = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
                "spec": {"audiences": [EXCHANGE_AUDIENCE], "expirationSeconds": duration}}
        r = self._call("POST", f"{CLUSTER}/api/v1/namespaces/{namespace}/serviceaccounts/{name}/token", json=body)
        if r.status_code >= 400:
            raise StrongroomError(f"token for {namespace}/{name}: HTTP {r.status_code} {r.text[:300]}")
        return r.json()["status"]["token"]
