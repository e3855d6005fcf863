"""The Mount request's `attributes`, built exactly as the Secrets Store CSI Driver v1.6 builds them.

nodeserver.go: start from the SecretProviderClass's `spec.parameters`, copy in
kubelet's volume_context (which wins on equal keys): the pod info keys that
`podInfoOnMount: true` adds, `secretProviderClass` and any other volume
attribute, then the service-account tokens JSON that kubelet minted for the
CSIDriver's `tokenRequests`: `{"<audience>": {"token", "expirationTimestamp"}}`.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass

from strongroom.agent.tokens import WORKLOAD_IDENTITY_AUDIENCE, ServiceAccountToken
from strongroom.csi import spc as spc_mod
from strongroom.csi.credentials import unverified_claims
from strongroom.csi.spc import SecretProviderClass


@dataclass(frozen=True)
class Pod:
    name: str
    namespace: str
    service_account: str
    uid: str = ""


def pod_uid(token: ServiceAccountToken | None, pod: Pod) -> str:
    """The uid the token is bound to (as kubelet's pod has one), else one derived from the pod's name."""
    if token is not None:
        bound = (unverified_claims(token.token).get("kubernetes.io") or {}).get("pod") or {}
        if isinstance(bound, dict) and isinstance(bound.get("uid"), str) and bound["uid"]:
            return bound["uid"]
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"strongroom-agent/namespaces/{pod.namespace}/pods/{pod.name}"))


def volume_context(spc: SecretProviderClass, pod: Pod, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """What kubelet passes for an inline `secrets-store.csi.k8s.io` volume with podInfoOnMount."""
    ctx = {"secretProviderClass": spc.name, **(extra or {})}
    ctx.update(
        {
            spc_mod.POD_NAME: pod.name,
            spc_mod.POD_NAMESPACE: pod.namespace,
            spc_mod.POD_UID: pod.uid,
            spc_mod.SERVICE_ACCOUNT_NAME: pod.service_account,
            spc_mod.EPHEMERAL: "true",
        }
    )
    return ctx


def tokens_json(tokens: Mapping[str, ServiceAccountToken]) -> str:
    return json.dumps(
        {aud: {"token": t.token, "expirationTimestamp": t.expiration_timestamp} for aud, t in tokens.items()},
        separators=(",", ":"),
    )


def driver_attributes(
    spc: SecretProviderClass,
    pod: Pod,
    token: ServiceAccountToken | None,
    volume_attributes: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """SPC parameters, then volume_context over them, then the tokens (audience api://AzureADTokenExchange)."""
    attributes = dict(spc.parameters)
    attributes.update(volume_context(spc, pod, volume_attributes))
    if token is not None:
        attributes[spc_mod.SERVICE_ACCOUNT_TOKENS] = tokens_json({WORKLOAD_IDENTITY_AUDIENCE: token})
    return attributes
