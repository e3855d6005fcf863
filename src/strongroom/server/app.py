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
from urllib.parse import urlsplit

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route

from strongroom.identity.errors import EntraError
from strongroom.keyvault.errors import KeyVaultError, vault_not_found
from strongroom.server import identity_api, management_api, vault_api
from strongroom.server import cluster_api, directory_api, graph_api
from strongroom.server import access_policy_api, authorization_api
from strongroom.server import certificates_api, keys_api
from strongroom.server import events_api
from strongroom.server import lint_api
from strongroom.server import arm_api, graph_objects_api, metadata_api
from strongroom.server.audit_middleware import AuditMiddleware
from strongroom.server.bodies import InvalidBody, plane_error
from strongroom.server.dispatch import RouteTable
from strongroom.server.http import JSON, RequestIdMiddleware, error_response
from strongroom.server.limits import BODY_TOO_LARGE
from strongroom.server.runtime import Runtime, build_runtime
from strongroom.server import dev_api
from strongroom.server.scheduler import Scheduler, guard_service_changes
from strongroom.server.throttle import Throttled
from strongroom.settings import Settings
from strongroom.storage import StorageError

log = logging.getLogger("strongroom.server")

DATA_PLANE_PREFIXES = (
    "/secrets", "/deletedsecrets", "/keys", "/deletedkeys", "/rng", "/certificates", "/deletedcertificates",
)
PURGE_INTERVAL = 60.0
LOCAL_HOSTS = ("localhost", "127.0.0.1")
BAD_HOST = ("The Host header is not valid for this server: send exactly one, naming a vault or this instance "
            "without a trailing dot, with the port the server is published on.")


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
    if exc.status == 401:  # ARM and Graph name the authority to get a token from, as Azure does
        rt: Runtime = request.app.state.runtime
        challenge = (f'Bearer authorization_uri="{rt.settings.authority}/{rt.tenant.tenant_id}", '
                     'error="invalid_token", error_description="The access token is missing or invalid."')
        return error_response(exc, headers={"WWW-Authenticate": challenge})
    return error_response(exc)


async def invalid_body(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, InvalidBody)
    return error_response(plane_error(request.scope, exc))


async def throttled(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, Throttled)
    return error_response(exc, headers={"Retry-After": str(exc.retry_after)})


async def entra_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, EntraError)
    retry_after = getattr(exc, "retry_after", None)
    headers = {"Retry-After": str(retry_after)} if retry_after else None
    return JSON(exc.body(request.headers.get("client-request-id")), status_code=exc.status, headers=headers)


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


async def client_gone(request: Request, exc: Exception) -> Response:
    """The body stopped arriving: cut off past its cap by the protocol (413), or the client left.

    Nobody receives this answer; it is what the audit record says (and no traceback is logged).
    """
    limit = request.scope.get(BODY_TOO_LARGE)
    if limit is not None:
        return error_response(KeyVaultError(413, "RequestEntityTooLarge", f"The request body is larger than the limit of {limit} bytes."))
    return error_response(KeyVaultError(400, "BadRequest", "The client closed the connection before its request was read."))
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
    InvalidBody: invalid_body,
    KeyVaultError: keyvault_error,
    EntraError: entra_error,
    vault_api.Unauthenticated: unauthenticated,
    HTTPException: http_error,
    StorageError: storage_error,
    ClientDisconnect: client_gone,
    Exception: unexpected_error,
}


class HostRouter:
    """Dispatch on the Host header to the vault app or the control app.

    The Host header is made canonical here, once, before anything reads it: ids,
    nextLink and audit records are built from the scope's Host, so a value a
    client chose must never reach them. Two Host headers, a trailing dot or a
    port other than the public one (or the one this process listens on, which probes
    and a load balancer's health checks use) are refused (400); otherwise the header is
    rewritten, lower-cased and with the public port, when it differs.
    """

    def __init__(self, runtime: Runtime, vault_app: RouteTable, control_app: Starlette) -> None:
        self.runtime = runtime
        self.vault_app = vault_app
        self.control_app = control_app
        self.vault_suffix = f".vault.{runtime.settings.dns_suffix}".lower()
        self.ports = {runtime.settings.public_port, runtime.settings.port}
        self.port_suffix = runtime.settings._port_suffix()  # ":8443", or "" on the scheme's default port
        self.authority_host = urlsplit(runtime.settings.authority).netloc
        self._canonical: dict[str, str | None] = {}

    def vault_name(self, hostname: str, path: str) -> str | None:
        if hostname.endswith(self.vault_suffix):
            return hostname[: -len(self.vault_suffix)]
        default = self.runtime.settings.default_vault
        if default and hostname in LOCAL_HOSTS and path.startswith(DATA_PLANE_PREFIXES):
            return default
        return None

    def canonical_host(self, host: str) -> str | None:
        """`host` lower-cased with the public port, or None when it names another port or ends in a dot."""
        try:
            return self._canonical[host]  # clients repeat a handful of hosts: the hot path pays one dict lookup
        except KeyError:
            pass
        if len(self._canonical) >= 1024:  # bounded whatever hosts are sent
            self._canonical.clear()
        found = self._canonical[host] = self._canonicalize(host)
        return found

    def _canonicalize(self, host: str) -> str | None:
        hostname, port = host, ""
        if host.startswith("["):  # an IPv6 literal: [::1] or [::1]:8443
            end = host.find("]")
            if end < 0:
                return None
            hostname, rest = host[: end + 1], host[end + 1:]
            if rest and not rest.startswith(":"):
                return None
            port = rest[1:]
        elif ":" in host:
            hostname, _, port = host.rpartition(":")
        if port and (not port.isdigit() or int(port) not in self.ports):
            return None
        hostname = hostname.lower()
        if not hostname or hostname.endswith("."):
            return None
        return hostname + self.port_suffix

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "lifespan":
            await self.control_app(scope, receive, send)
            return
        host = None
        for k, v in scope.get("headers", []):
            if k == b"host":
                if host is not None:
                    host = ""  # two Host headers: refused below
                    break
                host = v.decode("latin-1")
        canonical = self.canonical_host(host) if host else None
        if canonical is None and host is not None:
            await error_response(KeyVaultError(400, "BadRequest", BAD_HOST))(scope, receive, send)
            return
        hostname = canonical[: len(canonical) - len(self.port_suffix)] if canonical else ""
        name = self.vault_name(hostname, scope.get("path", ""))
        if name is None and canonical is not None and hostname not in LOCAL_HOSTS:
            canonical = self.authority_host  # the control plane answers as its authority, whatever name reached it
        if canonical is not None and canonical != host:
            scope["headers"] = [(k, canonical.encode("latin-1") if k == b"host" else v) for k, v in scope["headers"]]
        if name is None:
            await self.control_app(scope, receive, send)
            return
        try:
            self.runtime.store.pin()  # one read of the change counter; unchanged records then come from memory
            vault = self.runtime.vaults.get(name) if "." not in name else None
        except StorageError as exc:  # outside the apps' exception handlers: answer as they would
            log.error("storage failure looking up vault %s: %s", name, exc)
            await storage_unavailable()(scope, receive, send)
            return
        if vault is None:
            await error_response(vault_not_found(canonical or ""))(scope, receive, send)
            return
        scope["strongroom.vault"] = vault
        await self.vault_app(scope, receive, send)


async def _purge_loop(runtime: Runtime) -> None:
    """Purge soft-deleted secrets once their scheduled purge date has passed."""
    guard_service_changes(runtime)
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
            *metadata_api.routes,
            *arm_api.routes,
            *graph_objects_api.routes,
        ],
        exception_handlers=EXCEPTION_HANDLERS,
        lifespan=lifespan,
    )
    # Key Vault never redirects (Starlette's slash redirect once sent get_secret("") to the listing): nor does RouteTable.
    vault = RouteTable(
        [*vault_api.routes, *events_api.routes, *keys_api.routes, *certificates_api.routes, *lint_api.routes], EXCEPTION_HANDLERS
    )
    control.state.runtime = vault.state.runtime = runtime
    return HostRouter(runtime, vault, control)


def app_from_env() -> Any:
    """uvicorn factory for worker processes: settings come from STRONGROOM_SETTINGS."""
    app = create_app(Settings.from_env())
    assert app.runtime.audit is not None
    # Audit inside the request-id layer: records carry the id, a 503 from the audit layer gets one too.
    return RequestIdMiddleware(AuditMiddleware(app, app.runtime.audit))
