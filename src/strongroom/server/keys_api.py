"""The Key Vault keys data plane over HTTP (keys.json paths).

Same shape as vault_api's secrets handlers: each route declares its guard (audit
operation, vault bearer, throttle class), then `begin()` (api-version, authorization
with the key's data action), then `keyvault.keys`.
Writes and private-key operations run in a worker thread (fsync, RSA math).
Operations a vault here does not offer (secure key release, attestation,
secure wrap/unwrap) answer 400 BadParameter after authorization, never a 500.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from strongroom.authz.actions import KEY_ACTIONS, KEY_POLICY_PERMISSIONS
from strongroom.errors import BadRequest
from strongroom.keyvault import key_wire as wire
from strongroom.keyvault.jwk import b64u, b64u_decode
from strongroom.server.crypto_pool import run_heavy
from strongroom.server.guards import VAULT_CREATE, route, runtime, vault
from strongroom.server.http import JSON, int_param, json_body
from strongroom.server.vault_api import VaultCall, _page_response
from strongroom.server.vault_api import begin as vault_begin

begin = partial(vault_begin, kind="keys", actions=KEY_ACTIONS, permissions=KEY_POLICY_PERMISSIONS)


def _name(request: Request) -> str:
    return request.path_params["name"]


def _version(request: Request) -> str:
    return request.path_params.get("version", "")


async def create_key(request: Request) -> Response:
    name = _name(request)
    call = begin(request, "KeyCreate", name)
    body = await json_body(request)
    kv = await run_heavy(runtime(request).keys.create, call.vault, name, body)
    return JSON(wire.key_bundle(kv, call.vault, call.base_url))


async def import_key(request: Request) -> Response:
    name = _name(request)
    call = begin(request, "KeyImport", name)
    body = await json_body(request)
    kv = await run_heavy(runtime(request).keys.import_key, call.vault, name, body)
    return JSON(wire.key_bundle(kv, call.vault, call.base_url))


async def get_key(request: Request) -> Response:
    name = _name(request)
    call = begin(request, "KeyGet", name)
    kv = runtime(request).keys.get(call.vault, name, _version(request))
    return JSON(wire.key_bundle(kv, call.vault, call.base_url))


async def update_key(request: Request) -> Response:
    name = _name(request)
    call = begin(request, "KeyUpdate", name)
    body = await json_body(request)
    kv = await run_in_threadpool(runtime(request).keys.update, call.vault, name, _version(request), body)
    return JSON(wire.key_bundle(kv, call.vault, call.base_url))


async def delete_key(request: Request) -> Response:
    name = _name(request)
    call = begin(request, "KeyDelete", name)
    head, kv = await run_in_threadpool(runtime(request).keys.delete, call.vault, name)
    return JSON(wire.deleted_key_bundle(head, kv, call.vault, call.base_url))


async def list_keys(request: Request) -> Response:
    call = begin(request, "KeyList")
    maxresults = int_param(request, "maxresults")
    page = runtime(request).keys.list(call.vault, maxresults, request.query_params.get("$skiptoken"))
    items = [wire.key_item(kv, call.vault, call.base_url) for _, kv in page.items]
    return _page_response(call, "/keys", page, items, maxresults)


async def list_versions(request: Request) -> Response:
    name = _name(request)
    call = begin(request, "KeyListVersions", name)
    maxresults = int_param(request, "maxresults")
    page = runtime(request).keys.list_versions(call.vault, name, maxresults, request.query_params.get("$skiptoken"))
    items = [wire.key_item(kv, call.vault, call.base_url, versioned=True) for _, kv in page.items]
    return _page_response(call, f"/keys/{name}/versions", page, items, maxresults)


async def list_deleted(request: Request) -> Response:
    call = begin(request, "KeyListDeleted")
    maxresults = int_param(request, "maxresults")
    page = runtime(request).keys.list_deleted(call.vault, maxresults, request.query_params.get("$skiptoken"))
    items = [wire.deleted_key_item(head, kv, call.vault, call.base_url) for head, kv in page.items]
    return _page_response(call, "/deletedkeys", page, items, maxresults)


async def get_deleted(request: Request) -> Response:
    name = _name(request)
    call = begin(request, "KeyGetDeleted", name)
    head, kv = runtime(request).keys.get_deleted(call.vault, name)
    return JSON(wire.deleted_key_bundle(head, kv, call.vault, call.base_url))


async def recover_deleted(request: Request) -> Response:
    name = _name(request)
    call = begin(request, "KeyRecover", name)
    kv = await run_in_threadpool(runtime(request).keys.recover, call.vault, name)
    return JSON(wire.key_bundle(kv, call.vault, call.base_url))


async def purge_deleted(request: Request) -> Response:
    name = _name(request)
    call = begin(request, "KeyPurge", name)
    await run_in_threadpool(runtime(request).keys.purge, call.vault, name)
    return Response(status_code=204)


async def backup_key(request: Request) -> Response:
    name = _name(request)
    call = begin(request, "KeyBackup", name)
    return JSON({"value": runtime(request).keys.backup(call.vault, name)})


async def restore_key(request: Request) -> Response:
    call = begin(request, "KeyRestore")
    body = await json_body(request)
    kv = await run_in_threadpool(runtime(request).keys.restore, call.vault, body, call.base_url)
    return JSON(wire.key_bundle(kv, call.vault, call.base_url))


async def rotate_key(request: Request) -> Response:
    name = _name(request)
    call = begin(request, "KeyRotate", name)
    kv = await run_heavy(runtime(request).keys.rotate, call.vault, name)
    return JSON(wire.key_bundle(kv, call.vault, call.base_url))


async def get_rotation_policy(request: Request) -> Response:
    name = _name(request)
    call = begin(request, "KeyRotationPolicyGet", name)
    policy = runtime(request).keys.get_policy(call.vault, name)
    head = runtime(request).keys.objects.live_head(call.vault, name)
    return JSON(wire.rotation_policy(policy, head.name, call.base_url))


async def set_rotation_policy(request: Request) -> Response:
    name = _name(request)
    call = begin(request, "KeyRotationPolicySet", name)
    body = await json_body(request)
    policy = await run_in_threadpool(runtime(request).keys.set_policy, call.vault, name, body)
    head = runtime(request).keys.objects.live_head(call.vault, name)
    return JSON(wire.rotation_policy(policy, head.name, call.base_url))


async def random_bytes(request: Request) -> Response:
    begin(request, "KeyGetRandomBytes")
    body = await json_body(request)
    return JSON({"value": b64u(runtime(request).keys.random_bytes(body))})


# -- cryptographic operations ------------------------------------------------------


def _optional_field(body: Any, name: str) -> bytes | None:
    if not isinstance(body, dict):
        raise BadRequest("BadParameter", "The request body must be a JSON object.")
    value = body.get(name)
    return None if value is None else b64u_decode(value, name)


def _field(body: Any, name: str) -> bytes:
    value = _optional_field(body, name)
    if value is None:
        raise BadRequest("BadParameter", f"The '{name}' property is required.")
    return value


def _result(kid: str, value: bytes, iv: bytes | None = None, tag: bytes | None = None, aad: bytes | None = None) -> JSON:
    out: dict[str, Any] = {"kid": kid, "value": b64u(value)}
    if iv is not None:
        out["iv"] = b64u(iv)
    if tag is not None:
        out["tag"] = b64u(tag)
    if aad is not None:
        out["aad"] = b64u(aad)
    return JSON(out)


async def _crypto(request: Request, operation: str) -> tuple[VaultCall, Any, str, str]:
    name = _name(request)
    call = begin(request, operation, name)
    body = await json_body(request)
    if not isinstance(body, dict):
        raise BadRequest("BadParameter", "The request body must be a JSON object.")
    return call, body, name, _version(request)


async def encrypt(request: Request) -> Response:
    call, body, name, version = await _crypto(request, "KeyEncrypt")
    plaintext, iv, aad = _field(body, "value"), _optional_field(body, "iv"), _optional_field(body, "aad")
    kv, res = await run_in_threadpool(runtime(request).keys.encrypt, call.vault, name, version, body.get("alg"), plaintext, iv, aad)
    return _result(wire.kid(kv, call.base_url), res.value, res.iv, res.tag, res.aad)


async def decrypt(request: Request) -> Response:
    call, body, name, version = await _crypto(request, "KeyDecrypt")
    ciphertext = _field(body, "value")
    iv, aad, tag = _optional_field(body, "iv"), _optional_field(body, "aad"), _optional_field(body, "tag")
    kv, res = await run_in_threadpool(
        runtime(request).keys.decrypt, call.vault, name, version, body.get("alg"), ciphertext, iv, aad, tag
    )
    return _result(wire.kid(kv, call.base_url), res.value)


async def sign(request: Request) -> Response:
    call, body, name, version = await _crypto(request, "KeySign")
    kv, signature = await run_in_threadpool(
        runtime(request).keys.sign, call.vault, name, version, body.get("alg"), _field(body, "value")
    )
    return _result(wire.kid(kv, call.base_url), signature)


async def verify(request: Request) -> Response:
    call, body, name, version = await _crypto(request, "KeyVerify")
    digest, signature = _field(body, "digest"), _field(body, "value")
    _, ok = await run_in_threadpool(runtime(request).keys.verify, call.vault, name, version, body.get("alg"), digest, signature)
    return JSON({"value": ok})


async def wrap_key(request: Request) -> Response:
    call, body, name, version = await _crypto(request, "KeyWrap")
    kv, wrapped = await run_in_threadpool(
        runtime(request).keys.wrap, call.vault, name, version, body.get("alg"), _field(body, "value")
    )
    return _result(wire.kid(kv, call.base_url), wrapped)


async def unwrap_key(request: Request) -> Response:
    call, body, name, version = await _crypto(request, "KeyUnwrap")
    kv, key_bytes = await run_in_threadpool(
        runtime(request).keys.unwrap, call.vault, name, version, body.get("alg"), _field(body, "value")
    )
    return _result(wire.kid(kv, call.base_url), key_bytes)


def _not_offered(operation: str, what: str):
    async def handler(request: Request) -> Response:
        name = _name(request)
        call = begin(request, operation, name)
        runtime(request).keys.get(call.vault, name, _version(request))  # an unknown key is still 404
        raise BadRequest(
            "BadParameter",
            f"{what} is not supported by this vault: it needs Managed HSM or a Premium vault with attested "
            "confidential computing, which this server does not provide.",
        )

    return handler


release = _not_offered("KeyRelease", "Secure key release")
attestation = _not_offered("KeyGetAttestation", "Key attestation")
secure_wrap = _not_offered("KeySecureWrap", "Secure key wrap")
secure_unwrap = _not_offered("KeySecureUnwrap", "Secure key unwrap")

_OPERATIONS = {  # path segment: (handler, audit operation)
    "encrypt": (encrypt, "KeyEncrypt"), "decrypt": (decrypt, "KeyDecrypt"), "sign": (sign, "KeySign"),
    "verify": (verify, "KeyVerify"), "wrapkey": (wrap_key, "KeyWrap"), "unwrapkey": (unwrap_key, "KeyUnwrap"),
    "release": (release, "KeyRelease"), "securewrapkey": (secure_wrap, "KeySecureWrap"),
    "secureunwrapkey": (secure_unwrap, "KeySecureUnwrap"),
}

routes = [
    route("/keys", list_keys, ["GET"], vault("KeyList")),
    route("/keys/restore", restore_key, ["POST"], vault("KeyRestore")),
    route("/keys/{name}/create", create_key, ["POST"], vault("KeyCreate", VAULT_CREATE)),
    route("/keys/{name}", import_key, ["PUT"], vault("KeyImport", VAULT_CREATE)),
    route("/keys/{name}", delete_key, ["DELETE"], vault("KeyDelete")),
    route("/keys/{name}", get_key, ["GET"], vault("KeyGet")),
    route("/keys/{name}/", get_key, ["GET"], vault("KeyGet")),
    route("/keys/{name}/", update_key, ["PATCH"], vault("KeyUpdate")),
    route("/keys/{name}/versions", list_versions, ["GET"], vault("KeyListVersions")),
    route("/keys/{name}/backup", backup_key, ["POST"], vault("KeyBackup")),
    route("/keys/{name}/rotate", rotate_key, ["POST"], vault("KeyRotate")),
    route("/keys/{name}/rotationpolicy", get_rotation_policy, ["GET"], vault("KeyRotationPolicyGet")),
    route("/keys/{name}/rotationpolicy", set_rotation_policy, ["PUT"], vault("KeyRotationPolicySet")),
    route("/keys/{name}/{version}", get_key, ["GET"], vault("KeyGet")),
    route("/keys/{name}/{version}", update_key, ["PATCH"], vault("KeyUpdate")),
    route("/keys/{name}/{version}/attestation", attestation, ["GET"], vault("KeyGetAttestation")),
    route("/keys/{name}//attestation", attestation, ["GET"], vault("KeyGetAttestation")),
    *[route(f"/keys/{{name}}/{{version}}/{op}", h, ["POST"], vault(o)) for op, (h, o) in _OPERATIONS.items()],
    # A CryptographyClient built from an unversioned id (and denied keys/get) posts to /keys/name//op.
    *[route(f"/keys/{{name}}//{op}", h, ["POST"], vault(o)) for op, (h, o) in _OPERATIONS.items()],
    route("/deletedkeys", list_deleted, ["GET"], vault("KeyListDeleted")),
    route("/deletedkeys/{name}", get_deleted, ["GET"], vault("KeyGetDeleted")),
    route("/deletedkeys/{name}", purge_deleted, ["DELETE"], vault("KeyPurge")),
    route("/deletedkeys/{name}/recover", recover_deleted, ["POST"], vault("KeyRecover")),
    route("/rng", random_bytes, ["POST"], vault("KeyGetRandomBytes")),
]
