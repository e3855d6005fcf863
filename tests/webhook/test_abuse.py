"""What anyone who reaches the webhook's port can send it, and what it costs them.

The port is meant for the API server only, but nothing is trusted: whatever is not an
AdmissionReview gets what controller-runtime (v0.19, pkg/webhook/admission/http.go
`Webhook.ServeHTTP`, upstream's server) answers: HTTP 200 with an AdmissionReview whose
response is `allowed: false` and a status code/message, never an error page, a 500 or a
traceback. Bodies are capped at controller-runtime's 7 MiB.
"""

from __future__ import annotations

import json
import socket
import ssl

from tests.webhook.conftest import admission_review, deployment_pod

MAX_BODY = 7 * 1024 * 1024


def _denial(r, code: int, message_part: str, uid: str = "", version: str = "v1") -> None:
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["apiVersion"] == f"admission.k8s.io/{version}" and body["kind"] == "AdmissionReview"
    response = body["response"]
    assert response["uid"] == uid and response["allowed"] is False
    assert response["status"]["code"] == code
    assert message_part in response["status"]["message"], response
    assert "Traceback" not in r.text


def _still_serving(webhook) -> None:
    assert webhook.get("/healthz").status_code == 200


def test_body_over_7_mib_is_refused_before_it_is_read_whole(webhook):
    """controller-runtime: `request entity is too large; limit is 7340032 bytes`, code 413."""
    _denial(webhook.post(b"{" + b" " * MAX_BODY + b"}"), 413, "request entity is too large; limit is 7340032 bytes")
    _still_serving(webhook)


def test_body_over_7_mib_without_content_length_is_cut_off(webhook):
    """A chunked body gives no length up front: reading stops at the cap, not at the end of the stream."""
    def chunks():
        for _ in range(16):
            yield b" " * (1024 * 1024)

    _denial(webhook.post(chunks()), 413, "limit is 7340032 bytes")
    _still_serving(webhook)


def test_a_content_length_that_lies_is_refused(webhook):
    """A Content-Length far above the cap is refused from the header alone (nothing is waited for)."""
    raw = socket.create_connection(("127.0.0.1", int(webhook.url.rsplit(":", 1)[1])), timeout=10)
    with ssl.create_default_context(cafile=webhook.ca).wrap_socket(raw, server_hostname="localhost") as tls:
        tls.sendall(b"POST /mutate-v1-pod HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
                    b"Content-Length: 999999999999\r\n\r\n{}")
        answer = b""
        while b"request entity" not in answer and (chunk := tls.recv(65536)):
            answer += chunk
        answer = answer.decode()
    assert answer.startswith("HTTP/1.1 200") and "request entity is too large" in answer


def test_bad_json_is_a_400_denial(webhook):
    _denial(webhook.post(b'{"kind": "AdmissionReview", "request": {'), 400, "couldn't decode the AdmissionReview")
    _denial(webhook.post(b"[1, 2, 3]"), 400, "couldn't decode the AdmissionReview")
    _denial(webhook.post(b"[" * 100_000 + b"]" * 100_000), 400, "couldn't decode the AdmissionReview")


def test_wrong_content_type_is_a_400_denial(webhook):
    """controller-runtime accepts exactly `application/json`."""
    body = json.dumps(admission_review(deployment_pod())).encode()
    _denial(webhook.post(body, content_type="text/plain"), 400, "contentType=text/plain, expected application/json")
    _denial(webhook.post(body, content_type=None), 400, "contentType=, expected application/json")


def test_empty_body_and_empty_request(webhook):
    _denial(webhook.post(b""), 400, "request body is empty")
    _denial(webhook.post(b'{"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview"}'), 400,
            "got an empty AdmissionRequest")


def test_unknown_review_version_is_a_400_denial(webhook):
    review = admission_review(deployment_pod())
    review["apiVersion"] = "admission.k8s.io/v2"
    _denial(webhook.post(json.dumps(review).encode()), 400,
            'no kind "AdmissionReview" is registered for version "admission.k8s.io/v2"')
    review["apiVersion"], review["kind"] = "admission.k8s.io/v1", "TokenReview"
    _denial(webhook.post(json.dumps(review).encode()), 400, 'no kind "TokenReview"')


def test_review_without_an_object_is_denied_with_its_uid(webhook):
    review = admission_review(deployment_pod(), version="v1beta1", uid="c0ffee00-0000-4000-8000-000000000001")
    review["request"]["object"] = None
    _denial(webhook.post(json.dumps(review).encode()), 400, "there is no content to decode",
            uid="c0ffee00-0000-4000-8000-000000000001", version="v1beta1")


def test_names_from_the_pod_cannot_steer_the_api_read(webhook, kube_api):
    """A mutating webhook sees the pod before the API server validates it: a serviceAccountName or namespace that is
    not a Kubernetes name is denied and never put in a URL to the API server."""
    before = list(kube_api.requests)
    for namespace, sa in [("default", "../../../api/v1/namespaces/kube-system/secrets/admin"),
                          ("default", "a%2Fb"), ("default", "UPPER"), ("default", "x" * 254),
                          ("../kube-system", "default"), ("", "default")]:
        review = admission_review(deployment_pod(sa=sa), namespace)
        r = webhook.post(json.dumps(review).encode())
        assert r.json()["response"]["allowed"] is False
        assert r.json()["response"]["status"]["message"].startswith("invalid "), r.text
    assert kube_api.requests == before


def test_other_paths_and_methods_get_plain_errors(webhook):
    assert webhook.get("/mutate-v1-pod").status_code == 405
    assert webhook.get("/validate-v1-pod").status_code == 404


def test_metrics_count_reviews_with_bounded_labels(webhook):
    """Prometheus: upstream's `azwi_mutation_request` histogram (pkg/webhook/stats_reporter.go, label namespace) and
    a counter by result; namespaces that are not names are not used as label values."""
    review = admission_review(deployment_pod(sa="../x"), namespace="Not_A_Namespace")
    webhook.post(json.dumps(review).encode())
    text = webhook.get("/metrics").text
    assert 'azwi_mutation_request_count{namespace="default"}' in text
    assert "Not_A_Namespace" not in text
    assert 'strongroom_webhook_reviews_total{result="invalid"}' in text
    assert 'strongroom_webhook_reviews_total{result="denied"}' in text
