"""AdmissionReview in and out (admission.k8s.io/v1 and v1beta1), as controller-runtime answers.

Upstream's webhook is served by controller-runtime (v0.19, pkg/webhook/admission/http.go,
`Webhook.ServeHTTP`): the body is capped at 7 MiB, the Content-Type must be exactly
`application/json`, both versions decode into the same shape and the answer is written
in the version that came in. Whatever cannot be read is still answered with HTTP 200
and an AdmissionReview (v1, uid "") whose response is `allowed: false` with a status
code and message, which the API server turns into the pod's rejection.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

import orjson

from strongroom.webhook.mutation import Denied

MAX_BODY = 7 * 1024 * 1024  # controller-runtime's maxRequestSize
VERSIONS = ("admission.k8s.io/v1", "admission.k8s.io/v1beta1")
DEFAULT_VERSION = VERSIONS[0]


@dataclass
class Review:
    api_version: str
    uid: str
    namespace: str
    pod: dict[str, Any]
    request: dict[str, Any]


def parse(body: bytes, content_type: str | None) -> Review:
    """Decode an AdmissionReview; Denied (400) says why it is not one."""
    if not body:
        raise Denied("request body is empty")
    if content_type != "application/json":
        raise Denied(f"contentType={content_type or ''}, expected application/json")
    try:
        doc = orjson.loads(body)  # orjson refuses nesting deeper than 1024
    except orjson.JSONDecodeError as exc:
        raise Denied(f"couldn't decode the AdmissionReview: {exc}") from None
    if not isinstance(doc, dict):
        raise Denied("couldn't decode the AdmissionReview: not a JSON object")
    # Missing apiVersion/kind default to v1 AdmissionReview, as the universal deserializer's defaults do.
    api_version, kind = doc.get("apiVersion") or DEFAULT_VERSION, doc.get("kind") or "AdmissionReview"
    if kind != "AdmissionReview" or api_version not in VERSIONS:
        raise Denied(f'no kind "{kind}" is registered for version "{api_version}"')
    request = doc.get("request")
    if not isinstance(request, dict) or not request:
        raise Denied("got an empty AdmissionRequest")
    uid = request.get("uid")
    uid = uid if isinstance(uid, str) else ""
    namespace = request.get("namespace")
    pod = request.get("object")
    if not isinstance(pod, dict):
        raise _Errored(api_version, uid, "there is no content to decode")
    return Review(api_version, uid, namespace if isinstance(namespace, str) else "", pod, request)


class _Errored(Denied):
    """A denial known after the version and uid were read: answered in that version, uid echoed."""

    def __init__(self, api_version: str, uid: str, message: str, code: int = 400) -> None:
        super().__init__(message, code)
        self.api_version = api_version
        self.uid = uid


def denial(exc: Denied, api_version: str = DEFAULT_VERSION, uid: str = "") -> bytes:
    """`admission.Errored(code, err)` written as an AdmissionReview."""
    api_version = getattr(exc, "api_version", api_version)
    uid = getattr(exc, "uid", uid)
    response = {"uid": uid, "allowed": False, "status": {"code": exc.code, "message": exc.message}}
    return _review(api_version, response)


def allowed(review: Review, patch: list[dict[str, Any]]) -> bytes:
    """`admission.PatchResponseFromRaw`: allowed, with patchType JSONPatch only when there is something to patch."""
    response: dict[str, Any] = {"uid": review.uid, "allowed": True}
    if patch:
        response["patchType"] = "JSONPatch"
        response["patch"] = base64.b64encode(orjson.dumps(patch)).decode("ascii")
    return _review(review.api_version, response)


def _review(api_version: str, response: dict[str, Any]) -> bytes:
    return orjson.dumps({"apiVersion": api_version, "kind": "AdmissionReview", "response": response})
