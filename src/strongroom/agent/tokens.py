"""Service-account tokens for the pod the agent stands in for.

Kubelet asks the API server's TokenRequest API for a token bound to the pod, for
each audience in the CSIDriver's `tokenRequests`, and hands them to the driver.
The agent does the same against the local cluster's TokenRequest API
(`POST /clusters/local/api/v1/namespaces/<ns>/serviceaccounts/<sa>/token`, the
API behind `strongroom cluster token`: the instance admin, or a principal with the
"Strongroom Node Agent" role): `ClusterTokens` in local_cluster.py. Or it reads a
token file it is given (`--token-file`, `FileTokens`), as a pod reads its
kubelet-projected token.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

import jwt

WORKLOAD_IDENTITY_AUDIENCE = "api://AzureADTokenExchange"


@dataclass(frozen=True)
class ServiceAccountToken:
    token: str = field(repr=False)
    expiration_timestamp: str  # RFC 3339, as TokenRequest's status.expirationTimestamp


class TokenRequestError(Exception):
    """No token: `retryable` when the issuer did not answer (try again later), else a mistake to fix."""

    def __init__(self, message: str, retryable: bool) -> None:
        super().__init__(message)
        self.message = message
        self.retryable = retryable


class TokenSource(Protocol):
    def token(self, namespace: str, service_account: str, audience: str, pod_name: str) -> ServiceAccountToken:
        """A fresh pod-bound token; raises TokenRequestError."""
        ...


MAX_TOKEN_FILE_BYTES = 64 * 1024  # a service-account JWT is ~1 KiB; anything far bigger is not one


class FileTokens:
    """TokenSource reading a token file that someone else keeps fresh, as kubelet projects one into a pod.

    The least-privilege way to run the agent: it holds no credentials of its own and
    cannot ask for a token for any other service account. The file is read on every
    request (kubelet rewrites it before expiry); its claims are read, not verified --
    the token is only forwarded to the token exchange, which verifies it -- and are
    checked so that a wrong file fails early with a clear message: the subject must
    be this pod's service account and the audience the one the driver asks for.
    """

    def __init__(self, path: Path) -> None:
        self.path = path

    def _read(self) -> str:
        try:
            with open(self.path, "rb") as f:
                raw = f.read(MAX_TOKEN_FILE_BYTES + 1)
        except OSError as exc:
            raise TokenRequestError(f"--token-file {self.path}: {exc.strerror or exc}", True) from None
        if len(raw) > MAX_TOKEN_FILE_BYTES:
            raise TokenRequestError(f"--token-file {self.path}: larger than {MAX_TOKEN_FILE_BYTES} bytes, not a token", False)
        return raw.decode("ascii", "replace").strip()

    def token(self, namespace: str, service_account: str, audience: str, pod_name: str) -> ServiceAccountToken:
        text = self._read()
        try:
            claims = jwt.decode(text, options={"verify_signature": False})
        except jwt.PyJWTError:
            raise TokenRequestError(f"--token-file {self.path}: not a JWT", False) from None
        want = f"system:serviceaccount:{namespace}:{service_account}"
        if claims.get("sub") != want:
            raise TokenRequestError(
                f"--token-file {self.path}: the token is for {claims.get('sub')!r}, not {want!r} "
                "(--namespace/--service-account)", False,
            )
        audiences = claims.get("aud")
        audiences = [audiences] if isinstance(audiences, str) else list(audiences or [])
        if audience not in audiences:
            raise TokenRequestError(
                f"--token-file {self.path}: the token's audience is {', '.join(audiences) or 'empty'}, "
                f"not {audience!r}", False,
            )
        exp = claims.get("exp")
        if not isinstance(exp, (int, float)) or exp <= time.time():
            raise TokenRequestError(f"--token-file {self.path}: the token has expired; waiting for a fresh one", True)
        stamp = datetime.fromtimestamp(exp, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        return ServiceAccountToken(text, stamp)
