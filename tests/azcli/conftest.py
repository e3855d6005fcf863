"""The real `az` CLI (azure-cli from PyPI, unmodified) against a Strongroom instance.

`az` runs in its own venv (tests/azcli/tools.py installs it once per machine) with:
- AZURE_CONFIG_DIR in a temporary directory (the user's ~/.azure is never read or written);
- REQUESTS_CA_BUNDLE = the instance's CA, as docs/clients.md tells users;
- PYTHONPATH = tests/azcli/loopback, whose sitecustomize makes `*.localhost` resolve to
  127.0.0.1 (what the README's /etc/hosts line does for a user; glibc here does not resolve
  *.localhost) and refuses, and logs, every other name and every non-loopback address;
- a dead proxy (127.0.0.1:9) for anything not on NO_PROXY, as a second fence.
Configuration is only what a user does: `az cloud register`, `az cloud set`,
`az config set core.instance_discovery=false core.collect_telemetry=false`, `az login`.
"""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.azcli import tools
from tests.conftest import Server, start_server

LOOPBACK = Path(__file__).resolve().parent / "loopback"
AZ_TIMEOUT = 120
# The one outbound attempt az makes on its own: the newer-version check (refused; az carries on).
EXPECTED_EGRESS = {"resolve azcliprod.blob.core.windows.net"}


@pytest.fixture(scope="session")
def az_python() -> Path:
    try:
        return tools.az_venv() / "bin" / "python"
    except tools.ToolMissing as exc:
        pytest.fail(f"azure-cli {tools.AZ_VERSION} could not be installed from PyPI: {exc}")


SECRET_OPTIONS = ("--password", "-p", "--federated-token", "--client-secret")


def _masked(args: tuple[str, ...]) -> list[str]:
    """The command line for a failure message, without the credentials it carried."""
    out: list[str] = []
    for i, a in enumerate(args):
        if i and args[i - 1] in SECRET_OPTIONS:
            out.append("***")
        elif a.startswith(tuple(o + "=" for o in SECRET_OPTIONS)):
            out.append(a.split("=", 1)[0] + "=***")
        else:
            out.append(a)
    return out


@dataclass
class Az:
    python: Path
    home: Path
    server: Server
    egress_log: Path

    @property
    def config_dir(self) -> Path:
        return self.home / "azconfig"

    def env(self) -> dict[str, str]:
        return {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(self.home),
            "LANG": "C.UTF-8",
            "AZURE_CONFIG_DIR": str(self.config_dir),
            "REQUESTS_CA_BUNDLE": self.server.ca,
            "PYTHONPATH": str(LOOPBACK),
            "STRONGROOM_EGRESS_LOG": str(self.egress_log),
            "AZURE_CORE_COLLECT_TELEMETRY": "false",
            "AZURE_CORE_NO_COLOR": "true",
            "AZURE_CORE_SURVEY_MESSAGE": "false",
            "AZURE_EXTENSION_USE_DYNAMIC_INSTALL": "no",
            "HTTPS_PROXY": "http://127.0.0.1:9",
            "HTTP_PROXY": "http://127.0.0.1:9",
            "NO_PROXY": "localhost,127.0.0.1,.localhost",
        }

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        proc = subprocess.run(
            [str(self.python), "-m", "azure.cli", *args],
            capture_output=True, text=True, env=self.env(), timeout=AZ_TIMEOUT, cwd=self.home,
        )
        if check and proc.returncode != 0:
            raise AssertionError(f"az {' '.join(_masked(args))} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
        return proc

    def json(self, *args: str):
        return json.loads(self.run(*args, "-o", "json").stdout)

    def tsv(self, *args: str) -> str:
        return self.run(*args, "-o", "tsv").stdout.strip()

    def egress(self) -> set[str]:
        return set(self.egress_log.read_text().split("\n")) - {""} if self.egress_log.exists() else set()


def make_az(az_python: Path, home: Path, server: Server) -> Az:
    home.mkdir(parents=True, exist_ok=True)
    return Az(az_python, home, server, home / "egress.log")


@pytest.fixture(scope="module")
def az_server(tmp_path_factory) -> Server:
    srv = start_server(tmp_path_factory.mktemp("azserver"))
    yield srv
    srv.stop()


def instance_metadata(server: Server) -> dict:
    return httpx.get(f"{server.url}/strongroom/metadata", verify=server.ssl_context, timeout=10).json()
