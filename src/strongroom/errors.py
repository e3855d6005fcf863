"""The one error tree: every refusal the server answers with is a `ServiceError`.

A layer raises what went wrong (status, code, message; optionally an inner code,
a Retry-After and extra headers) and never how it looks on the wire: the plane
that serves the request renders it (`render`), in the shape its clients parse:

- Key Vault's data plane: `{"error": {"code", "message", "innererror": {"code"}}}`;
- Azure Resource Manager: `{"error": {"code", "message"}}` (the same envelope);
- Microsoft Graph: `{"error": {"code", "message", "innerError": {"date", "request-id", "client-request-id"}}}`;
- Kubernetes (the local cluster's API): a `Status` object (kind Status, apiVersion v1,
  status Failure, message, reason, code; `details.retryAfterSeconds` on 429/503);
- the Entra token endpoint: OAuth's `{"error", "error_description", "error_codes",
  "timestamp", "trace_id", "correlation_id", "error_uri"}`.

`code` may be None: the plane then uses its own word for the status (`DEFAULT_CODES`),
e.g. a malformed body is Key Vault's `BadParameter`, ARM's `InvalidRequestContent` and
Graph's `BadRequest`. The plane-neutral subclasses (`BadRequest`, `Forbidden`,
`NotFound`, `Conflict`, `Throttled`, `Unavailable`, ...) fix the status; the domain's
own subclasses (`keyvault.errors.KeyVaultError`, `identity.errors.EntraError`,
`issuer.cluster.ClusterError`) carry their service's codes.

This module is innermost: it imports nothing of strongroom, so every layer may raise
these, and it knows nothing of HTTP frameworks (server/errors.py turns a rendering
into a response).
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import Enum
from typing import Any


class Plane(str, Enum):
    """The API a request reached, which decides the shape of its errors."""

    KEYVAULT = "keyvault"
    ARM = "arm"
    GRAPH = "graph"
    KUBERNETES = "kubernetes"
    ENTRA = "entra"


class ServiceError(Exception):
    """A request refused with an HTTP `status`, an error `code` (None: the plane's word) and a `message`.

    `inner_code` is Key Vault's `innererror.code` (ForbiddenByRbac, AccessDenied, ...);
    `retry_after` (whole seconds) becomes Retry-After; `headers` are sent as they are.
    The message is sent to the client: it must never hold a secret value.
    """

    def __init__(
        self,
        status: int,
        code: str | None,
        message: str,
        inner_code: str | None = None,
        *,
        retry_after: int | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.inner_code = inner_code
        self.retry_after = retry_after
        self.headers = headers

    def __str__(self) -> str:
        return f"({self.code or self.status}) {self.message}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.status}, {self.code!r}, {self.message!r})"

    def oauth_error(self) -> tuple[str, int]:
        """OAuth's `error` and Entra's AADSTS number for this refusal (the token endpoint's shape)."""
        found = _OAUTH_BY_STATUS.get(self.status)
        if found is None:
            found = _OAUTH_BY_STATUS[500] if self.status >= 500 else _OAUTH_BY_STATUS[400]
        return found


# -- plane-neutral subclasses: the status is the class ------------------------------------------


class _Fixed(ServiceError):
    STATUS = 500

    def __init__(self, code: str | None, message: str, inner_code: str | None = None, *,
                 retry_after: int | None = None, headers: dict[str, str] | None = None) -> None:
        super().__init__(self.STATUS, code, message, inner_code, retry_after=retry_after, headers=headers)


class BadRequest(_Fixed):
    STATUS = 400


class Unauthenticated(_Fixed):
    """401: the plane adds its WWW-Authenticate challenge."""

    STATUS = 401


class Forbidden(_Fixed):
    STATUS = 403


class NotFound(_Fixed):
    STATUS = 404


class MethodNotAllowed(_Fixed):
    STATUS = 405


class Conflict(_Fixed):
    STATUS = 409


class TooLarge(_Fixed):
    STATUS = 413


class Throttled(_Fixed):
    """429; `retry_after` says when to come back."""

    STATUS = 429


class InternalError(_Fixed):
    STATUS = 500


class Unavailable(_Fixed):
    """503: a dependency (storage, the audit log) cannot serve now; retry after a second unless told otherwise."""

    STATUS = 503

    def __init__(self, code: str | None, message: str, inner_code: str | None = None, *,
                 retry_after: int | None = 1, headers: dict[str, str] | None = None) -> None:
        super().__init__(code, message, inner_code, retry_after=retry_after, headers=headers)


def internal_error() -> InternalError:
    """What an unexpected exception becomes: nothing of the exception itself reaches the client."""
    return InternalError(None, "The server encountered an internal error.")


# -- each plane's words for a status, when the raiser left the code to it -----------------------

DEFAULT_CODES: dict[Plane, dict[int, str]] = {
    Plane.KEYVAULT: {400: "BadParameter", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound",
                     405: "MethodNotAllowed", 409: "Conflict", 413: "RequestEntityTooLarge", 429: "Throttled",
                     500: "InternalServerError", 503: "ServiceUnavailable"},
    Plane.ARM: {400: "InvalidRequestContent", 401: "AuthenticationFailed", 403: "AuthorizationFailed",
                404: "NotFound", 405: "MethodNotAllowed", 409: "Conflict", 413: "RequestEntityTooLarge",
                429: "TooManyRequests", 500: "InternalServerError", 503: "ServiceUnavailable"},
    Plane.GRAPH: {400: "BadRequest", 401: "InvalidAuthenticationToken", 403: "Authorization_RequestDenied",
                  404: "Request_ResourceNotFound", 405: "MethodNotAllowed", 409: "Conflict",
                  413: "Request_EntityTooLarge", 429: "TooManyRequests", 500: "InternalServerError",
                  503: "ServiceUnavailable"},
    # Kubernetes' StatusReason values (k8s.io/apimachinery metav1).
    Plane.KUBERNETES: {400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound",
                       405: "MethodNotAllowed", 409: "AlreadyExists", 410: "Gone", 413: "RequestEntityTooLarge",
                       415: "UnsupportedMediaType", 422: "Invalid", 429: "TooManyRequests", 500: "InternalError",
                       503: "ServiceUnavailable", 504: "Timeout"},
}
KUBERNETES_REASONS = frozenset(DEFAULT_CODES[Plane.KUBERNETES].values()) | {"Conflict", "Expired", "ServerTimeout"}

# OAuth's error and Entra's AADSTS number for a refusal that did not come from the token rules themselves.
_OAUTH_BY_STATUS: dict[int, tuple[str, int]] = {
    400: ("invalid_request", 900144),
    413: ("invalid_request", 90013),
    429: ("temporarily_unavailable", 50196),
    500: ("server_error", 50000),
    503: ("temporarily_unavailable", 90006),
}


# -- rendering --------------------------------------------------------------------------------


@dataclass
class Rendered:
    """A refusal as it goes on the wire: status, JSON body, headers."""

    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)


def code_for(err: ServiceError, plane: Plane) -> str:
    """The error code `err` has on `plane`: its own, or the plane's word for its status."""
    if err.code:
        return err.code
    words = DEFAULT_CODES.get(plane) or DEFAULT_CODES[Plane.KEYVAULT]
    return words.get(err.status) or DEFAULT_CODES[Plane.KEYVAULT].get(err.status) or "Error"


def _azure_body(err: ServiceError, plane: Plane) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code_for(err, plane), "message": err.message}
    if err.inner_code:
        error["innererror"] = {"code": err.inner_code}
    return {"error": error}


def _graph_body(err: ServiceError, request_id: str | None, client_request_id: str | None,
                now: datetime) -> dict[str, Any]:
    inner: dict[str, Any] = {"date": now.strftime("%Y-%m-%dT%H:%M:%S")}
    if request_id:
        inner["request-id"] = request_id
    if client_request_id:
        inner["client-request-id"] = client_request_id
    return {"error": {"code": code_for(err, Plane.GRAPH), "message": err.message, "innerError": inner}}


def _kubernetes_status(err: ServiceError) -> dict[str, Any]:
    reason = err.code if err.code in KUBERNETES_REASONS else DEFAULT_CODES[Plane.KUBERNETES].get(err.status, err.code or "")
    status: dict[str, Any] = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": err.message,
        "reason": reason,
        "code": err.status,
    }
    if err.retry_after is not None and err.status in (429, 503):
        status["details"] = {"retryAfterSeconds": err.retry_after}
    return status


def entra_body(err: ServiceError, correlation_id: str | None = None, trace_id: str | None = None,
               now: datetime | None = None) -> dict[str, Any]:
    """OAuth's error body as Entra's token endpoint writes it, with the AADSTS number in the description."""
    error, number = err.oauth_error()
    ts = (now or datetime.now(UTC)).strftime("%Y-%m-%d %H:%M:%SZ")
    trace_id = trace_id or getattr(err, "trace_id", None) or str(uuid.uuid4())
    correlation_id = correlation_id or str(uuid.uuid4())
    return {
        "error": error,
        "error_description": (
            f"AADSTS{number}: {err.message} Trace ID: {trace_id} Correlation ID: {correlation_id} Timestamp: {ts}"
        ),
        "error_codes": [number],
        "timestamp": ts,
        "trace_id": trace_id,
        "correlation_id": correlation_id,
        "error_uri": f"https://login.microsoftonline.com/error?code={number}",
    }


def render(
    err: ServiceError,
    plane: Plane,
    *,
    request_id: str | None = None,
    client_request_id: str | None = None,
    challenge: str | None = None,
    now: datetime | None = None,
) -> Rendered:
    """`err` in `plane`'s shape. `challenge` is the plane's WWW-Authenticate value, sent with a 401."""
    now = now or datetime.now(UTC)
    if plane is Plane.GRAPH:
        body = _graph_body(err, request_id, client_request_id, now)
    elif plane is Plane.KUBERNETES:
        body = _kubernetes_status(err)
    elif plane is Plane.ENTRA:
        body = entra_body(err, client_request_id, now=now)
    else:
        body = _azure_body(err, plane)
    headers = dict(err.headers or {})
    if err.retry_after is not None:
        headers["Retry-After"] = str(err.retry_after)
    if err.status == 401 and challenge and "WWW-Authenticate" not in headers:
        headers["WWW-Authenticate"] = challenge
    return Rendered(err.status, body, headers)


def describe(status: int, text: str) -> tuple[str, str | None]:
    """The message and code of an error answer in any plane's shape, as a client reads it back.

    Kubernetes' Status (`reason`), the Azure envelope `{"error": {"code", "message"}}` (Key Vault,
    ARM, Graph) or OAuth's `{"error", "error_description"}`; anything else is named by its status.
    """
    try:
        body = json.loads(text)
    except ValueError:
        return f"HTTP {status}: {text[:200]}", None
    if isinstance(body, dict) and body.get("kind") == "Status":
        return str(body.get("message", "")), body.get("reason")
    err = body.get("error") if isinstance(body, dict) else None
    if isinstance(err, dict):
        return str(err.get("message", "")), err.get("code")
    if isinstance(err, str):
        return str(body.get("error_description", "")), err
    return f"HTTP {status}", None
