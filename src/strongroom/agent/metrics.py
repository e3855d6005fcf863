"""The Secrets Store CSI Driver's metrics, as its Prometheus exporter names them on the wire.

| metric                              | type      | labels                                      |
| node_publish_total                  | counter   | provider, os_type                           |
| node_publish_error_total            | counter   | provider, error_type, os_type               |
| rotation_reconcile_total            | counter   | provider, os_type, rotated                  |
| rotation_reconcile_error_total      | counter   | provider, error_type, os_type, rotated      |
| rotation_reconcile_duration_sec     | histogram | os_type                                     |

`provider` is the SecretProviderClass's `spec.provider`. The first mount counts as
a node publish; every later mount (a change-feed event, the poll, a retry) is a
rotation reconcile, with `rotated` "true" when files changed and "false" when
they did not (the v1.5 reconciler's meaning; v1.6 always says "true").
`error_type` uses the driver's names (GRPCProviderError, FileWriteError, ...).
Histogram buckets are the driver's ExponentialBucketsRange(0.1, 2, 11).

The in-process provider's own histograms (keyvault_request, grpc_request) are
served from the same endpoint.
"""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server
from prometheus_client.registry import Collector

from strongroom.csi import metrics as provider_metrics
from strongroom.csi.metrics import OS_TYPE, parse_addr

# Driver error types (pkg/errors/errors.go) the agent can meet.
GRPC_PROVIDER_ERROR = "GRPCProviderError"
FAILED_TO_MOUNT = "FailedToMount"
FAILED_TO_LOOKUP_PROVIDER = "FailedToLookupProviderGRPCClient"
SPC_NOT_FOUND = "SecretProviderClassNotFound"
FILE_WRITE_ERROR = "FileWriteError"
FAILED_TO_ROTATE = "FailedToRotate"


def exponential_buckets_range(low: float, high: float, count: int) -> list[float]:
    """Go prometheus' ExponentialBucketsRange: `count` buckets from `low` to `high`, evenly spaced in log."""
    factor = (high / low) ** (1 / (count - 1))
    return [low * factor**i for i in range(count - 1)] + [high]


REGISTRY = CollectorRegistry(auto_describe=True)
NODE_PUBLISH = Counter("node_publish", "Total number of node publish calls", ["provider", "os_type"], registry=REGISTRY)
NODE_PUBLISH_ERROR = Counter(
    "node_publish_error", "Total number of node publish calls with error", ["provider", "error_type", "os_type"],
    registry=REGISTRY,
)
ROTATION_RECONCILE = Counter(
    "rotation_reconcile", "Total number of rotation reconciles", ["provider", "os_type", "rotated"], registry=REGISTRY
)
ROTATION_RECONCILE_ERROR = Counter(
    "rotation_reconcile_error", "Total number of rotation reconciles with error",
    ["provider", "error_type", "os_type", "rotated"], registry=REGISTRY,
)
ROTATION_RECONCILE_DURATION = Histogram(
    "rotation_reconcile_duration_sec", "Distribution of how long it took to rotate secrets-store content for pods",
    ["os_type"], buckets=exponential_buckets_range(0.1, 2, 11), registry=REGISTRY,
)


class _ProviderMetrics(Collector):
    """The in-process provider's registry, re-exported so one scrape sees both."""

    def collect(self) -> Iterable:
        yield from provider_metrics.REGISTRY.collect()

    def describe(self) -> Iterable:
        return []


REGISTRY.register(_ProviderMetrics())


class Reporter:
    def __init__(self, provider: str) -> None:
        self.provider = provider

    def node_publish(self) -> None:
        NODE_PUBLISH.labels(self.provider, OS_TYPE).inc()

    def node_publish_error(self, error_type: str) -> None:
        NODE_PUBLISH_ERROR.labels(self.provider, error_type, OS_TYPE).inc()

    def rotation(self, seconds: float, rotated: bool) -> None:
        ROTATION_RECONCILE.labels(self.provider, OS_TYPE, str(rotated).lower()).inc()
        ROTATION_RECONCILE_DURATION.labels(OS_TYPE).observe(seconds)

    def rotation_error(self, seconds: float, error_type: str) -> None:
        ROTATION_RECONCILE_ERROR.labels(self.provider, error_type, OS_TYPE, "false").inc()
        ROTATION_RECONCILE_DURATION.labels(OS_TYPE).observe(seconds)


def serve_metrics(addr: str) -> tuple[object, int]:
    """`/metrics` on `[host]:port` in a background thread; returns (server, bound port)."""
    from prometheus_client import disable_created_metrics

    disable_created_metrics()  # the driver's exporter sends no *_created series
    host, port = parse_addr(addr)
    server, _thread = start_http_server(port, host, registry=REGISTRY)
    return server, server.server_address[1]
