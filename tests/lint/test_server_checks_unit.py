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
