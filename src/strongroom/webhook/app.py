"""The webhook's HTTPS routes: POST /mutate-v1-pod, GET /healthz, GET /metrics.

Who may call: the port is meant for the API server only (the deploy/ NetworkPolicy
admits nothing else), but nothing here trusts the caller: a review costs at most
MAX_BODY bytes of memory, one bounded ServiceAccount read and a patch of a few
operations per container; a body that is not an AdmissionReview is answered with a
denial, never an HTTP error page or a stack trace.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import AsyncIterator

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from strongroom.webhook import metrics, review
from strongroom.webhook.kube import ServiceAccounts
from strongroom.webhook.mutation import Denied, WebhookConfig, is_labelled, patch_for, service_account_name

log = logging.getLogger("strongroom.webhook")
JSON = "application/json"


async def _read_capped(request: Request) -> bytes:
    length = request.headers.get("content-length")
    too_large = Denied(f"request entity is too large; limit is {review.MAX_BODY} bytes", 413)
    if length is not None and (not length.isdigit() or int(length) > review.MAX_BODY):
        raise too_large
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > review.MAX_BODY:
            raise too_large
    return bytes(body)


def build_app(service_accounts: ServiceAccounts, config: WebhookConfig) -> Starlette:
    async def mutate(request: Request) -> Response:
        started = time.perf_counter()
        try:
            body = await _read_capped(request)
            parsed = review.parse(body, request.headers.get("content-type"))
        except Denied as exc:
            metrics.REVIEWS.labels("invalid").inc()
            return Response(review.denial(exc), media_type=JSON)
        namespace = parsed.namespace
        try:
            if not is_labelled(parsed.pod):
                metrics.REVIEWS.labels("unchanged").inc()
                return Response(review.allowed(parsed, []), media_type=JSON)
            sa_name = service_account_name(parsed.pod)
            sa = await service_accounts.get(namespace, sa_name)
            patch = patch_for(parsed.pod, sa, config)
        except Denied as exc:
            metrics.REVIEWS.labels("denied").inc()
            log.info("denied pod in namespace %r: %s", namespace[:80], exc.message)
            return Response(review.denial(exc, parsed.api_version, parsed.uid), media_type=JSON)
        except Exception:  # a bug here must still answer the API server with a review, never a traceback
            metrics.REVIEWS.labels("denied").inc()
            log.exception("review of a pod in namespace %r failed", namespace[:80])
            failed = Denied("internal error while mutating the pod", 500)
            return Response(review.denial(failed, parsed.api_version, parsed.uid), media_type=JSON)
        finally:
            metrics.MUTATION_REQUEST.labels(metrics.namespace_label(namespace)).observe(time.perf_counter() - started)
        metrics.REVIEWS.labels("mutated" if patch else "unchanged").inc()
        return Response(review.allowed(parsed, patch), media_type=JSON)

    async def healthz(request: Request) -> Response:
        return PlainTextResponse("ok")

    async def metrics_route(request: Request) -> Response:
        return Response(generate_latest(metrics.REGISTRY), media_type=CONTENT_TYPE_LATEST)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        await service_accounts.aclose()

    return Starlette(
        routes=[
            Route("/mutate-v1-pod", mutate, methods=["POST"]),
            Route("/healthz", healthz, methods=["GET"]),
            Route("/metrics", metrics_route, methods=["GET"]),
        ],
        lifespan=lifespan,
    )
