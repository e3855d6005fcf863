"""The local cluster over HTTP: its public OIDC issuer documents and a Kubernetes-shaped service-account API.

Public, as a cluster's issuer must be for Entra to fetch it:
  GET /clusters/{cluster}/.well-known/openid-configuration
  GET /clusters/{cluster}/openid/v1/jwks
Instance administrator only (management token), with Kubernetes' paths and objects; every error here,
whoever raised it, is rendered as a Kubernetes Status (server/errors.py: these routes are the Kubernetes plane):
  GET|POST  /clusters/{cluster}/api/v1/namespaces/{ns}/serviceaccounts
  GET       /clusters/{cluster}/api/v1/serviceaccounts
  GET|DELETE /clusters/{cluster}/api/v1/namespaces/{ns}/serviceaccounts/{name}
  POST      /clusters/{cluster}/api/v1/namespaces/{ns}/serviceaccounts/{name}/token   (TokenRequest)
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from strongroom.audit import facts as audit
from strongroom.authz.roles import NODE_AGENT_TOKEN_ACTION
from strongroom.issuer.cluster import DEFAULT_DURATION, Cluster, ClusterError, ServiceAccount
from strongroom.server.guards import admin, public, route, runtime
from strongroom.server.http import JSON, json_body


class JWKS(JSON):
    media_type = "application/jwk-set+json"


def _ts(ts: int) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def sa_json(sa: ServiceAccount) -> dict[str, Any]:
    metadata: dict[str, Any] = {
        "name": sa.name,
        "namespace": sa.namespace,
        "uid": sa.uid,
        "creationTimestamp": _ts(sa.created),
    }
    if sa.annotations:
        metadata["annotations"] = sa.annotations
    return {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": metadata}


def _cluster(request: Request) -> Cluster:
    rt = runtime(request)
    assert rt.identity is not None
    cluster = rt.identity.cluster
    if request.path_params["cluster"] != cluster.name:
        raise ClusterError(404, "NotFound", f"cluster \"{request.path_params['cluster']}\" not found")
    return cluster


def _admin(request: Request) -> Cluster:
    """The route's guard admitted the caller: name the service account resource, find the cluster."""
    p = request.path_params
    resource = f"/clusters/{p['cluster']}" + (f"/namespaces/{p['ns']}" if "ns" in p else "")
    resource += "/serviceaccounts" + (f"/{p['name']}" if "name" in p else "")
    audit.refine(request.scope, resource_id=resource)
    return _cluster(request)


# -- public issuer documents -------------------------------------------------------------


async def openid_configuration(request: Request) -> Response:
    cluster = _cluster(request)
    return JSON(cluster.discovery(), headers={"Cache-Control": "public, max-age=3600"})


async def jwks(request: Request) -> Response:
    cluster = _cluster(request)
    return JWKS(cluster.jwks(), headers={"Cache-Control": "public, max-age=3600"})


# -- service accounts ----------------------------------------------------------------------


async def create_service_account(request: Request) -> Response:
    cluster = _admin(request)
    body = await json_body(request)
    metadata = body.get("metadata") if isinstance(body, dict) else None
    if not isinstance(metadata, dict) or not isinstance(metadata.get("name"), str):
        raise ClusterError(400, "BadRequest", "the body must be a ServiceAccount with metadata.name")
    namespace = request.path_params["ns"]
    if metadata.get("namespace", namespace) != namespace:
        raise ClusterError(400, "BadRequest", "the namespace of the provided object does not match the namespace sent on the request")
    annotations = metadata.get("annotations") or {}
    if not isinstance(annotations, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in annotations.items()):
        raise ClusterError(400, "BadRequest", "metadata.annotations must map strings to strings")
    sa = await run_in_threadpool(cluster.create_service_account, namespace, metadata["name"], annotations)
    return JSON(sa_json(sa), status_code=201)


async def list_service_accounts(request: Request) -> Response:
    cluster = _admin(request)
    items = cluster.service_accounts(request.path_params.get("ns"))
    return JSON({"apiVersion": "v1", "kind": "ServiceAccountList", "metadata": {}, "items": [sa_json(s) for s in items]})


async def get_service_account(request: Request) -> Response:
    cluster = _admin(request)
    return JSON(sa_json(cluster.get_service_account(request.path_params["ns"], request.path_params["name"])))


async def delete_service_account(request: Request) -> Response:
    cluster = _admin(request)
    sa = await run_in_threadpool(cluster.delete_service_account, request.path_params["ns"], request.path_params["name"])
    return JSON(sa_json(sa))


async def create_token(request: Request) -> Response:
    """TokenRequest (authentication.k8s.io/v1), as `kubectl create token` sends it."""
    cluster = _admin(request)
    body = await json_body(request)
    spec = body.get("spec") if isinstance(body, dict) else None
    if not isinstance(spec, dict):
        raise ClusterError(400, "BadRequest", "the body must be a TokenRequest with a spec")
    audiences = spec.get("audiences") or [cluster.issuer_url]
    duration = spec.get("expirationSeconds", DEFAULT_DURATION)
    bound = spec.get("boundObjectRef")
    pod_name = None
    if bound is not None:
        if not isinstance(bound, dict) or bound.get("kind") != "Pod" or not isinstance(bound.get("name"), str):
            raise ClusterError(400, "BadRequest", "spec.boundObjectRef: only a Pod (kind Pod, with a name) is supported")
        pod_name = bound["name"]
    p = request.path_params
    token, expires = cluster.token(p["ns"], p["name"], audiences, duration, pod_name)
    return JSON(
        {
            "kind": "TokenRequest",
            "apiVersion": "authentication.k8s.io/v1",
            "metadata": {"name": p["name"], "namespace": p["ns"], "creationTimestamp": None},
            "spec": {"audiences": audiences, "expirationSeconds": duration, "boundObjectRef": bound},
            "status": {"token": token, "expirationTimestamp": _ts(expires)},
        },
        status_code=201,
        headers={"Cache-Control": "no-store"},
    )


_C = "/clusters/{cluster}"
_NS = _C + "/api/v1/namespaces/{ns}/serviceaccounts"
routes = [
    route(_C + "/.well-known/openid-configuration", openid_configuration, ["GET"], public()),
    route(_C + "/openid/v1/jwks", jwks, ["GET"], public()),
    route(_C + "/api/v1/serviceaccounts", list_service_accounts, ["GET"], admin("ServiceAccountList")),
    route(_NS, list_service_accounts, ["GET"], admin("ServiceAccountList")),
    route(_NS, create_service_account, ["POST"], admin("ServiceAccountCreate")),
    route(_NS + "/{name}", get_service_account, ["GET"], admin("ServiceAccountGet")),
    route(_NS + "/{name}", delete_service_account, ["DELETE"], admin("ServiceAccountDelete")),
    # The admin, or a node agent holding its own permission (the built-in role "Strongroom Node Agent").
    route(_NS + "/{name}/token", create_token, ["POST"], admin("ServiceAccountTokenCreate", delegated=NODE_AGENT_TOKEN_ACTION)),
]
