"""What each operation needs: its Azure data action and its access-policy permission.

Azure RBAC checks a data action (`Microsoft.KeyVault/vaults/secrets/getSecret/action`);
a vault on the access-policy model checks a permission (`secrets/get`). The two do
not line up one to one (listing and reading a deleted secret share `readMetadata`
but need `list` and `get` respectively), so both are named per operation here.

Patterns in role definitions may contain `*`, which matches any run of
characters including `/` (`Microsoft.KeyVault/vaults/*` covers every data action
of a vault); matching is case-insensitive, as in Azure.
"""

from __future__ import annotations

import re
from functools import lru_cache

SECRETS = "Microsoft.KeyVault/vaults/secrets"

SECRET_ACTIONS: dict[str, str] = {
    "SecretSet": f"{SECRETS}/setSecret/action",
    "SecretGet": f"{SECRETS}/getSecret/action",
    "SecretUpdate": f"{SECRETS}/update/action",
    "SecretDelete": f"{SECRETS}/delete",
    "SecretList": f"{SECRETS}/readMetadata/action",
    "SecretListVersions": f"{SECRETS}/readMetadata/action",
    "SecretListDeleted": f"{SECRETS}/readMetadata/action",
    "SecretGetDeleted": f"{SECRETS}/readMetadata/action",
    "SecretRecover": f"{SECRETS}/recover/action",
    "SecretPurge": f"{SECRETS}/purge/action",
    "SecretBackup": f"{SECRETS}/backup/action",
    "SecretRestore": f"{SECRETS}/restore/action",
}

# The access-policy permission each operation needs, as the REST reference states
# it ("This operation requires the secrets/list permission").
SECRET_POLICY_PERMISSIONS: dict[str, str] = {
    "SecretSet": "secrets/set",
    "SecretGet": "secrets/get",
    "SecretUpdate": "secrets/set",
    "SecretDelete": "secrets/delete",
    "SecretList": "secrets/list",
    "SecretListVersions": "secrets/list",
    "SecretListDeleted": "secrets/list",
    "SecretGetDeleted": "secrets/get",
    "SecretRecover": "secrets/recover",
    "SecretPurge": "secrets/purge",
    "SecretBackup": "secrets/backup",
    "SecretRestore": "secrets/restore",
}

# Default access-policy permission for a data action, for callers that only know the action.
_POLICY_FOR_ACTION: dict[str, str] = {
    f"{SECRETS}/setSecret/action": "secrets/set",
    f"{SECRETS}/getSecret/action": "secrets/get",
    f"{SECRETS}/update/action": "secrets/set",
    f"{SECRETS}/delete": "secrets/delete",
    f"{SECRETS}/readMetadata/action": "secrets/list",
    f"{SECRETS}/recover/action": "secrets/recover",
    f"{SECRETS}/purge/action": "secrets/purge",
    f"{SECRETS}/backup/action": "secrets/backup",
    f"{SECRETS}/restore/action": "secrets/restore",
}


KEYS = "Microsoft.KeyVault/vaults/keys"
KEY_ROTATION_POLICIES = "Microsoft.KeyVault/vaults/keyrotationpolicies"
CERTIFICATES = "Microsoft.KeyVault/vaults/certificates"
CERTIFICATE_CAS = "Microsoft.KeyVault/vaults/certificatecas"
CERTIFICATE_CONTACTS = "Microsoft.KeyVault/vaults/certificatecontacts"

# operation (the audit's operationName) -> (RBAC data action, access-policy permission), per the
# REST reference's "This operation requires the keys/... permission" and the RBAC data actions.
# Reading a key (get, list, versions, deleted ones, attestation) is keys/read, as in Azure.
_KEYS: dict[str, tuple[str, str]] = {
    "KeyCreate": (f"{KEYS}/create/action", "keys/create"),
    "KeyImport": (f"{KEYS}/import/action", "keys/import"),
    "KeyGet": (f"{KEYS}/read", "keys/get"),
    "KeyList": (f"{KEYS}/read", "keys/list"),
    "KeyListVersions": (f"{KEYS}/read", "keys/list"),
    "KeyUpdate": (f"{KEYS}/update/action", "keys/update"),
    "KeyDelete": (f"{KEYS}/delete", "keys/delete"),
    "KeyGetDeleted": (f"{KEYS}/read", "keys/get"),
    "KeyListDeleted": (f"{KEYS}/read", "keys/list"),
    "KeyRecover": (f"{KEYS}/recover/action", "keys/recover"),
    "KeyPurge": (f"{KEYS}/purge/action", "keys/purge"),
    "KeyBackup": (f"{KEYS}/backup/action", "keys/backup"),
    "KeyRestore": (f"{KEYS}/restore/action", "keys/restore"),
    "KeyEncrypt": (f"{KEYS}/encrypt/action", "keys/encrypt"),
    "KeyDecrypt": (f"{KEYS}/decrypt/action", "keys/decrypt"),
    "KeyWrap": (f"{KEYS}/wrap/action", "keys/wrapKey"),
    "KeyUnwrap": (f"{KEYS}/unwrap/action", "keys/unwrapKey"),
    "KeySign": (f"{KEYS}/sign/action", "keys/sign"),
    "KeyVerify": (f"{KEYS}/verify/action", "keys/verify"),
    "KeyRelease": (f"{KEYS}/release/action", "keys/release"),
    "KeySecureWrap": (f"{KEYS}/wrap/action", "keys/wrapKey"),
    "KeySecureUnwrap": (f"{KEYS}/unwrap/action", "keys/unwrapKey"),
    "KeyRotate": (f"{KEYS}/rotate/action", "keys/rotate"),
    "KeyRotationPolicyGet": (f"{KEY_ROTATION_POLICIES}/read", "keys/getrotationpolicy"),
    "KeyRotationPolicySet": (f"{KEY_ROTATION_POLICIES}/write", "keys/setrotationpolicy"),
    "KeyGetAttestation": (f"{KEYS}/read", "keys/get"),
    # Vaults define no rng data action (Managed HSM's is managedHsm/rng/action); reading keys stands in.
    "KeyGetRandomBytes": (f"{KEYS}/read", "keys/get"),
}
KEY_ACTIONS: dict[str, str] = {op: a for op, (a, _) in _KEYS.items()}
KEY_POLICY_PERMISSIONS: dict[str, str] = {op: p for op, (_, p) in _KEYS.items()}

_CERTIFICATES: dict[str, tuple[str, str]] = {
    "CertificateCreate": (f"{CERTIFICATES}/create/action", "certificates/create"),
    "CertificateImport": (f"{CERTIFICATES}/import/action", "certificates/import"),
    "CertificateGet": (f"{CERTIFICATES}/read", "certificates/get"),
    "CertificateList": (f"{CERTIFICATES}/read", "certificates/list"),
    "CertificateListVersions": (f"{CERTIFICATES}/read", "certificates/list"),
    "CertificateUpdate": (f"{CERTIFICATES}/update/action", "certificates/update"),
    "CertificateDelete": (f"{CERTIFICATES}/delete", "certificates/delete"),
    "CertificateGetDeleted": (f"{CERTIFICATES}/read", "certificates/get"),
    "CertificateListDeleted": (f"{CERTIFICATES}/read", "certificates/list"),
    "CertificateRecover": (f"{CERTIFICATES}/recover/action", "certificates/recover"),
    "CertificatePurge": (f"{CERTIFICATES}/purge/action", "certificates/purge"),
    "CertificateBackup": (f"{CERTIFICATES}/backup/action", "certificates/backup"),
    "CertificateRestore": (f"{CERTIFICATES}/restore/action", "certificates/restore"),
    "CertificatePolicyGet": (f"{CERTIFICATES}/read", "certificates/get"),
    "CertificatePolicyUpdate": (f"{CERTIFICATES}/update/action", "certificates/update"),
    "CertificatePendingGet": (f"{CERTIFICATES}/read", "certificates/get"),
    "CertificatePendingUpdate": (f"{CERTIFICATES}/update/action", "certificates/update"),
    "CertificatePendingDelete": (f"{CERTIFICATES}/update/action", "certificates/update"),
    "CertificatePendingMerge": (f"{CERTIFICATES}/create/action", "certificates/create"),
    "CertificateContactsGet": (f"{CERTIFICATES}/read", "certificates/managecontacts"),
    "CertificateContactsSet": (f"{CERTIFICATE_CONTACTS}/write", "certificates/managecontacts"),
    "CertificateContactsDelete": (f"{CERTIFICATE_CONTACTS}/write", "certificates/managecontacts"),
    "CertificateIssuerGet": (f"{CERTIFICATE_CAS}/read", "certificates/getissuers"),
    "CertificateIssuersList": (f"{CERTIFICATE_CAS}/read", "certificates/listissuers"),
    "CertificateIssuerSet": (f"{CERTIFICATE_CAS}/write", "certificates/setissuers"),
    "CertificateIssuerUpdate": (f"{CERTIFICATE_CAS}/write", "certificates/setissuers"),
    "CertificateIssuerDelete": (f"{CERTIFICATE_CAS}/delete", "certificates/deleteissuers"),
}
CERTIFICATE_ACTIONS: dict[str, str] = {op: a for op, (a, _) in _CERTIFICATES.items()}
CERTIFICATE_POLICY_PERMISSIONS: dict[str, str] = {op: p for op, (_, p) in _CERTIFICATES.items()}

# Callers that know only a key or certificate action get the permission of its first operation.
for _table in (_KEYS, _CERTIFICATES):
    for _action, _permission in _table.values():
        _POLICY_FOR_ACTION.setdefault(_action, _permission)


def policy_permission_for(action: str) -> str | None:
    return _POLICY_FOR_ACTION.get(action)


# Every data action Microsoft.KeyVault defines for vaults (Azure permissions
# reference, "Microsoft.KeyVault" DataAction table). Custom role definitions may
# only name data actions (or wildcards) that match at least one of these.
KEYVAULT_DATA_ACTIONS: tuple[str, ...] = (
    "Microsoft.KeyVault/vaults/certificatecas/delete",
    "Microsoft.KeyVault/vaults/certificatecas/read",
    "Microsoft.KeyVault/vaults/certificatecas/write",
    "Microsoft.KeyVault/vaults/certificatecontacts/write",
    "Microsoft.KeyVault/vaults/certificates/delete",
    "Microsoft.KeyVault/vaults/certificates/read",
    "Microsoft.KeyVault/vaults/certificates/backup/action",
    "Microsoft.KeyVault/vaults/certificates/purge/action",
    "Microsoft.KeyVault/vaults/certificates/update/action",
    "Microsoft.KeyVault/vaults/certificates/create/action",
    "Microsoft.KeyVault/vaults/certificates/import/action",
    "Microsoft.KeyVault/vaults/certificates/recover/action",
    "Microsoft.KeyVault/vaults/certificates/restore/action",
    "Microsoft.KeyVault/vaults/keyrotationpolicies/read",
    "Microsoft.KeyVault/vaults/keyrotationpolicies/write",
    "Microsoft.KeyVault/vaults/keys/read",
    "Microsoft.KeyVault/vaults/keys/update/action",
    "Microsoft.KeyVault/vaults/keys/create/action",
    "Microsoft.KeyVault/vaults/keys/import/action",
    "Microsoft.KeyVault/vaults/keys/recover/action",
    "Microsoft.KeyVault/vaults/keys/restore/action",
    "Microsoft.KeyVault/vaults/keys/delete",
    "Microsoft.KeyVault/vaults/keys/backup/action",
    "Microsoft.KeyVault/vaults/keys/purge/action",
    "Microsoft.KeyVault/vaults/keys/encrypt/action",
    "Microsoft.KeyVault/vaults/keys/decrypt/action",
    "Microsoft.KeyVault/vaults/keys/wrap/action",
    "Microsoft.KeyVault/vaults/keys/unwrap/action",
    "Microsoft.KeyVault/vaults/keys/sign/action",
    "Microsoft.KeyVault/vaults/keys/verify/action",
    "Microsoft.KeyVault/vaults/keys/release/action",
    "Microsoft.KeyVault/vaults/keys/rotate/action",
    "Microsoft.KeyVault/vaults/secrets/delete",
    "Microsoft.KeyVault/vaults/secrets/backup/action",
    "Microsoft.KeyVault/vaults/secrets/purge/action",
    "Microsoft.KeyVault/vaults/secrets/update/action",
    "Microsoft.KeyVault/vaults/secrets/recover/action",
    "Microsoft.KeyVault/vaults/secrets/restore/action",
    "Microsoft.KeyVault/vaults/secrets/readMetadata/action",
    "Microsoft.KeyVault/vaults/secrets/getSecret/action",
    "Microsoft.KeyVault/vaults/secrets/setSecret/action",
    "Microsoft.KeyVault/vaults/storageaccounts/read",
    "Microsoft.KeyVault/vaults/storageaccounts/set/action",
    "Microsoft.KeyVault/vaults/storageaccounts/delete",
    "Microsoft.KeyVault/vaults/storageaccounts/backup/action",
    "Microsoft.KeyVault/vaults/storageaccounts/purge/action",
    "Microsoft.KeyVault/vaults/storageaccounts/regeneratekey/action",
    "Microsoft.KeyVault/vaults/storageaccounts/recover/action",
    "Microsoft.KeyVault/vaults/storageaccounts/restore/action",
    "Microsoft.KeyVault/vaults/storageaccounts/sas/set/action",
    "Microsoft.KeyVault/vaults/storageaccounts/sas/delete",
    "Microsoft.KeyVault/vaults/storageaccounts/sas/read",
)

SECRET_DATA_ACTIONS: tuple[str, ...] = tuple(a for a in KEYVAULT_DATA_ACTIONS if a.startswith(SECRETS + "/"))

# An action string: provider namespace, then path segments; `*` wildcards anywhere.
_ACTION_SYNTAX = re.compile(r"^(\*|[A-Za-z0-9*][A-Za-z0-9.*_-]*)(/[A-Za-z0-9.*_{}-]+)*\Z")


@lru_cache(maxsize=4096)
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile("^" + ".*".join(re.escape(p) for p in pattern.split("*")) + "\\Z", re.IGNORECASE)


def matches(pattern: str, action: str) -> bool:
    """Does the role-definition `pattern` (with `*` wildcards) cover `action`?"""
    if "*" not in pattern:
        return pattern.lower() == action.lower()
    return _compiled(pattern).match(action) is not None


def is_valid_action_syntax(pattern: str) -> bool:
    return len(pattern) <= 512 and _ACTION_SYNTAX.match(pattern) is not None


def known_data_actions(pattern: str) -> list[str]:
    """The Key Vault data actions a data-action pattern covers (empty: it names none)."""
    return [a for a in KEYVAULT_DATA_ACTIONS if matches(pattern, a)]
