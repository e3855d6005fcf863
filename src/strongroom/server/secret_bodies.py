"""Secret request bodies (secrets.json) parsed into the domain's typed inputs, and the backup blob of every restore.

The JSON has been decoded strictly by `http.json_body`; here each body's shape is
checked with Key Vault's error codes and messages (400 BadParameter), so
`keyvault.secrets` never reads raw JSON.
"""

from __future__ import annotations

from typing import Any

from strongroom.keyvault.secrets import SecretInput, SecretUpdate
from strongroom.keyvault.validation import (
    check_bool,
    check_content_type,
    check_secret_value,
    check_tags,
    check_unixtime,
)
from strongroom.server.bodies import InvalidBody


def _attributes(body: dict[str, Any]) -> dict[str, Any]:
    attrs = body.get("attributes") or {}
    if not isinstance(attrs, dict):
        raise InvalidBody("'attributes' must be an object.")
    return attrs


def secret_set(body: Any) -> SecretInput:
    if not isinstance(body, dict):
        raise InvalidBody("The request body must be a JSON object with a 'value' property.")
    value = check_secret_value(body.get("value"))
    attrs = _attributes(body)
    return SecretInput(
        value=value,
        content_type=check_content_type(body.get("contentType")),
        tags=check_tags(body.get("tags")),
        enabled=check_bool(attrs.get("enabled"), "enabled"),
        nbf=check_unixtime(attrs.get("nbf"), "nbf"),
        exp=check_unixtime(attrs.get("exp"), "exp"),
    )


def secret_update(body: Any) -> SecretUpdate:
    if not isinstance(body, dict):
        raise InvalidBody("The request body must be a JSON object.")
    attrs = _attributes(body)
    return SecretUpdate(
        content_type=check_content_type(body["contentType"]) if "contentType" in body else None,
        set_content_type="contentType" in body,
        tags=check_tags(body["tags"]) if "tags" in body else None,
        set_tags="tags" in body,
        enabled=check_bool(attrs.get("enabled"), "enabled"),
        nbf=check_unixtime(attrs["nbf"], "nbf") if "nbf" in attrs else None,
        set_nbf="nbf" in attrs,
        exp=check_unixtime(attrs["exp"], "exp") if "exp" in attrs else None,
        set_exp="exp" in attrs,
    )


def backup_blob(body: Any) -> str:
    """RestoreSecret's, RestoreKey's and RestoreCertificate's body: the backup blob."""
    if not isinstance(body, dict) or not isinstance(body.get("value"), str):
        raise InvalidBody("The request body must be a JSON object with a 'value' property holding the backup.")
    return body["value"]
