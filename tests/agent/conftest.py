"""The seed's setup, done as a user does it with the CLI, and the agent started as a user starts it.

Seed steps: a vault with db-password; a managed identity with "Key Vault Secrets
User" on the vault; a service account of the local cluster and a federated
credential for its subject; the SecretProviderClass of the walkthrough
(keyvaultName, clientID, tenantId, objects with db-password).
"""

from __future__ import annotations

import os
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import STRONGROOM, Server

SEED_VALUE = "s3cret-seed-value"


@dataclass
class Workload:
    vault: str
    rg: str
    identity: str
    client_id: str
    tenant_id: str
    namespace: str
    service_account: str


def unique(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:8]}"


def federate(server: Server, vault: str, rg: str, namespace: str, *, scope_suffix: str = "",
             role: str = "Key Vault Secrets User") -> Workload:
    """identity create, role assignment create, cluster serviceaccount create, federated-credential create."""
    identity, sa = unique("app-id-"), unique("sa-")
    client_id = server.cli("identity", "create", "--name", identity, "-g", rg, "--query", "clientId", "-o", "tsv").stdout.strip()
    vault_id = server.cli("keyvault", "show", "--name", vault, "--query", "id", "-o", "tsv").stdout.strip()
    server.cli("role", "assignment", "create", "--role", role, "--assignee", client_id, "--scope", vault_id + scope_suffix)
    server.cli("cluster", "serviceaccount", "create", "--namespace", namespace, "--name", sa,
               "--annotations", f"azure.workload.identity/client-id={client_id}")
    issuer = server.cli("cluster", "oidc-issuer").stdout.strip()
    server.cli("identity", "federated-credential", "create", "--name", "kubernetes-federated-credential",
               "--identity-name", identity, "-g", rg, "--issuer", issuer,
               "--subject", f"system:serviceaccount:{namespace}:{sa}", "--audiences", "api://AzureADTokenExchange")
    return Workload(vault, rg, identity, client_id, server.admin["tenantId"], namespace, sa)


def spc_yaml(w: Workload, *objects: str, name: str = "azure-kvname-wi", secret_objects: bool = True) -> str:
    """The walkthrough's SecretProviderClass, byte for byte what people apply on AKS (plus secretObjects)."""
    entries = "".join(
        f"        - |\n          objectName: {o}\n          objectType: secret\n          objectVersion: \"\"\n"
        for o in (objects or ("db-password",))
    )
    sync = (
        "  secretObjects:\n"
        "    - secretName: db-creds\n"
        "      type: Opaque\n"
        "      data:\n"
        "        - objectName: db-password\n"
        "          key: DB_PASSWORD\n"
    ) if secret_objects else ""
    return (
        "apiVersion: secrets-store.csi.x-k8s.io/v1\n"
        "kind: SecretProviderClass\n"
        "metadata:\n"
        f"  name: {name}\n"
        f"  namespace: {w.namespace}\n"
        "spec:\n"
        "  provider: azure\n"
        f"{sync}"
        "  parameters:\n"
        "    usePodIdentity: \"false\"\n"
        f"    clientID: \"{w.client_id}\"\n"
        f"    keyvaultName: {w.vault}\n"
        "    cloudName: \"\"\n"
        "    objects: |\n"
        "      array:\n"
        f"{entries}"
        f"    tenantId: \"{w.tenant_id}\"\n"
    )


@pytest.fixture(scope="session")
def seed(server: Server) -> Workload:
    vault, rg = unique("kvagent"), unique("rg-")
    server.cli("keyvault", "create", "--name", vault, "-g", rg)
    server.cli("keyvault", "secret", "set", "--vault-name", vault, "--name", "db-password", "--value", SEED_VALUE)
    return federate(server, vault, rg, "workload")


@pytest.fixture
def spc_file(tmp_path: Path, seed: Workload) -> Path:
    path = tmp_path / "spc.yaml"
    path.write_text(spc_yaml(seed))
    return path


def agent_env(server: Server) -> dict[str, str]:
    return {**os.environ, "STRONGROOM_STATE_DIR": str(server.state_dir), "PYTHONUNBUFFERED": "1"}


def agent(server: Server, *args: str, log: Path | None = None) -> subprocess.Popen:
    """A long-running agent command (`mount --watch`, `run`), its output in `log`."""
    if log is None:
        return subprocess.Popen([*STRONGROOM, *args], env=agent_env(server), stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    with open(log, "ab") as out:  # the agent keeps its own descriptor
        return subprocess.Popen([*STRONGROOM, *args], env=agent_env(server), stdout=out, stderr=subprocess.STDOUT)


def agent_once(server: Server, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*STRONGROOM, *args], env=agent_env(server), capture_output=True, text=True, timeout=60)


def wait_until(predicate, timeout: float = 10.0, interval: float = 0.01) -> float:
    """Seconds until `predicate()` held; fails after `timeout`."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        try:
            if predicate():
                return time.monotonic() - started
        except OSError:
            pass
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout} s")


def read(path: Path) -> str | None:
    try:
        return path.read_text()
    except OSError:
        return None


def current_value(server: Server, vault: str, name: str = "db-password") -> str:
    """The secret's value now (other tests rotate the seed's db-password)."""
    return server.cli("keyvault", "secret", "show", "--vault-name", vault, "--name", name, "--query", "value", "-o", "tsv").stdout.strip()


def set_secret(server: Server, vault: str, name: str, value: str) -> float:
    """`secret set` as a user runs it; returns time.monotonic() when the command returned."""
    server.cli("keyvault", "secret", "set", "--vault-name", vault, "--name", name, "--value", value, "-o", "none")
    return time.monotonic()
