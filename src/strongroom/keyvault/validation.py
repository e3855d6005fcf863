"""Azure's input rules for vault objects, with the errors Azure gives."""

from __future__ import annotations

import re
from typing import Any

from strongroom.keyvault.errors import KeyVaultError, bad_parameter
from strongroom.util.armnames import resource_group_problem

OBJECT_NAME = re.compile(r"^[0-9a-zA-Z-]{1,127}\Z")
VERSION = re.compile(r"^[0-9a-fA-F]{32}\Z")
# ARM's rule for resource group names (identity/directory.py applies the same one to identities' groups).
VAULT_NAME = re.compile(r"^[a-zA-Z](?!.*--)[a-zA-Z0-9-]{1,22}[a-zA-Z0-9]\Z")

MAX_SECRET_VALUE_BYTES = 25 * 1024
MAX_CONTENT_TYPE = 255
MAX_TAGS = 15
MAX_TAG_NAME = 512
MAX_TAG_VALUE = 512


def check_object_name(name: str, kind: str = "secret") -> str:
    if not OBJECT_NAME.match(name):
        raise bad_parameter(
            f"The request URI contains an invalid name: {name}"
        )
    return name


def check_vault_name(name: str) -> str:
    if not VAULT_NAME.match(name):
        raise KeyVaultError(
            400,
            "VaultNameNotValid",
            f"The vault name '{name}' is invalid. A vault's name must be between 3-24 alphanumeric characters. "
            "The name must begin with a letter, end with a letter or digit, and not contain consecutive hyphens.",
        )
    return name


def check_resource_group(name: str) -> str:
    problem = resource_group_problem(name)
    if problem is not None:
        raise KeyVaultError(400, "InvalidResourceGroupName", problem)
    return name


def check_tags(tags: Any) -> dict[str, str] | None:
    if tags is None:
        return None
    if not isinstance(tags, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in tags.items()):
        raise bad_parameter("Tags must be a map of string names to string values.")
    if len(tags) > MAX_TAGS:
        raise bad_parameter(f"The number of tags ({len(tags)}) exceeds the maximum of {MAX_TAGS}.")
    for k, v in tags.items():
        if not k or len(k) > MAX_TAG_NAME:
            raise bad_parameter(f"Tag names must be 1-{MAX_TAG_NAME} characters.")
        if len(v) > MAX_TAG_VALUE:
            # Never the tag's name: the message reaches the audit log.
            raise bad_parameter(f"A tag value exceeds {MAX_TAG_VALUE} characters.")
    return dict(tags)


def check_content_type(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise bad_parameter("contentType must be a string.")
    if len(value) > MAX_CONTENT_TYPE:
        raise bad_parameter(f"contentType exceeds the maximum length of {MAX_CONTENT_TYPE} characters.")
    return value


def check_secret_value(value: Any) -> str:
    if not isinstance(value, str):
        raise bad_parameter("The 'value' property is required and must be a string.")
    if len(value.encode("utf-8")) > MAX_SECRET_VALUE_BYTES:
        raise KeyVaultError(
            400,
            "BadParameter",
            f"Secret is beyond the maximum permitted length of {MAX_SECRET_VALUE_BYTES} characters.",
            "SecretTooLarge",
        )
    return value


def check_unixtime(value: Any, field: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise bad_parameter(f"Attribute '{field}' must be a Unix time in seconds.")
    if not 0 <= value < 253402300800:  # year 10000
        raise bad_parameter(f"Attribute '{field}' is out of range.")
    return int(value)


def check_bool(value: Any, field: str) -> bool | None:
    if value is None:
        return None
    if not isinstance(value, bool):
        raise bad_parameter(f"Attribute '{field}' must be true or false.")
    return value
