"""Service-account tokens for the pod the agent stands in for.

Kubelet asks the API server's TokenRequest API for a token bound to the pod, for
each audience in the CSIDriver's `tokenRequests`, and hands them to the driver.
The agent does the same against the local cluster's TokenRequest API
(`POST /clusters/local/api/v1/namespaces/<ns>/serviceaccounts/<sa>/token`,
the admin-only API behind `strongroom cluster token`). The CLI supplies the
implementation, so this package needs no HTTP client of its own.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

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
