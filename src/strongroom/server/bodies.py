"""Request bodies: the one place JSON is decoded, strictly, and typed fields are read.

Every JSON route reads its body through `decode_json` (via `http.json_body`), so one
reader decides what a body may be:
- UTF-8, strictly; a string (or member name) holding a lone surrogate (`"\\ud800"`)
  is refused: it cannot be written back out, to the answer, the audit log or storage;
- nesting at most `max_depth` deep (Key Vault's deepest bodies, certificate policies
  and role definitions, nest about five levels);
- no NaN or Infinity (not JSON), no number too large for a float, integers of at
  most 4,300 digits (Python's own limit).

A body or field that breaks a rule raises `InvalidBody`, a 400 that `plane_error`
renders in the shape of the plane the request reached (Key Vault `BadParameter`,
ARM `InvalidRequestContent`, Graph `BadRequest`), so callers never pick a code.
The typed readers (`boolean`, `integer`, ...) are strict: a boolean must be a JSON
boolean (the string "false" is not false), an integer is never a boolean or a float.

Body size: `http.json_body` (and `http.form_fields` for the token endpoint) is the one
place a request body is read for parsing, so a per-plane size cap belongs there (or
below it, on `receive`), before `decode_json` sees the bytes; `max_depth` is the
nesting bound that pairs with it.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from typing import Any

from strongroom.keyvault.errors import KeyVaultError
from strongroom.keyvault.validation import check_tags

MAX_DEPTH = 64
# High surrogates as JSON escapes: only then can a decoded string hold a surrogate (strict UTF-8 refuses the raw bytes).
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89abcdefABCDEF]")
_SURROGATE = re.compile("[\ud800-\udfff]")
_TOKENS = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]')


class InvalidBody(KeyVaultError):
    """A request body (or one of its fields) that is not what the route accepts: always a 400."""

    def __init__(self, message: str) -> None:
        super().__init__(400, "BadParameter", message)


def _constant(name: str) -> Any:
    raise InvalidBody(f"The request body is not valid JSON: '{name}' is not a JSON value.")


def _float(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise InvalidBody("The request body is not valid JSON: a number is out of range.")
    return value


def decode_json(raw: bytes, *, max_depth: int = MAX_DEPTH) -> Any:
    """The body as JSON, or InvalidBody; never any other exception, whatever the bytes."""
    if not raw:
        raise InvalidBody("The request body is required.")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidBody("The request body is not valid UTF-8.") from None
    if raw.count(b"[") + raw.count(b"{") > max_depth and _bracket_depth(text) > max_depth:
        raise InvalidBody(f"The request body nests deeper than {max_depth} levels.")
    try:
        doc = json.loads(text, parse_constant=_constant, parse_float=_float)
    except InvalidBody:
        raise
    except (ValueError, RecursionError):  # ValueError: bad syntax, or an integer past Python's digit limit
        raise InvalidBody("The request body is not valid JSON.") from None
    if _SURROGATE_ESCAPE.search(raw) and _holds_surrogate(doc):
        raise InvalidBody("The request body holds a string that is not valid Unicode (a lone surrogate).")
    return doc


def _bracket_depth(text: str) -> int:
    """The deepest nesting of [ and { outside strings, without recursion (run only when many brackets appear)."""
    depth = deepest = 0
    for token in _TOKENS.findall(text):  # strings are matched whole, in C, so their brackets do not count
        if token in "[{":
            depth += 1
            if depth > deepest:
                deepest = depth
        elif token in "]}":
            depth -= 1
    return deepest


def _holds_surrogate(doc: Any) -> bool:
    stack = [doc]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if _SURROGATE.search(item):
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


# -- the plane's shape -------------------------------------------------------------------------

def plane_error(scope: Mapping[str, Any], exc: KeyVaultError) -> KeyVaultError:
    """`exc` with the error code of the plane `scope` reached (the status and message stay)."""
    path: str = scope.get("path", "")
    if "strongroom.vault" in scope or path.startswith("/strongroom/"):
        code = "BadParameter"  # Key Vault's data plane, and our own admin endpoints that speak its shape
    elif path.startswith("/v1.0/"):
        code = "BadRequest"  # Microsoft Graph
    else:
        code = "InvalidRequestContent"  # Azure Resource Manager
    return KeyVaultError(exc.status, code, exc.message)


# -- typed fields --------------------------------------------------------------------------------

def obj(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise InvalidBody(f"'{where}' must be a JSON object.")
    return value


def optional_obj(doc: dict[str, Any], key: str, where: str = "") -> dict[str, Any] | None:
    value = doc.get(key)
    return None if value is None else obj(value, where + key)


def boolean(doc: dict[str, Any], key: str, where: str = "") -> bool | None:
    value = doc.get(key)
    if value is not None and not isinstance(value, bool):
        raise InvalidBody(f"'{where}{key}' must be a JSON boolean (true or false), not {_kind(value)}.")
    return value


def integer(doc: dict[str, Any], key: str, where: str = "") -> int | None:
    value = doc.get(key)
    if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
        raise InvalidBody(f"'{where}{key}' must be a whole number, not {_kind(value)}.")
    return value


def string(doc: dict[str, Any], key: str, where: str = "") -> str | None:
    value = doc.get(key)
    if value is not None and not isinstance(value, str):
        raise InvalidBody(f"'{where}{key}' must be a string, not {_kind(value)}.")
    return value


def string_map(doc: dict[str, Any], key: str, where: str = "") -> dict[str, str] | None:
    value = doc.get(key)
    if value is None:
        return None
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise InvalidBody(f"'{where}{key}' must be an object of string values.")
    return value


def array(doc: dict[str, Any], key: str, where: str = "") -> list[Any] | None:
    value = doc.get(key)
    if value is not None and not isinstance(value, list):
        raise InvalidBody(f"'{where}{key}' must be an array, not {_kind(value)}.")
    return value


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    return {str: "a string", int: "a number", float: "a number", list: "an array", dict: "an object"}.get(
        type(value), "null"
    )


# -- bodies of ARM routes ------------------------------------------------------------------------

def vault_put(body: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """A vault PUT's (body, properties), every field Strongroom reads of the type ARM documents."""
    body = obj(body, "body")
    props = optional_obj(body, "properties") or {}
    string(body, "location")
    tags = string_map(body, "tags")
    if tags is not None:
        try:
            check_tags(tags)
        except KeyVaultError as exc:
            raise InvalidBody(exc.message) from None
    string(props, "createMode", "properties.")
    string(props, "tenantId", "properties.")
    optional_obj(props, "sku", "properties.")
    for flag in ("enablePurgeProtection", "enableRbacAuthorization", "enableSoftDelete", "enabledForDeployment",
                 "enabledForDiskEncryption", "enabledForTemplateDeployment"):
        boolean(props, flag, "properties.")
    integer(props, "softDeleteRetentionInDays", "properties.")
    array(props, "accessPolicies", "properties.")
    return body, props
