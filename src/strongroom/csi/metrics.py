"""Prometheus metrics named as the Azure provider names them, and the HTTP endpoint serving them.

Two histograms (seconds), exported by the Azure provider through OpenTelemetry:
- `keyvault_request`: one observation per object fetch or version listing, labels
  provider, os_type, object_type, object_name, error ("" on success);
- `grpc_request`: one per gRPC call, labels grpc_method
  (`/v1alpha1.CSIDriverProvider/Mount`), grpc_code (`OK`, `NotFound`, ... as Go
  spells codes), grpc_message.
Both carry service_name (`csi-secrets-store-provider-<name>`, so `--name azure`
gives exactly the Azure provider's `csi-secrets-store-provider-azure`).

The registry is this module's own, so several providers in one process (tests,
the agent) never collide with the default registry.
"""

from __future__ import annotations

import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Histogram, generate_latest

BUCKETS = (0.1, 0.2, 0.3, 0.4, 0.5, 1, 1.5, 2, 2.5, 3, 5, 10, 15, 30)
OS_TYPE = "windows" if sys.platform.startswith("win") else sys.platform.rstrip("0123456789")

REGISTRY = CollectorRegistry()
KEYVAULT_REQUEST = Histogram(
    "keyvault_request",
    "Distribution of how long it took to get from keyvault",
    ["service_name", "provider", "os_type", "object_type", "object_name", "error"],
    buckets=BUCKETS,
    registry=REGISTRY,
)
GRPC_REQUEST = Histogram(
    "grpc_request",
    "Distribution of how long it took for the gRPC requests",
    ["service_name", "provider", "os_type", "grpc_method", "grpc_code", "grpc_message"],
    buckets=BUCKETS,
    registry=REGISTRY,
)

# grpc.StatusCode names -> the names Go's codes.Code.String() prints, which the Azure provider's labels carry.
GO_CODE_NAMES = {
    "OK": "OK",
    "CANCELLED": "Canceled",
    "UNKNOWN": "Unknown",
    "INVALID_ARGUMENT": "InvalidArgument",
    "DEADLINE_EXCEEDED": "DeadlineExceeded",
    "NOT_FOUND": "NotFound",
    "ALREADY_EXISTS": "AlreadyExists",
    "PERMISSION_DENIED": "PermissionDenied",
    "RESOURCE_EXHAUSTED": "ResourceExhausted",
    "FAILED_PRECONDITION": "FailedPrecondition",
    "ABORTED": "Aborted",
    "OUT_OF_RANGE": "OutOfRange",
    "UNIMPLEMENTED": "Unimplemented",
    "INTERNAL": "Internal",
    "UNAVAILABLE": "Unavailable",
    "DATA_LOSS": "DataLoss",
    "UNAUTHENTICATED": "Unauthenticated",
}


class Reporter:
    """Records observations with the provider's fixed labels."""

    def __init__(self, provider_name: str) -> None:
        self.provider = provider_name
        self.service_name = f"csi-secrets-store-provider-{provider_name}"

    def keyvault_request(self, seconds: float, object_type: str, object_name: str, error: str = "") -> None:
        KEYVAULT_REQUEST.labels(self.service_name, self.provider, OS_TYPE, object_type, object_name, error).observe(seconds)

    def grpc_request(self, seconds: float, method: str, code: str, message: str = "") -> None:
        GRPC_REQUEST.labels(
            self.service_name, self.provider, OS_TYPE, method, GO_CODE_NAMES.get(code, code), message
        ).observe(seconds)


def parse_addr(addr: str) -> tuple[str, int]:
    """`:8898`, `8898`, `127.0.0.1:8898`, `[::1]:8898` -> (host, port); an empty host listens everywhere."""
    host, sep, port = addr.rpartition(":")
    if not sep:
        host, port = "", addr
    host = host.strip("[]")
    try:
        number = int(port)
    except ValueError:
        raise ValueError(f"--metrics-addr {addr!r} is not [host]:port") from None
    if not 0 <= number <= 65535:
        raise ValueError(f"--metrics-addr {addr!r}: port out of range")
    return host or "0.0.0.0", number


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        path = self.path.split("?", 1)[0]
        if path == "/metrics":
            body, ctype, status = generate_latest(REGISTRY), CONTENT_TYPE_LATEST, 200
        elif path == "/healthz":
            body, ctype, status = b"ok\n", "text/plain; charset=utf-8", 200
        else:
            body, ctype, status = b"not found\n", "text/plain; charset=utf-8", 404
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # scrapes every few seconds: no access log
        return


class MetricsServer:
    """`/metrics` (Prometheus text format) and `/healthz` on a background thread."""

    def __init__(self, addr: str) -> None:
        host, port = parse_addr(addr)
        self.httpd = ThreadingHTTPServer((host, port), _Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, name="provider-metrics", daemon=True)

    @property
    def port(self) -> int:
        return self.httpd.server_address[1]

    def start(self) -> MetricsServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
