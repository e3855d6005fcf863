"""The managed-identity endpoint's rules, in App Service's 2019-08-01 protocol.

azure-identity's ManagedIdentityCredential (through MSAL) uses this protocol when
IDENTITY_ENDPOINT and IDENTITY_HEADER are set: `GET {IDENTITY_ENDPOINT}?api-version=2019-08-01
&resource=...[&client_id=...|&object_id=...|&mi_res_id=...]` with the header
`X-IDENTITY-HEADER: {IDENTITY_HEADER}`. The header value is this instance's
secret (a 0600 file in the state dir): whoever can read it can obtain tokens for
every user-assigned managed identity of the instance, as any process on an Azure
VM can for the identities assigned to that VM.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Mapping
from pathlib import Path

from strongroom.identity.directory import Directory, Principal
from strongroom.util.files import write_private_file

HEADER_FILE = "identity-header"
HEADER_NAME = "x-identity-header"
API_VERSION = "2019-08-01"
PATH = "/msi/token"


class MsiError(Exception):
    """App Service's error shape: `{"statusCode": ..., "message": ...}`."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def ensure_header(state_dir: Path) -> str:
    path = state_dir / HEADER_FILE
    if not path.exists():
        write_private_file(path, secrets.token_urlsafe(32).encode() + b"\n")
    return path.read_text().strip()


def load_header(state_dir: Path) -> str | None:
    path = state_dir / HEADER_FILE
    return path.read_text().strip() if path.exists() else None


def check_header(expected: str | None, presented: str | None) -> None:
    if expected is None:
        raise MsiError(404, "The managed identity endpoint is not enabled on this instance.")
    if not presented or not hmac.compare_digest(presented.encode(), expected.encode()):
        raise MsiError(401, "The X-IDENTITY-HEADER header is missing or does not match this instance's IDENTITY_HEADER.")


def select_identity(directory: Directory, query: Mapping[str, str]) -> Principal:
    """The managed identity named by client_id, object_id (principal_id) or mi_res_id (msi_res_id)."""
    if query.get("api-version") != API_VERSION:
        raise MsiError(400, f"The api-version '{query.get('api-version', '')}' is not supported; use {API_VERSION}.")
    selectors = {k: v for k, v in query.items() if k in ("client_id", "object_id", "principal_id", "mi_res_id", "msi_res_id") and v}
    if len(selectors) > 1:
        raise MsiError(400, "Only one of client_id, object_id and mi_res_id may be given.")
    if not selectors:
        raise MsiError(
            400,
            "No system-assigned managed identity exists on this instance; select a user-assigned identity with "
            "client_id, object_id or mi_res_id.",
        )
    (kind, value), = selectors.items()
    if kind in ("mi_res_id", "msi_res_id"):
        found = directory.managed_identity_by_resource_id(value)
    else:
        found = directory.find(value)
        if found is not None and kind == "client_id" and found.client_id.lower() != value.lower():
            found = None
        if found is not None and kind in ("object_id", "principal_id") and found.object_id.lower() != value.lower():
            found = None
    if found is None or not found.is_managed_identity:
        raise MsiError(400, f"No user-assigned managed identity with {kind} '{value}' is available on this instance.")
    return found
