"""The ASGI application: one port, routed by Host.

`<name>.vault.<dns-suffix>` reaches vault `name`'s data plane; `localhost` and
`127.0.0.1` reach the default vault (when configured) for data-plane paths and
the identity and management endpoints otherwise.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any
from urllib.parse import urlsplit

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response

from strongroom.errors import BadRequest, NotFound, Plane
from strongroom.server import (
    access_policy_api,
    arm_api,
    authorization_api,
    certificates_api,
    cluster_api,
    dev_api,
    directory_api,
    events_api,
    graph_api,
    graph_objects_api,
    identity_api,
    keys_api,
    lint_api,
    management_api,
    metadata_api,
    vault_api,
)
from strongroom.server.audit_middleware import AuditMiddleware
from strongroom.server.dispatch import RouteTable
from strongroom.server.errors import EXCEPTION_HANDLERS, error_response, route_planes, unavailable
from strongroom.server.guards import public, route
from strongroom.server.http import JSON, RequestIdMiddleware
from strongroom.server.runtime import Runtime, build_runtime
from strongroom.server.scheduler import Scheduler
from strongroom.settings import Settings
from strongroom.storage import StorageError

log = logging.getLogger("strongroom.server")

DATA_PLANE_PREFIXES = (
    "/secrets", "/deletedsecrets", "/keys", "/deletedkeys", "/rng", "/certificates", "/deletedcertificates",
)
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
            await error_response(BadRequest("BadRequest", BAD_HOST), scope)(scope, receive, send)
            return
        hostname = canonical[: len(canonical) - len(self.port_suffix)] if canonical else ""
        name = self.vault_name(hostname, scope.get("path", ""))
        if name is None and canonical is not None and hostname not in LOCAL_HOSTS:
            canonical = self.authority_host  # the control plane answers as its authority, whatever name reached it
        if canonical is not None and canonical != host:
            scope["headers"] = [(k, canonical.encode("latin-1") if k == b"host" else v) for k, v in scope["headers"]]
        if name is None:
            try:
                await self.control_app(scope, receive, send)
            except Exception:
                # Starlette re-raises what its 500 handler answered (server/errors.py logged its type);
                # the server would log it again with its text, which may hold request data.
                pass
            return
        try:
            self.runtime.store.pin()  # one read of the change counter; unchanged records then come from memory
            vault = self.runtime.vaults.get(name) if "." not in name else None
        except StorageError as exc:  # outside the apps' exception handlers: answer as they would
            log.error("storage failure looking up vault %s: %s", name, exc)
            await unavailable(scope, Plane.KEYVAULT)(scope, receive, send)
            return
        if vault is None:
            not_found = NotFound("VaultNotFound", f"No vault answers at '{canonical or ''}'. Check the vault name and the DNS suffix.")
            await error_response(not_found, scope, Plane.KEYVAULT)(scope, receive, send)
            return
        scope["strongroom.vault"] = vault
        await self.vault_app(scope, receive, send)


def create_app(settings: Settings) -> HostRouter:
    runtime = build_runtime(settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette):
        # key rotation, certificate renewal, expiry events, purge: on one worker of one replica
        scheduler = app.state.scheduler = Scheduler(runtime)
        scheduler.start()
        events_api.end_streams_on_exit_signals()  # open event streams must not hold a shutdown
        try:
            yield
        finally:
            await scheduler.stop()
            runtime.close()

    own_routes = [
        route("/healthz", healthz, ["GET"], public()),
        route("/strongroom/metadata", instance_metadata, ["GET"], public()),
    ]
    control = Starlette(
        routes=[
            *own_routes,
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
    # Errors are rendered in the shape of the plane whose routes matched (server/errors.py).
    control.state.planes = route_planes({
        Plane.KEYVAULT: [*own_routes, *certificates_api.control_routes, *dev_api.routes],
        Plane.ENTRA: identity_api.routes,
        Plane.ARM: [*management_api.routes, *directory_api.routes, *authorization_api.routes,
                    *access_policy_api.routes, *metadata_api.routes, *arm_api.routes],
        Plane.GRAPH: [*graph_api.routes, *graph_objects_api.routes],
        Plane.KUBERNETES: cluster_api.routes,
    })
    return HostRouter(runtime, vault, control)


def app_from_env() -> Any:
    """uvicorn factory for worker processes: settings come from STRONGROOM_SETTINGS."""
    app = create_app(Settings.from_env())
    assert app.runtime.audit is not None
    # Audit inside the request-id layer: records carry the id, a 503 from the audit layer gets one too.
    return RequestIdMiddleware(AuditMiddleware(app, app.runtime.audit))
