"""The ASGI application: one port, routed by Host.

`<name>.vault.<dns-suffix>` reaches vault `name`'s data plane; `localhost` and
`127.0.0.1` reach the default vault (when configured) for data-plane paths and
the identity and management endpoints otherwise.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from strongroom.identity.errors import EntraError
from strongroom.keyvault.errors import KeyVaultError, vault_not_found
from strongroom.server import identity_api, management_api, vault_api
from strongroom.server import cluster_api, directory_api, graph_api
from strongroom.server import access_policy_api, authorization_api
from strongroom.server import certificates_api, keys_api
from strongroom.server import events_api
from strongroom.server.audit_middleware import AuditMiddleware
from strongroom.server.dispatch import RouteTable
from strongroom.server.http import JSON, RequestIdMiddleware, error_response
from strongroom.server.runtime import Runtime, build_runtime
from strongroom.server import dev_api
from strongroom.server.scheduler import Scheduler
from strongroom.server.throttle import Throttled
from strongroom.settings import Settings
from strongroom.storage import StorageError

log = logging.getLogger("strongroom.server")

DATA_PLANE_PREFIXES = (
    "/secrets", "/deletedsecrets", "/keys", "/deletedkeys", "/rng", "/certificates", "/deletedcertificates",
)
PURGE_INTERVAL = 60.0


async def healthz(request: Request) -> Response:
    return JSON({"status": "ok"})


async def instance_metadata(request: Request) -> Response:
    """Public facts a client needs to find its way (nothing secret: Azure exposes them in challenges)."""
    rt: Runtime = request.app.state.runtime
    return JSON(
        {
            "tenantId": rt.tenant.tenant_id,
            "subscriptionId": rt.tenant.subscription_id,
            "authority": rt.settings.authority,
            "vaultResource": rt.settings.vault_resource,
            "dnsSuffix": rt.settings.dns_suffix,
            "port": rt.settings.port,
            "vaultUrlTemplate": rt.settings.vault_url("{name}"),
        }
    )


async def keyvault_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, KeyVaultError)
    return error_response(exc)


async def throttled(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, Throttled)
    return error_response(exc, headers={"Retry-After": str(exc.retry_after)})


async def entra_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, EntraError)
    return JSON(exc.body(request.headers.get("client-request-id")), status_code=exc.status)


async def unauthenticated(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, vault_api.Unauthenticated)
    return vault_api.unauthorized_response(request.app.state.runtime, exc.message)


async def http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 405:
        err = KeyVaultError(405, "MethodNotAllowed", f"The method {request.method} is not allowed on {request.url.path}.")
    else:
        err = KeyVaultError(exc.status_code, "NotFound" if exc.status_code == 404 else "BadRequest",
                            f"The requested path {request.url.path} is not found." if exc.status_code == 404 else str(exc.detail))
    return error_response(err)


def storage_unavailable() -> Response:
    return error_response(KeyVaultError(503, "ServiceUnavailable", "The storage backend is unavailable; retry later."),
                          headers={"Retry-After": "1"})


async def storage_error(request: Request, exc: Exception) -> Response:
    log.error("storage failure on %s %s: %s", request.method, request.url.path, exc)
    if request.url.path.endswith("/oauth2/v2.0/token"):  # the token endpoint answers in Entra's shape
        err = EntraError(503, "temporarily_unavailable", 90006, "The service is temporarily unavailable. Retry the request.")
        return JSON(err.body(request.headers.get("client-request-id")), status_code=503, headers={"Retry-After": "1"})
    return storage_unavailable()


async def unexpected_error(request: Request, exc: Exception) -> Response:
    # Log the type only: an exception's text could carry request data.
    log.error("unexpected %s on %s %s", type(exc).__name__, request.method, request.url.path)
    return error_response(KeyVaultError(500, "InternalServerError", "The server encountered an internal error."))


EXCEPTION_HANDLERS: dict[Any, Any] = {
    Throttled: throttled,
    KeyVaultError: keyvault_error,
    EntraError: entra_error,
    vault_api.Unauthenticated: unauthenticated,
    HTTPException: http_error,
    StorageError: storage_error,
    Exception: unexpected_error,
}


class HostRouter:
    """Dispatch on the Host header to the vault app or the control app."""

    def __init__(self, runtime: Runtime, vault_app: RouteTable, control_app: Starlette) -> None:
        self.runtime = runtime
        self.vault_app = vault_app
        self.control_app = control_app
        self.vault_suffix = f".vault.{runtime.settings.dns_suffix}".lower()

    def vault_name(self, host: str, path: str) -> str | None:
        hostname = host.rsplit(":", 1)[0] if not host.endswith("]") else host
        hostname = hostname.lower().rstrip(".")
        if hostname.endswith(self.vault_suffix):
            return hostname[: -len(self.vault_suffix)]
        default = self.runtime.settings.default_vault
        if default and hostname in ("localhost", "127.0.0.1") and path.startswith(DATA_PLANE_PREFIXES):
            return default
        return None

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "lifespan":
            await self.control_app(scope, receive, send)
            return
        host = ""
        for k, v in scope.get("headers", []):
            if k == b"host":
                host = v.decode("latin-1")
                break
        name = self.vault_name(host, scope.get("path", ""))
        if name is None:
            await self.control_app(scope, receive, send)
            return
        try:
            vault = self.runtime.vaults.get(name) if "." not in name else None
        except StorageError as exc:  # outside the apps' exception handlers: answer as they would
            log.error("storage failure looking up vault %s: %s", name, exc)
            await storage_unavailable()(scope, receive, send)
            return
        if vault is None:
            await error_response(vault_not_found(host))(scope, receive, send)
            return
        scope["strongroom.vault"] = vault
        await self.vault_app(scope, receive, send)


async def _purge_loop(runtime: Runtime) -> None:
    """Purge soft-deleted secrets once their scheduled purge date has passed."""
    while True:
        await asyncio.sleep(PURGE_INTERVAL)
        try:
            for vault in runtime.vaults.list():
                await asyncio.to_thread(runtime.secrets.purge_expired, vault)
                await asyncio.to_thread(runtime.keys.purge_expired, vault)
                await asyncio.to_thread(runtime.certificates.purge_expired, vault)
        except Exception as exc:  # keep the loop alive; the next round retries
            log.warning("scheduled purge failed: %s", type(exc).__name__)


def create_app(settings: Settings) -> HostRouter:
    runtime = build_runtime(settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette):
        task = asyncio.create_task(_purge_loop(runtime))
        scheduler = app.state.scheduler = Scheduler(runtime)  # key rotation, certificate renewal, expiry events
        scheduler.start()
        events_api.end_streams_on_exit_signals()  # open event streams must not hold a shutdown
        try:
            yield
        finally:
            task.cancel()
            await scheduler.stop()
            runtime.close()

    control = Starlette(
        routes=[
            Route("/healthz", healthz, methods=["GET"]),
            Route("/strongroom/metadata", instance_metadata, methods=["GET"]),
            *identity_api.routes,
            *management_api.routes,
            *directory_api.routes,
            *graph_api.routes,
            *cluster_api.routes,
            *authorization_api.routes,
            *access_policy_api.routes,
            *certificates_api.control_routes,
            *dev_api.routes,
        ],
        exception_handlers=EXCEPTION_HANDLERS,
        lifespan=lifespan,
    )
    # Key Vault never redirects (Starlette's slash redirect once sent get_secret("") to the listing): nor does RouteTable.
    vault = RouteTable(
        [*vault_api.routes, *events_api.routes, *keys_api.routes, *certificates_api.routes], EXCEPTION_HANDLERS
    )
    control.state.runtime = vault.state.runtime = runtime
    return HostRouter(runtime, vault, control)


def app_from_env() -> Any:
    """uvicorn factory for worker processes: settings come from STRONGROOM_SETTINGS."""
    app = create_app(Settings.from_env())
    assert app.runtime.audit is not None
    # Audit inside the request-id layer: records carry the id, a 503 from the audit layer gets one too.
    return RequestIdMiddleware(AuditMiddleware(app, app.runtime.audit))
