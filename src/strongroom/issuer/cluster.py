"""The local cluster: service accounts, their projected tokens, and the OIDC documents Kubernetes serves.

Kubernetes (pkg/serviceaccount) publishes `{issuer}/.well-known/openid-configuration`
with exactly issuer, jwks_uri, response_types_supported ["id_token"],
subject_types_supported ["public"] and id_token_signing_alg_values_supported,
and the keys at `{issuer}/openid/v1/jwks`. Its projected tokens carry iss, sub
(`system:serviceaccount:<ns>:<name>`), aud (a list), iat, nbf (= iat), exp,
jti and the private `kubernetes.io` claim. This module does the same, with its
own RS256 key (separate from the Entra-style key), stored behind the barrier.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import asdict, dataclass, field
from typing import Any

import jwt

from strongroom.barrier import SealedStore, records
from strongroom.errors import ServiceError
from strongroom.identity.tokens import SigningKeys
from strongroom.util.clock import now

LOCAL = "local"
MIN_DURATION = 600
MAX_DURATION = 86400
DEFAULT_DURATION = 3600
_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_DNS_LABEL = re.compile(rf"^{_LABEL}\Z")
_DNS_SUBDOMAIN = re.compile(rf"^{_LABEL}(\.{_LABEL})*\Z")


class ClusterError(ServiceError):
    """A refused request, as a Kubernetes Status: HTTP status, `reason` (NotFound, AlreadyExists, Invalid ...), message.

    The reason is the tree's `code`; the server renders it as a Status object (strongroom.errors).
    """

    code: str

    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(status, reason, message)

    @property
    def reason(self) -> str:
        return self.code


@dataclass
class ServiceAccount:
    namespace: str
    name: str
    uid: str
    created: int
    annotations: dict[str, str] = field(default_factory=dict)

    @property
    def subject(self) -> str:
        return f"system:serviceaccount:{self.namespace}:{self.name}"


def _invalid(kind: str, name: str, path: str, value: Any, why: str) -> ClusterError:
    return ClusterError(422, "Invalid", f'{kind} "{name}" is invalid: {path}: Invalid value: {json.dumps(value)}: {why}')


def check_namespace(namespace: str) -> None:
    if len(namespace) > 63 or not _DNS_LABEL.match(namespace):
        raise _invalid(
            "Namespace", namespace, "metadata.name", namespace,
            "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start "
            "and end with an alphanumeric character (at most 63 characters)",
        )


def check_name(kind: str, name: str) -> None:
    if len(name) > 253 or not _DNS_SUBDOMAIN.match(name):
        raise _invalid(
            kind, name, "metadata.name", name,
            "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must "
            "start and end with an alphanumeric character (at most 253 characters)",
        )


class Cluster:
    """One cluster's issuer and service accounts."""

    def __init__(self, store: SealedStore, name: str, issuer_url: str) -> None:
        self.store = store
        self.name = name
        self.issuer_url = issuer_url
        self._prefix = f"issuer/clusters/{name}/"
        self.keys = SigningKeys(store, record_key=self._prefix + "signing-keys")

    def ensure(self) -> None:
        self.keys.ensure()

    # -- OIDC documents --------------------------------------------------------

    @property
    def jwks_uri(self) -> str:
        return f"{self.issuer_url}/openid/v1/jwks"

    def discovery(self) -> dict[str, Any]:
        algs = sorted({k["alg"] for k in self.keys.jwks()["keys"]})
        return {
            "issuer": self.issuer_url,
            "jwks_uri": self.jwks_uri,
            "response_types_supported": ["id_token"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": algs,
        }

    def jwks(self) -> dict[str, Any]:
        return self.keys.jwks()

    # -- service accounts ------------------------------------------------------

    def _sa_key(self, namespace: str, name: str) -> str:
        return f"{self._prefix}serviceaccounts/{namespace}/{name}"

    def service_account(self, namespace: str, name: str) -> ServiceAccount | None:
        if "/" in namespace or "/" in name:
            return None
        rec = records.load(self.store, self._sa_key(namespace, name))
        return None if rec is None else ServiceAccount(**rec)

    def get_service_account(self, namespace: str, name: str) -> ServiceAccount:
        sa = self.service_account(namespace, name)
        if sa is None:
            raise ClusterError(404, "NotFound", f'serviceaccounts "{name}" not found')
        return sa

    def service_accounts(self, namespace: str | None = None) -> list[ServiceAccount]:
        prefix = f"{self._prefix}serviceaccounts/" + (f"{namespace}/" if namespace else "")
        return [ServiceAccount(**records.json_load(raw)) for _, raw in self.store.scan(prefix)]

    def create_service_account(self, namespace: str, name: str, annotations: dict[str, str] | None = None) -> ServiceAccount:
        check_namespace(namespace)
        check_name("ServiceAccount", name)
        if self.service_account(namespace, name) is not None:
            raise ClusterError(409, "AlreadyExists", f'serviceaccounts "{name}" already exists')
        sa = ServiceAccount(namespace=namespace, name=name, uid=str(uuid.uuid4()), created=now(), annotations=annotations or {})
        self.store.write({self._sa_key(namespace, name): records.dump(asdict(sa))})
        return sa

    def delete_service_account(self, namespace: str, name: str) -> ServiceAccount:
        sa = self.get_service_account(namespace, name)
        self.store.write({self._sa_key(namespace, name): None})
        return sa

    # -- tokens ----------------------------------------------------------------

    def token(
        self,
        namespace: str,
        name: str,
        audiences: list[str],
        duration: int = DEFAULT_DURATION,
        pod_name: str | None = None,
        issued_at: int | None = None,
    ) -> tuple[str, int]:
        """A projected service-account token, as the kubelet would mount it; returns (token, exp)."""
        if not isinstance(duration, int) or isinstance(duration, bool) or duration < MIN_DURATION:
            raise _invalid("TokenRequest.authentication.k8s.io", name, "spec.expirationSeconds", duration,
                           "may not specify a duration less than 10 minutes")
        if duration > MAX_DURATION:
            raise _invalid("TokenRequest.authentication.k8s.io", name, "spec.expirationSeconds", duration,
                           "may not specify a duration longer than 24 hours")
        if not isinstance(audiences, list) or not audiences or not all(isinstance(a, str) and a for a in audiences):
            raise _invalid("TokenRequest.authentication.k8s.io", name, "spec.audiences", audiences,
                           "must contain at least one non-empty audience")
        sa = self.get_service_account(namespace, name)
        t = now() if issued_at is None else issued_at
        private: dict[str, Any] = {
            "namespace": sa.namespace,
            "serviceaccount": {"name": sa.name, "uid": sa.uid},
        }
        if pod_name:
            check_name("Pod", pod_name)
            pod_uid = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{self.issuer_url}/namespaces/{namespace}/pods/{pod_name}"))
            private["pod"] = {"name": pod_name, "uid": pod_uid}
        claims = {
            "aud": list(audiences),
            "exp": t + duration,
            "iat": t,
            "iss": self.issuer_url,
            "jti": str(uuid.uuid4()),
            "kubernetes.io": private,
            "nbf": t,
            "sub": sa.subject,
        }
        key = self.keys.current
        token = jwt.encode(claims, key.private, algorithm="RS256", headers={"kid": key.kid, "typ": None})
        return token, t + duration
