"""Which roles SR201 calls 'more than read', judged on the real built-in definitions (no server needed)."""

from __future__ import annotations

import pytest

from strongroom.authz.roles import BUILTIN_ROLES
from strongroom.lint.server_checks import _exceeds_read

ROLES = {r.role_name: r.to_arm("00000000-0000-0000-0000-000000000000") for r in BUILTIN_ROLES}


@pytest.mark.parametrize("role", ["Key Vault Secrets User", "Key Vault Reader", "Key Vault Certificate User"])
def test_readers_are_not_flagged(role):
    assert _exceeds_read(ROLES[role]) == []


@pytest.mark.parametrize("role", ["Key Vault Secrets Officer", "Key Vault Administrator", "Key Vault Contributor",
                                  "Key Vault Crypto User", "Key Vault Certificates Officer"])
def test_writers_and_managers_are_flagged(role):
    assert _exceeds_read(ROLES[role])


def test_a_contributor_style_custom_role_is_flagged():
    custom = {"properties": {"permissions": [{"actions": ["*"], "dataActions": []}]}}
    assert _exceeds_read(custom) == ["*"]


def test_hostile_names_never_reach_requests_or_fix_commands(tmp_path):
    """clientID, keyvaultName and objectName from an untrusted repository must have Azure's shapes."""
    from strongroom.lint import graph, manifests
    from strongroom.lint.server_checks import readings

    spc = """apiVersion: secrets-store.csi.x-k8s.io/v1
kind: SecretProviderClass
metadata:
  name: {name}
spec:
  provider: azure
  parameters:
    clientID: "{cid}"
    keyvaultName: "{vault}"
    objects: |
      array:
        - |
          objectName: "{obj}"
          objectType: secret
"""
    good = "11111111-1111-1111-1111-111111111111"
    docs = [
        spc.format(name="a", cid="../../subscriptions/x", vault="kv1", obj="db"),
        spc.format(name="b", cid=good, vault="evil.example:443/x", obj="db"),
        spc.format(name="c", cid=good, vault="kv2", obj="x; rm -rf ~"),
        spc.format(name="d", cid=good, vault="kv3", obj="db-password"),
    ]
    (tmp_path / "spcs.yaml").write_text("---\n".join(docs))
    found = readings(graph.build(manifests.load([tmp_path], tmp_path).docs))
    assert sorted((r.vault, sorted(r.objects)) for r in found) == [("kv2", []), ("kv3", ["db-password"])]
    [kv3] = [r for r in found if r.vault == "kv3"]
    assert kv3.fix_commands("/v/kv3") == [
        f'strongroom role assignment create --role "Key Vault Secrets User" --assignee {good} --scope /v/kv3/secrets/db-password']
