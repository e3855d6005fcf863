"""Key and certificate operations map to Azure's data actions so the built-in roles grant what Azure's grant.

Role x operation expectations follow Azure's role descriptions (rbac-guide):
e.g. "Key Vault Crypto User" may use keys but not create or delete them.
"""

from __future__ import annotations

import pytest

from strongroom.authz.actions import CERTIFICATE_ACTIONS, KEY_ACTIONS, KEY_POLICY_PERMISSIONS, KEYVAULT_DATA_ACTIONS
from strongroom.authz.engine import role_allows_data
from strongroom.authz.policies import PERMISSIONS
from strongroom.authz.roles import BUILTIN_ROLES

ROLE = {r.role_name: r for r in BUILTIN_ROLES}
KEY_USE = ("KeyGet", "KeyList", "KeyEncrypt", "KeyDecrypt", "KeyWrap", "KeyUnwrap", "KeySign", "KeyVerify", "KeyUpdate", "KeyBackup")


def allowed(role: str, operation: str) -> bool:
    action = {**KEY_ACTIONS, **CERTIFICATE_ACTIONS}[operation]
    return role_allows_data(ROLE[role], action)


def test_every_action_is_one_azure_defines():
    for operation, action in {**KEY_ACTIONS, **CERTIFICATE_ACTIONS}.items():
        assert action in KEYVAULT_DATA_ACTIONS, (operation, action)


def test_every_policy_permission_is_one_arm_accepts():
    for permission in KEY_POLICY_PERMISSIONS.values():
        category, _, name = permission.partition("/")
        assert name in PERMISSIONS[category], permission


@pytest.mark.parametrize("operation", sorted(KEY_ACTIONS))
def test_crypto_officer_and_administrator_do_everything_with_keys(operation):
    assert allowed("Key Vault Crypto Officer", operation)
    assert allowed("Key Vault Administrator", operation)
    assert not allowed("Key Vault Secrets Officer", operation)


@pytest.mark.parametrize("operation", sorted(CERTIFICATE_ACTIONS))
def test_certificates_officer_does_everything_with_certificates(operation):
    assert allowed("Key Vault Certificates Officer", operation)
    assert allowed("Key Vault Administrator", operation)
    assert not allowed("Key Vault Crypto Officer", operation)


def test_crypto_user_uses_keys_but_does_not_manage_them():
    for op in KEY_USE:
        assert allowed("Key Vault Crypto User", op), op
    for op in ("KeyCreate", "KeyImport", "KeyDelete", "KeyPurge", "KeyRestore", "KeyRotate", "KeyRotationPolicySet"):
        assert not allowed("Key Vault Crypto User", op), op


def test_service_encryption_user_only_reads_wraps_and_unwraps():
    role = "Key Vault Crypto Service Encryption User"
    assert [op for op in sorted(KEY_ACTIONS) if allowed(role, op)] == sorted(
        ["KeyGet", "KeyList", "KeyListVersions", "KeyGetDeleted", "KeyListDeleted", "KeyGetAttestation",
         "KeyGetRandomBytes", "KeyWrap", "KeyUnwrap", "KeySecureWrap", "KeySecureUnwrap"]
    )


def test_certificate_user_reads_certificates_and_their_keys():
    assert allowed("Key Vault Certificate User", "CertificateGet")
    assert allowed("Key Vault Certificate User", "KeyGet")
    assert not allowed("Key Vault Certificate User", "CertificateCreate")
    assert not allowed("Key Vault Certificate User", "KeySign")


def test_reader_reads_metadata_only():
    for op in ("KeyGet", "KeyList", "KeyRotationPolicyGet", "CertificateGet", "CertificateIssuerGet", "CertificatePolicyGet"):
        assert allowed("Key Vault Reader", op), op
    for op in ("KeySign", "KeyDecrypt", "CertificateCreate", "CertificateIssuerSet", "CertificateContactsSet"):
        assert not allowed("Key Vault Reader", op), op


def test_release_user_only_releases():
    assert allowed("Key Vault Crypto Service Release User", "KeyRelease")
    assert not allowed("Key Vault Crypto Service Release User", "KeyGet")
