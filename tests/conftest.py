"""Shared fixtures: a real `strongroom up` on a free port, and its admin credentials.

`*.localhost` names resolve to 127.0.0.1 in this test process, as an /etc/hosts
line would make them resolve for a user (see the README).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

pytest_plugins = ["tests.pgcluster"]  # the private PostgreSQL cluster of the PostgreSQL half

ROOT = Path(__file__).resolve().parent.parent
STRONGROOM = [sys.executable, "-m", "strongroom.cli.main"]

_real_getaddrinfo = socket.getaddrinfo


def _localhost_getaddrinfo(host, *args, **kwargs):
    if isinstance(host, str) and host.endswith(".localhost"):
        host = "127.0.0.1"
    return _real_getaddrinfo(host, *args, **kwargs)


socket.getaddrinfo = _localhost_getaddrinfo


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Server:
    state_dir: Path
    port: int
    proc: subprocess.Popen | None = None
    log_path: Path | None = None
    extra_args: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"https://localhost:{self.port}"

    @property
    def ca(self) -> str:
        return str(self.state_dir / "ca.pem")

    @property
    def ssl_context(self) -> ssl.SSLContext:
        """Trusts this server's CA, for httpx (which deprecated `verify=<path>`); SDKs take `ca` as `connection_verify`."""
        return ssl.create_default_context(cafile=self.ca)

    @property
    def admin(self) -> dict:
        return json.loads((self.state_dir / "admin.json").read_text())

    def vault_url(self, name: str) -> str:
        return f"https://{name}.vault.localhost:{self.port}"

    def start(self, timeout: float = 20.0) -> Server:
        self.log_path = self.state_dir.parent / f"server-{self.port}.log"
        with open(self.log_path, "ab") as log:  # the child keeps its own descriptor
            self.proc = subprocess.Popen(
                [*STRONGROOM, "up", "--state-dir", str(self.state_dir), "--port", str(self.port), *self.extra_args],
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.state_dir.parent,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited early:\n{self.log_path.read_text()}")
            try:
                if httpx.get(f"{self.url}/healthz", verify=self.ssl_context, timeout=1).status_code == 200:
                    return self
            except (httpx.HTTPError, OSError):
                pass
            time.sleep(0.05)
        self.stop(signal.SIGKILL)
        raise RuntimeError(f"server not healthy within {timeout}s:\n{self.log_path.read_text()}")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def cli(self, *args: str, check: bool = True, input: str | None = None) -> subprocess.CompletedProcess:
        env = {**os.environ, "STRONGROOM_STATE_DIR": str(self.state_dir)}
        proc = subprocess.run([*STRONGROOM, *args], capture_output=True, text=True, env=env, input=input, timeout=60)
        if check and proc.returncode != 0:
            raise AssertionError(f"strongroom {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr}")
        return proc

    def cli_json(self, *args: str):
        return json.loads(self.cli(*args).stdout)


def start_server(tmp: Path, *extra: str) -> Server:
    tmp.mkdir(parents=True, exist_ok=True)
    return Server(tmp / "state", free_port(), extra_args=list(extra)).start()


@pytest.fixture(scope="session")
def server(tmp_path_factory) -> Server:
    # The private CA signs only allowed names; the suite's certificates use *.internal.
    srv = start_server(tmp_path_factory.mktemp("server"), "--ca-allowed-domains", "internal")
    yield srv
    srv.stop()


@pytest.fixture(scope="session")
def vault(server: Server) -> str:
    """A vault shared by the session's tests; tests use unique secret names."""
    server.cli("keyvault", "create", "--name", "kv-shared")
    return "kv-shared"


@pytest.fixture(scope="session")
def admin_credential(server: Server):
    from azure.identity import ClientSecretCredential

    a = server.admin
    return ClientSecretCredential(
        a["tenantId"], a["clientId"], a["clientSecret"], authority=server.url, disable_instance_discovery=True,
        connection_verify=server.ca,
    )


@pytest.fixture(scope="session")
def secret_client(server: Server, vault: str, admin_credential):
    from azure.keyvault.secrets import SecretClient

    return SecretClient(server.vault_url(vault), admin_credential, connection_verify=server.ca)
