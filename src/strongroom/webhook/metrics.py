"""Prometheus metrics of the webhook, in a registry of its own.

`azwi_mutation_request` is upstream's histogram (pkg/webhook/stats_reporter.go: seconds per
mutation request, label namespace), so dashboards built for AKS keep working. Label values
come from requests anyone who reaches the port can send, so namespaces are counted only
when they are valid names, and at most MAX_NAMESPACES distinct ones (then "other").
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

from strongroom.webhook.kube import DNS_LABEL

MAX_NAMESPACES = 1000

REGISTRY = CollectorRegistry()
MUTATION_REQUEST = Histogram(
    "azwi_mutation_request",
    "Distribution of how long it took for the azure-workload-identity mutation request",
    ["namespace"],
    registry=REGISTRY,
)
REVIEWS = Counter(
    "strongroom_webhook_reviews",
    "AdmissionReviews answered, by result: mutated, unchanged, denied, invalid (not an AdmissionReview)",
    ["result"],
    registry=REGISTRY,
)
_namespaces: set[str] = set()


def namespace_label(namespace: str) -> str:
    if not DNS_LABEL.fullmatch(namespace):
        return ""
    if namespace not in _namespaces and len(_namespaces) >= MAX_NAMESPACES:
        return "other"
    _namespaces.add(namespace)
    return namespace
