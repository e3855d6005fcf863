"""What the webhook changes in a pod, as JSON Patch operations (RFC 6902).

Behaviour and names follow Azure/azure-workload-identity v1.5.1 (pkg/webhook/consts.go
and pkg/webhook/webhook.go, `podMutator.Handle` and its helpers); the functions here
name the upstream function they mirror. Only additions are made, each guarded by an
"already there?" check, so reviewing an already mutated pod yields no operation
(the API server re-invokes the webhook with `reinvocationPolicy: IfNeeded`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

# pkg/webhook/consts.go
USE_LABEL = "azure.workload.identity/use"
CLIENT_ID_ANNOTATION = "azure.workload.identity/client-id"
TENANT_ID_ANNOTATION = "azure.workload.identity/tenant-id"
TOKEN_EXPIRATION_ANNOTATION = "azure.workload.identity/service-account-token-expiration"
SKIP_CONTAINERS_ANNOTATION = "azure.workload.identity/skip-containers"
MIN_EXPIRATION, MAX_EXPIRATION, DEFAULT_EXPIRATION = 3600, 86400, 3600
TOKEN_PATH_NAME = "azure-identity-token"  # the volume's name and the projected file's path
TOKEN_MOUNT_PATH = "/var/run/secrets/azure/tokens"
TOKEN_FILE = f"{TOKEN_MOUNT_PATH}/{TOKEN_PATH_NAME}"
DEFAULT_AUDIENCE = "api://AzureADTokenExchange"
# What upstream's default cloud (AzurePublicCloud) puts in AZURE_AUTHORITY_HOST.
PUBLIC_CLOUD_AUTHORITY = "https://login.microsoftonline.com/"

_INT64 = re.compile(r"[+-]?[0-9]+")


class Denied(Exception):
    """The review is answered `allowed: false` with this message and code (upstream's `admission.Errored`)."""

    def __init__(self, message: str, code: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


@dataclass(frozen=True)
class WebhookConfig:
    tenant_id: str = ""
    authority_host: str = PUBLIC_CLOUD_AUTHORITY
    audience: str = DEFAULT_AUDIENCE


def _annotations(obj: dict[str, Any]) -> dict[str, Any]:
    meta = obj.get("metadata")
    ann = meta.get("annotations") if isinstance(meta, dict) else None
    return ann if isinstance(ann, dict) else {}


def _parse_int64(value: Any) -> int:
    """Go's strconv.ParseInt(value, 10, 64), with its error text."""
    text = value if isinstance(value, str) else str(value)
    if not _INT64.fullmatch(text):
        raise Denied(f'strconv.ParseInt: parsing "{text}": invalid syntax')
    n = int(text)
    if not -(2**63) <= n < 2**63:
        raise Denied(f'strconv.ParseInt: parsing "{text}": value out of range')
    return n


def token_expiration(pod: dict[str, Any], service_account: dict[str, Any]) -> int:
    """Upstream `getServiceAccountTokenExpiration`: the pod's annotation, else the ServiceAccount's, else 3600."""
    expiration = DEFAULT_EXPIRATION
    pod_value = _annotations(pod).get(TOKEN_EXPIRATION_ANNOTATION)
    sa_value = _annotations(service_account).get(TOKEN_EXPIRATION_ANNOTATION)
    if pod_value:
        expiration = _parse_int64(pod_value)
    elif sa_value:
        expiration = _parse_int64(sa_value)
    if not MIN_EXPIRATION <= expiration <= MAX_EXPIRATION:
        raise Denied(
            f"token expiration {expiration} not valid. Expected value to be between {MIN_EXPIRATION} and {MAX_EXPIRATION}"
        )
    return expiration


def skip_containers(pod: dict[str, Any]) -> set[str]:
    """Upstream `getSkipContainers`: names split on ';' and trimmed."""
    value = _annotations(pod).get(SKIP_CONTAINERS_ANNOTATION)
    if not value or not isinstance(value, str):
        return set()
    return {name.strip() for name in value.split(";")}


def tenant_id(service_account: dict[str, Any], config: WebhookConfig) -> str:
    """Upstream `getTenantID`: the annotation when present (even empty), else the configured tenant."""
    ann = _annotations(service_account)
    return str(ann[TENANT_ID_ANNOTATION]) if TENANT_ID_ANNOTATION in ann else config.tenant_id


def _desired_env(client_id: str, tenant: str, authority_host: str) -> list[dict[str, str]]:
    return [
        {"name": "AZURE_CLIENT_ID", "value": client_id},
        {"name": "AZURE_TENANT_ID", "value": tenant},
        {"name": "AZURE_FEDERATED_TOKEN_FILE", "value": TOKEN_FILE},
        {"name": "AZURE_AUTHORITY_HOST", "value": authority_host},
    ]


def _append(ops: list[dict[str, Any]], obj: dict[str, Any], path: str, field: str, items: list[Any]) -> None:
    """Add items to obj[field]: one `add` of the whole list when the field is absent or null, else `add .../-` each."""
    if not items:
        return
    if not isinstance(obj.get(field), list):
        ops.append({"op": "add", "path": f"{path}/{field}", "value": items})
    else:
        ops.extend({"op": "add", "path": f"{path}/{field}/-", "value": item} for item in items)


def _container_ops(
    ops: list[dict[str, Any]], containers: Any, path: str, env: list[dict[str, str]], skip: set[str]
) -> None:
    """Upstream `mutateContainers` (with `addEnvironmentVariables` and `addProjectedTokenVolumeMount`)."""
    if not isinstance(containers, list):
        return
    for i, container in enumerate(containers):
        if not isinstance(container, dict) or container.get("name") in skip:
            continue
        here = f"{path}/{i}"
        present = {e.get("name") for e in container.get("env") or [] if isinstance(e, dict)}
        _append(ops, container, here, "env", [e for e in env if e["name"] not in present and e["value"]])
        mounts = {m.get("name") for m in container.get("volumeMounts") or [] if isinstance(m, dict)}
        if TOKEN_PATH_NAME not in mounts:
            mount = {"name": TOKEN_PATH_NAME, "mountPath": TOKEN_MOUNT_PATH, "readOnly": True}
            _append(ops, container, here, "volumeMounts", [mount])


def _has_token_volume(volumes: Any) -> bool:
    """Upstream `addProjectedServiceAccountTokenVolume`'s check: a projected token with path azure-identity-token."""
    for volume in volumes if isinstance(volumes, list) else []:
        projected = volume.get("projected") if isinstance(volume, dict) else None
        for source in (projected or {}).get("sources") or []:
            token = source.get("serviceAccountToken") if isinstance(source, dict) else None
            if isinstance(token, dict) and token.get("path") == TOKEN_PATH_NAME:
                return True
    return False


def is_labelled(pod: dict[str, Any]) -> bool:
    """The configuration's objectSelector (`azure.workload.identity/use: "true"`), checked again here.

    Upstream's handler relies on the selector alone; checking it here as well means a
    webhook configuration registered without the selector still leaves other pods alone.
    """
    meta = pod.get("metadata")
    labels = meta.get("labels") if isinstance(meta, dict) else None
    return isinstance(labels, dict) and labels.get(USE_LABEL) == "true"


def service_account_name(pod: dict[str, Any]) -> str:
    """The pod's ServiceAccount; a pod that names none gets `default` (upstream `Handle`)."""
    spec = pod.get("spec")
    name = spec.get("serviceAccountName") if isinstance(spec, dict) else None
    return name if isinstance(name, str) and name else "default"


def patch_for(pod: dict[str, Any], service_account: dict[str, Any], config: WebhookConfig) -> list[dict[str, Any]]:
    """The JSON Patch that makes `pod` what upstream's `podMutator.Handle` makes of it; [] when nothing is missing.

    Raises Denied for a token expiration that is not a number or outside 3600-86400.
    """
    spec = pod.get("spec")
    if not isinstance(spec, dict):
        raise Denied("the pod has no spec")
    expiration = token_expiration(pod, service_account)
    client_id = str(_annotations(service_account).get(CLIENT_ID_ANNOTATION, ""))
    env = _desired_env(client_id, tenant_id(service_account, config), config.authority_host)
    skip = skip_containers(pod)
    ops: list[dict[str, Any]] = []
    _container_ops(ops, spec.get("initContainers"), "/spec/initContainers", env, skip)
    _container_ops(ops, spec.get("containers"), "/spec/containers", env, skip)
    if not _has_token_volume(spec.get("volumes")):
        volume = {
            "name": TOKEN_PATH_NAME,
            "projected": {
                "sources": [
                    {
                        "serviceAccountToken": {
                            "path": TOKEN_PATH_NAME,
                            "expirationSeconds": expiration,
                            "audience": config.audience,
                        }
                    }
                ]
            },
        }
        _append(ops, spec, "/spec", "volumes", [volume])
    return ops
