"""The Azure SDK for JavaScript (@azure/identity + @azure/keyvault-secrets from npm, pinned by
js/package-lock.json) reads a secret from Strongroom with ClientSecretCredential and with
WorkloadIdentityCredential, configured as docs/clients.md says: `authorityHost` = the instance,
`disableInstanceDiscovery: true`, NODE_EXTRA_CA_CERTS = the instance's CA.

js/loopback.cjs is preloaded (NODE_OPTIONS=--require): `*.localhost` resolves to 127.0.0.1 and any
other name or non-loopback address is refused and logged, so the check proves nothing leaves the
machine. The same guard shows why `disableInstanceDiscovery` is needed: without it MSAL asks
login.microsoftonline.com and the credential fails.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.azcli import tools
from tests.conftest import Server

JS = Path(__file__).resolve().parent / "js"
SECRET_VALUE = "js-s3cr3t"


# The first run installs the SDKs (tests/azcli/tools.py, npm ci) inside a fixture; az_server shares conftest with the az suite.
pytestmark = pytest.mark.timeout(1800)

@pytest.fixture(scope="module")
def node_modules() -> Path:
    try:
        return tools.js_modules() / "node_modules"
    except tools.ToolMissing as exc:
        pytest.fail(f"the JavaScript SDKs could not be installed from npm: {exc}")


@pytest.fixture(scope="module")
def setup(az_server: Server):
    s = az_server
    s.cli("keyvault", "create", "--name", "kvjs")
    s.cli("keyvault", "secret", "set", "--vault-name", "kvjs", "--name", "app-secret", "--value", SECRET_VALUE)
    mi = s.cli_json("identity", "create", "--name", "js-workload")
    vault_id = s.cli_json("keyvault", "show", "--name", "kvjs")["id"]
    s.cli("role", "assignment", "create", "--role", "Key Vault Secrets User", "--assignee", mi["clientId"], "--scope", vault_id)
    s.cli("cluster", "serviceaccount", "create", "--name", "js-sa")
    issuer = s.cli("cluster", "oidc-issuer").stdout.strip()
    s.cli("identity", "federated-credential", "create", "--name", "js-fic", "--identity-name", "js-workload",
          "--issuer", issuer, "--subject", "system:serviceaccount:default:js-sa", "--audiences", "api://AzureADTokenExchange")
    return mi


def run_node(server: Server, node_modules: Path, tmp_path: Path, mode: str, extra: dict[str, str]) -> tuple[dict, set[str]]:
    egress = tmp_path / f"egress-{mode}.log"
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "NODE_PATH": str(node_modules),
        "NODE_EXTRA_CA_CERTS": server.ca,
        "NODE_OPTIONS": f"--require {JS / 'loopback.cjs'}",
        "STRONGROOM_EGRESS_LOG": str(egress),
        "AZURE_AUTHORITY_HOST": server.url,
        "AZURE_TENANT_ID": server.admin["tenantId"],
        "VAULT_URL": server.vault_url("kvjs"),
        "SECRET_NAME": "app-secret",
        **extra,
    }
    proc = subprocess.run(["node", str(JS / "read_secret.cjs"), mode], capture_output=True, text=True, env=env, timeout=120)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    assert lines, f"node printed no result ({proc.returncode}):\n{proc.stdout}\n{proc.stderr[-2000:]}"
    attempts = set(egress.read_text().split("\n")) - {""} if egress.exists() else set()
    return json.loads(lines[-1]), attempts


def test_client_secret_credential_reads_a_secret(az_server, node_modules, setup, tmp_path):
    a = az_server.admin
    out, egress = run_node(az_server, node_modules, tmp_path, "client-secret",
                           {"AZURE_CLIENT_ID": a["clientId"], "AZURE_CLIENT_SECRET": a["clientSecret"]})
    assert out.get("value") == SECRET_VALUE, out
    assert out["id"].startswith(az_server.vault_url("kvjs") + "/secrets/app-secret/")
    assert egress == set()


def test_workload_identity_credential_reads_a_secret(az_server, node_modules, setup, tmp_path):
    token = az_server.cli("cluster", "token", "--service-account", "js-sa", "--audience", "api://AzureADTokenExchange").stdout
    token_file = tmp_path / "token"
    token_file.write_text(token.strip())
    wi = {"AZURE_CLIENT_ID": setup["clientId"], "AZURE_FEDERATED_TOKEN_FILE": str(token_file)}
    out, egress = run_node(az_server, node_modules, tmp_path, "workload-identity", wi)
    assert out.get("value") == SECRET_VALUE, out
    assert egress == set()
    # Without disableInstanceDiscovery MSAL asks Microsoft's discovery host first: refused here, so it fails.
    out, egress = run_node(az_server, node_modules, tmp_path, "workload-identity", {**wi, "STRONGROOM_INSTANCE_DISCOVERY": "on"})
    assert "error" in out and "value" not in out
    assert "resolve login.microsoftonline.com" in egress
