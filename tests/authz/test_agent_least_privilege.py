"""The agent runs without the instance admin's credentials (issue #10, section 1).

Two least-privilege paths, each exercised end to end with `strongroom mount` on a
node state dir that holds no admin.json (only the CA to trust):
- a principal with the built-in role "Strongroom Node Agent" (its own action,
  `Strongroom.Cluster/serviceAccounts/token/action`) requests service-account tokens;
- `--token-file`: the agent forwards a token it is given, as a pod forwards its
  kubelet-projected token, and needs no credentials at all.
Before the fix the TokenRequest API answered 403 to anyone but the admin and the
agent had no other way to get a token.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.agent.conftest import SEED_VALUE, federate, spc_yaml, unique
from tests.authz.attack import Actor
from tests.authz.conftest import make_sp
from tests.conftest import STRONGROOM

NODE_AGENT = "7da02982-015f-45bf-a3ed-d8d258d2a72c"


@pytest.fixture(scope="module")
def workload(server):
    vault, rg = unique("kvnode"), unique("rg-")
    server.cli("keyvault", "create", "--name", vault, "-g", rg)
    server.cli("keyvault", "secret", "set", "--vault-name", vault, "--name", "db-password", "--value", SEED_VALUE)
    return federate(server, vault, rg, "nodeagent")


@pytest.fixture
def node(server, tmp_path) -> Path:
    """A node's state dir: the CA to trust, and no admin credentials."""
    d = tmp_path / "node"
    d.mkdir()
    shutil.copy(server.ca, d / "ca.pem")
    return d


def _mount(server, node: Path, spc: Path, w, target: Path, *extra: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("AZURE_", "STRONGROOM_"))}
    args = ["mount", "--spc", str(spc), "--namespace", w.namespace, "--service-account", w.service_account,
            "--target", str(target), "--state-dir", str(node), "--server", server.url, *extra]
    return subprocess.run([*STRONGROOM, *args], env={**clean, **env}, capture_output=True, text=True, timeout=90)


def _token_request(actor: Actor, w) -> int:
    body = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
            "spec": {"audiences": ["api://AzureADTokenExchange"], "expirationSeconds": 3600}}
    path = f"/clusters/local/api/v1/namespaces/{w.namespace}/serviceaccounts/{w.service_account}/token"
    return actor.arm("POST", path, json=body, params={}).status_code


def test_a_node_agent_mounts_with_its_own_role_and_nothing_more(server, workload, node, tmp_path):
    admin = Actor(server)
    sp = make_sp(server, "node")
    nobody = Actor(server, make_sp(server, "not-a-node"))
    agent = Actor(server, sp)
    assert _token_request(nobody, workload) == 403
    assert _token_request(agent, workload) == 403
    assert admin.assign(f"/subscriptions/{admin.sub}", NODE_AGENT, sp.object_id).status_code == 201
    assert _token_request(agent, workload) == 201
    assert _token_request(nobody, workload) == 403

    spc = tmp_path / "spc.yaml"
    spc.write_text(spc_yaml(workload))
    target = tmp_path / "mnt"
    proc = _mount(server, node, spc, workload, target, env={
        "AZURE_CLIENT_ID": sp.app_id, "AZURE_CLIENT_SECRET": sp.password, "AZURE_TENANT_ID": server.admin["tenantId"]})
    assert proc.returncode == 0, proc.stderr
    assert (target / "db-password").read_text() == SEED_VALUE

    # The role is about tokens only: no other cluster or vault rights.
    r = agent.arm("POST", f"/clusters/local/api/v1/namespaces/{workload.namespace}/serviceaccounts",
                  json={"metadata": {"name": "sneaky"}}, params={})
    assert r.status_code == 403
    assert agent.data("GET", workload.vault, "/secrets/db-password").status_code == 403
    assert agent.arm("GET", f"/subscriptions/{admin.sub}/providers/Microsoft.KeyVault/vaults").json()["value"] == []

    # The access review names the node agent: through the workload's federated identity it reaches the secret.
    vault_path = server.cli_json("keyvault", "show", "--name", workload.vault)["id"]
    r = admin.arm("GET", f"{vault_path}/secrets/db-password/providers/Strongroom.Authorization/accessReview",
                  params={"api-version": "2022-04-01"})
    rows = [row for row in r.json()["value"] if row["principalId"] == sp.object_id]
    assert [(row["roleDefinitionName"], row["indirect"], row["via"]) for row in rows] == [
        ("Strongroom Node Agent", True, ["ServiceAccountToken"])]


def test_mount_with_a_token_file_needs_no_credentials(server, workload, node, tmp_path):
    token = server.cli("cluster", "token", "--namespace", workload.namespace, "--service-account",
                       workload.service_account, "--audience", "api://AzureADTokenExchange").stdout.strip()
    token_file = tmp_path / "token"
    token_file.write_text(token + "\n")
    spc = tmp_path / "spc.yaml"
    spc.write_text(spc_yaml(workload))
    target = tmp_path / "mnt"
    proc = _mount(server, node, spc, workload, target, "--token-file", str(token_file), env={})
    assert proc.returncode == 0, proc.stderr
    assert (target / "db-password").read_text() == SEED_VALUE
    assert token not in proc.stdout + proc.stderr


def test_a_token_file_for_another_service_account_or_audience_is_refused_clearly(server, workload, node, tmp_path):
    spc = tmp_path / "spc.yaml"
    spc.write_text(spc_yaml(workload))
    other_sa = unique("sa-")
    server.cli("cluster", "serviceaccount", "create", "--namespace", workload.namespace, "--name", other_sa)
    cases = {
        "other-sa": (server.cli("cluster", "token", "--namespace", workload.namespace, "--service-account", other_sa,
                                "--audience", "api://AzureADTokenExchange").stdout.strip(), "is for"),
        "audience": (server.cli("cluster", "token", "--namespace", workload.namespace, "--service-account",
                                workload.service_account).stdout.strip(), "audience"),
        "garbage": ("not-a-jwt", "not a JWT"),
    }
    for name, (content, says) in cases.items():
        f = tmp_path / name
        f.write_text(content)
        proc = _mount(server, node, spc, workload, tmp_path / f"mnt-{name}", "--token-file", str(f), env={})
        assert proc.returncode != 0, name
        assert says in proc.stderr, (name, proc.stderr)
        assert not (tmp_path / f"mnt-{name}" / "db-password").exists()


def _jwt(**claims) -> str:
    import jwt

    return jwt.encode(claims, "k" * 32, algorithm="HS256")


def test_token_file_limits_in_process(tmp_path):
    """The file is bounded (64 KiB), an expired token is a retryable wait, a fresh one passes."""
    import time

    from strongroom.agent.tokens import MAX_TOKEN_FILE_BYTES, FileTokens, TokenRequestError

    f = tmp_path / "token"
    source = FileTokens(f)
    sub, aud = "system:serviceaccount:ns:sa", "api://AzureADTokenExchange"
    f.write_text("x" * (MAX_TOKEN_FILE_BYTES + 1))
    with pytest.raises(TokenRequestError) as big:
        source.token("ns", "sa", aud, "pod")
    assert not big.value.retryable and "larger than" in big.value.message
    f.write_text(_jwt(sub=sub, aud=[aud], exp=int(time.time()) - 5))
    with pytest.raises(TokenRequestError) as old:
        source.token("ns", "sa", aud, "pod")
    assert old.value.retryable and "expired" in old.value.message
    with pytest.raises(TokenRequestError) as missing:
        FileTokens(tmp_path / "absent").token("ns", "sa", aud, "pod")
    assert missing.value.retryable
    fresh = _jwt(sub=sub, aud=aud, exp=int(time.time()) + 600)
    f.write_text(fresh + "\n")
    got = source.token("ns", "sa", aud, "pod")
    assert got.token == fresh and got.expiration_timestamp.endswith("Z")
