"""The one place an error becomes an HTTP response, in the shape of the plane that serves the request.

Handlers and the layers below raise `strongroom.errors.ServiceError` (or a subclass);
nothing in server/ builds an error body by hand. The plane comes from where the
request was routed:
- the vault app (`HostRouter` attached a vault to the scope): Key Vault;
- the control app: the plane its matched route was mounted under (`route_planes`,
  built by `app.create_app` from the API modules' route lists);
- a request no route matched (404/405, a refused Host header): its path's prefix.

Each plane adds its own headers: the 401 challenge (Key Vault's `authorization`/`resource`,
ARM's and Graph's `authorization_uri`), Retry-After from the error. An unexpected exception
is logged by type only and answered 500 in the plane's shape: no traceback, no exception
text (which could carry request data) ever reaches the client.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from strongroom.barrier import StorageError
from strongroom.errors import (
    BadRequest,
    MethodNotAllowed,
    NotFound,
    Plane,
    ServiceError,
    TooLarge,
    Unavailable,
    internal_error,
    render,
)
from strongroom.server.http import JSON
from strongroom.server.limits import BODY_TOO_LARGE

log = logging.getLogger("strongroom.server")

VAULT_KEY = "strongroom.vault"  # set by HostRouter on data-plane requests
REQUEST_ID_KEY = "strongroom.request_id"  # set by RequestIdMiddleware
PLANES_STATE = "planes"  # app.state.planes: id(route) -> Plane
TOKEN_PATH_SUFFIXES = ("/oauth2/v2.0/token", "/oauth2/token")

STORAGE_DOWN = "The storage backend is unavailable; retry later."
ENTRA_STORAGE_DOWN = "The service is temporarily unavailable. Retry the request."


def route_planes(planes: Mapping[Plane, Iterable[BaseRoute]]) -> dict[int, Plane]:
    """The plane of each route object (by identity: routes are not hashable), for `app.state.planes`."""
    return {id(route): plane for plane, routes in planes.items() for route in routes}


def path_plane(path: str) -> Plane:
    """The plane a path belongs to when no route says so (nothing matched it, or it never reached an app)."""
    if path.startswith("/v1.0/"):
        return Plane.GRAPH
    if path.startswith("/clusters/"):
        return Plane.KUBERNETES
    if path.endswith(TOKEN_PATH_SUFFIXES):
        return Plane.ENTRA
    if path.startswith("/strongroom/"):
        return Plane.KEYVAULT  # the instance's own endpoints speak Key Vault's shape
    return Plane.ARM


def plane_of(scope: Mapping[str, Any]) -> Plane:
    """The plane serving the request `scope` describes (read after routing: the router marks the scope)."""
    if VAULT_KEY in scope:
        return Plane.KEYVAULT
    route = scope.get("route")
    if route is not None:
        planes: dict[int, Plane] | None = getattr(getattr(scope.get("app"), "state", None), PLANES_STATE, None)
        found = planes.get(id(route)) if planes else None
        if found is not None:
            return found
    return path_plane(str(scope.get("path", "")))


def _header(scope: Mapping[str, Any], name: bytes) -> str | None:
    for k, v in scope.get("headers", ()):
        if k == name:
            return bytes(v).decode("latin-1")
    return None


def challenge(plane: Plane, scope: Mapping[str, Any]) -> str | None:
    """The WWW-Authenticate value a 401 carries on `plane` (None: the plane sends none, e.g. Kubernetes)."""
    rt = getattr(getattr(scope.get("app"), "state", None), "runtime", None)
    if rt is None:
        return None
    authority = f"{rt.settings.authority}/{rt.tenant.tenant_id}"
    if plane is Plane.KEYVAULT:
        return f'Bearer authorization="{authority}", resource="{rt.settings.vault_resource}"'
    if plane in (Plane.ARM, Plane.GRAPH):  # they name the authority to get a token from, as Azure does
        return (f'Bearer authorization_uri="{authority}", error="invalid_token", '
                'error_description="The access token is missing or invalid."')
    return None


def error_response(err: ServiceError, scope: Mapping[str, Any], plane: Plane | None = None) -> Response:
    """`err` as the response of the request `scope` describes."""
    plane = plane or plane_of(scope)
    client_request_id = _header(scope, b"client-request-id") or _header(scope, b"x-ms-client-request-id")
    rendered = render(err, plane, request_id=scope.get(REQUEST_ID_KEY), client_request_id=client_request_id,
                      challenge=challenge(plane, scope) if err.status == 401 else None)
    return JSON(rendered.body, status_code=rendered.status, headers=rendered.headers or None)


def unavailable(scope: Mapping[str, Any], plane: Plane | None = None) -> Response:
    """503 for a storage failure, with Retry-After."""
    plane = plane or plane_of(scope)
    return error_response(Unavailable(None, ENTRA_STORAGE_DOWN if plane is Plane.ENTRA else STORAGE_DOWN), scope, plane)


# -- the exception handlers both apps use -------------------------------------------------------


async def service_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ServiceError)
    return error_response(exc, request.scope)


async def http_error(request: Request, exc: Exception) -> Response:
    """Starlette's routing errors: no route (404), another method (405)."""
    assert isinstance(exc, HTTPException)
    path = request.url.path
    err: ServiceError
    if exc.status_code == 405:
        err = MethodNotAllowed("MethodNotAllowed", f"The method {request.method} is not allowed on {path}.")
    elif exc.status_code == 404:
        err = NotFound(None, f"The requested path {path} is not found.")
    else:
        err = ServiceError(exc.status_code, None, str(exc.detail))
    return error_response(err, request.scope)


async def storage_error(request: Request, exc: Exception) -> Response:
    log.error("storage failure on %s %s: %s", request.method, request.url.path, exc)
    return unavailable(request.scope)


async def client_gone(request: Request, exc: Exception) -> Response:
    """The body stopped arriving: cut off past its cap by the protocol (413), or the client left.

    Nobody receives this answer; it is what the audit record says (and no traceback is logged).
    """
    limit = request.scope.get(BODY_TOO_LARGE)
    if limit is not None:
        return error_response(TooLarge(None, f"The request body is larger than the limit of {limit} bytes."), request.scope)
    return error_response(BadRequest("BadRequest", "The client closed the connection before its request was read."),
                          request.scope)


async def unexpected_error(request: Request, exc: Exception) -> Response:
    # Log the type only: an exception's text could carry request data.
    log.error("unexpected %s on %s %s", type(exc).__name__, request.method, request.url.path)
    return error_response(internal_error(), request.scope)


EXCEPTION_HANDLERS: dict[Any, Any] = {
    ServiceError: service_error,
    HTTPException: http_error,
    StorageError: storage_error,
    ClientDisconnect: client_gone,
    Exception: unexpected_error,
}
