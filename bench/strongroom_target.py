"""Strongroom as it runs by default (SQLite, audit log on), read by a workload identity.

Set-up follows the AKS walkthrough with `strongroom` in place of az/kubectl: a vault,
a managed identity holding "Key Vault Secrets User" on it (a second one holding
"Key Vault Secrets Officer" for the write scenario), a service account of the local
cluster and a federated credential; the access tokens wrk sends come from the real
federated client-assertion exchange at the token endpoint.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode

import httpx

from bench.load import Workload

ROOT = Path(__file__).resolve().parent.parent
VAULT = "bench"
NAMESPACE = "bench"
AUDIENCE = "api://AzureADTokenExchange"
API = "api-version=7.4"


def strongroom_cmd() -> list[str]:
    return [sys.executable, "-m", "strongroom.cli.main"]


@dataclass
class Identity:
    name: str
    role: str
    client_id: str = ""
    sa_token: str = ""
    access_token: str = ""


@dataclass
class Strongroom:
    workdir: Path
    port: int
    workers: int
    tls: bool = False
    throttle: bool = False
    proc: subprocess.Popen | None = None
    reader: Identity = field(default_factory=lambda: Identity("bench-reader", "Key Vault Secrets User"))
    writer: Identity = field(default_factory=lambda: Identity("bench-writer", "Key Vault Secrets Officer"))
    tenant_id: str = ""
    public_port: int | None = None  # behind a load balancer: the port clients use (`--public-url`); `port` is where this listens
    extra_args: list[str] = field(default_factory=list)  # more `up` flags (`--storage`, `--public-url`)
    name: str = "Strongroom"

    @property
    def state_dir(self) -> Path:
        return self.workdir / "state"

    @property
    def scheme(self) -> str:
        return "https" if self.tls else "http"

    @property
    def front_port(self) -> int:
        return self.public_port or self.port

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.front_port}"

    @property
    def direct_url(self) -> str:
        """This process itself, not the load balancer in front of it."""
        return f"{self.scheme}://127.0.0.1:{self.port}"

    @property
    def authority(self) -> str:
        return f"{self.scheme}://localhost:{self.front_port}"

    @property
    def vault_host(self) -> str:
        return f"{VAULT}.vault.localhost:{self.front_port}"

    @property
    def ca_file(self) -> str | None:
        return str(self.state_dir / "ca.pem") if self.tls else None

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def http(self) -> httpx.Client:
        # Before the first TLS start there is no CA file yet (plain HTTP does not make one).
        ca = self.ca_file
        return httpx.Client(verify=ca if ca and Path(ca).exists() else False, timeout=30)

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> float:
        """Start `strongroom up`; returns seconds from exec to a healthy /healthz."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        args = [*strongroom_cmd(), "up", "--state-dir", str(self.state_dir), "--port", str(self.port),
                "--workers", str(self.workers), "--log-level", "warning"]
        if not self.tls:
            args.append("--insecure-http")
        if not self.throttle:
            args.append("--no-throttle")
        args += self.extra_args
        log = open(self.workdir / "server.log", "ab")
        t0 = time.monotonic()
        self.proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, cwd=self.workdir)
        with self.http() as c:
            while time.monotonic() - t0 < 60:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"strongroom up exited:\n{(self.workdir / 'server.log').read_text()[-3000:]}")
                try:
                    if c.get(f"{self.direct_url}/healthz", timeout=1).status_code == 200:
                        return time.monotonic() - t0
                except httpx.HTTPError:
                    pass
                time.sleep(0.01)
        raise RuntimeError("strongroom not healthy within 60 s")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=40)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    # -- set-up ------------------------------------------------------------------------------

    def cli(self, *args: str) -> str:
        env = {**os.environ, "STRONGROOM_STATE_DIR": str(self.state_dir)}
        p = subprocess.run([*strongroom_cmd(), *args], capture_output=True, text=True, env=env, timeout=120)
        if p.returncode != 0:
            raise RuntimeError(f"strongroom {' '.join(args)}: {p.stderr.strip()}")
        return p.stdout.strip()

    def setup(self) -> None:
        """The vault and the workload identities (once per state dir)."""
        self.tenant_id = json.loads((self.state_dir / "admin.json").read_text())["tenantId"]
        if (self.workdir / "setup.json").exists():
            saved = json.loads((self.workdir / "setup.json").read_text())
            self.reader.client_id, self.writer.client_id = saved["reader"], saved["writer"]
            return
        vault_id = json.loads(self.cli("keyvault", "create", "--name", VAULT))["id"]
        for ident in (self.reader, self.writer):
            ident.client_id = self.cli("identity", "create", "--name", ident.name, "--query", "clientId", "-o", "tsv")
            self.cli("role", "assignment", "create", "--role", ident.role, "--assignee", ident.client_id,
                     "--scope", vault_id)
            self.cli("cluster", "serviceaccount", "create", "--namespace", NAMESPACE, "--name", ident.name,
                     "--annotations", f"azure.workload.identity/client-id={ident.client_id}")
        (self.workdir / "setup.json").write_text(json.dumps({"reader": self.reader.client_id, "writer": self.writer.client_id}))

    def federate(self) -> None:
        """Service-account tokens and the identities' access tokens.

        With TLS: a federated credential for the local cluster's issuer and the real
        client-assertion exchange. Plain HTTP cannot federate (Entra accepts only https
        issuers, and the local cluster's issuer is http then), so the same managed
        identities get their tokens from the managed-identity endpoint instead.
        """
        issuer = self.cli("cluster", "oidc-issuer")
        for ident in (self.reader, self.writer):
            ident.sa_token = self.cli("cluster", "token", "--namespace", NAMESPACE, "--service-account", ident.name,
                                      "--audience", AUDIENCE, "--duration", "24h")
            if not self.tls:
                ident.access_token = self.msi_token(ident)
                continue
            existing = self.cli("identity", "federated-credential", "list", "--identity-name", ident.name,
                                "--query", "[].name", "-o", "tsv")
            if "fic" not in existing.split():
                self.cli("identity", "federated-credential", "create", "--name", "fic", "--identity-name", ident.name,
                         "--issuer", issuer, "--subject", f"system:serviceaccount:{NAMESPACE}:{ident.name}",
                         "--audiences", AUDIENCE)
            ident.access_token = self.exchange(ident)

    @property
    def can_federate(self) -> bool:
        return self.tls

    def msi_token(self, ident: Identity) -> str:
        header = (self.state_dir / "identity-header").read_text().strip()
        with self.http() as c:
            r = c.get(f"{self.url}/msi/token", headers={"X-IDENTITY-HEADER": header, "Host": f"localhost:{self.front_port}"},
                      params={"api-version": "2019-08-01", "resource": f"https://vault.localhost:{self.front_port}",
                              "client_id": ident.client_id})
        r.raise_for_status()
        return r.json()["access_token"]

    def issuer(self) -> str:
        return f"{self.authority}/clusters/local"

    def jwks_url(self) -> str:
        return f"{self.url}/clusters/local/openid/v1/jwks"

    def token_form(self, ident: Identity) -> dict[str, str]:
        return {
            "client_id": ident.client_id,
            "grant_type": "client_credentials",
            "scope": f"https://vault.localhost:{self.front_port}/.default",
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            "client_assertion": ident.sa_token,
        }

    def exchange(self, ident: Identity) -> str:
        with self.http() as c:
            r = c.post(f"{self.url}/{self.tenant_id}/oauth2/v2.0/token", data=self.token_form(ident),
                       headers={"Host": f"localhost:{self.front_port}"})
        if r.status_code != 200:
            raise RuntimeError(f"token exchange for {ident.name}: {r.status_code} {r.text[:500]}")
        return r.json()["access_token"]

    # -- workloads ---------------------------------------------------------------------------

    def _headers(self, ident: Identity, **extra: str) -> dict[str, str]:
        return {"Host": self.vault_host, "Authorization": f"Bearer {ident.access_token}", **extra}

    def read_one(self, name: str) -> Workload:
        return Workload("GET", f"/secrets/{name}?{API}", headers=self._headers(self.reader))

    def read_spread(self, prefix: str, count: int) -> Workload:
        return Workload("GET", f"/secrets/{prefix}{{i}}?{API}", count=count, headers=self._headers(self.reader))

    def write(self, prefix: str, count: int) -> Workload:
        return Workload("PUT", f"/secrets/{prefix}{{i}}?{API}", count=count, body='{"value":"{v}"}',
                        headers=self._headers(self.writer, **{"Content-Type": "application/json"}))

    def login(self) -> Workload:
        return Workload("POST", f"/{self.tenant_id}/oauth2/v2.0/token", body=urlencode(self.token_form(self.reader)),
                        headers={"Host": f"localhost:{self.front_port}", "Content-Type": "application/x-www-form-urlencoded"})

    def put_request(self, name: str, value: str) -> tuple[str, str, dict[str, str], bytes]:
        return ("PUT", f"/secrets/{name}?{API}", self._headers(self.writer, **{"Content-Type": "application/json"}),
                json.dumps({"value": value}).encode())

    def get_body(self, name: str) -> bytes:
        with self.http() as c:
            r = c.get(f"{self.url}/secrets/{name}?{API}", headers=self._headers(self.reader))
        r.raise_for_status()
        return r.content

    def set_vault_tags(self, tags: dict[str, str]) -> None:
        self.cli("keyvault", "create", "--name", VAULT, "--tags", *[f"{k}={v}" for k, v in tags.items()])
