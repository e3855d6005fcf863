"""A real `strongroom webhook serve` over TLS, a stand-in Kubernetes API, and AdmissionReviews as the API server sends them."""

from __future__ import annotations

import base64
import copy
import datetime as dt
import json
import ssl
import subprocess
import threading
import time
import uuid
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import jsonpatch
import kubernetes_validate
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.conftest import STRONGROOM, free_port

K8S_VERSION = "1.37.0"  # the newest schema kubernetes-validate ships: a current release
TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
AUTHORITY = "https://strongroom.example.internal/"
API_TOKEN = "stand-in-api-token"


# ---------------------------------------------------------------- certificates

@dataclass
class CA:
    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey
    path: Path

    def issue(self, directory: Path, names: list[str], cn: str = "strongroom-webhook") -> tuple[Path, Path]:
        key = ec.generate_private_key(ec.SECP256R1())
        now = dt.datetime.now(dt.UTC)
        sans = [x509.IPAddress(__import__("ipaddress").ip_address(n)) if n[0].isdigit() else x509.DNSName(n) for n in names]
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
            .issuer_name(self.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=1))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(sans), critical=False)
            .sign(self.key, hashes.SHA256())
        )
        directory.mkdir(parents=True, exist_ok=True)
        cert_path, key_path = directory / "tls.crt", directory / "tls.key"
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()))
        return cert_path, key_path


def make_ca(directory: Path, name: str) -> CA:
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject).issuer_name(subject).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=1)).not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "ca.crt"
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return CA(cert, key, path)


# ---------------------------------------------------------------- stand-in Kubernetes API

def service_account(namespace: str, name: str, annotations: dict[str, str] | None = None) -> dict[str, Any]:
    """A ServiceAccount as `kubectl get sa NAME -o json` prints it from a 1.3x API server."""
    meta: dict[str, Any] = {
        "name": name,
        "namespace": namespace,
        "uid": str(uuid.uuid4()),
        "resourceVersion": "40112",
        "creationTimestamp": "2026-12-04T17:01:22Z",
    }
    if annotations is not None:
        meta["annotations"] = annotations
    return {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta}


def _status(code: int, reason: str, message: str, details: dict | None = None) -> dict[str, Any]:
    """The API server's metav1.Status error body."""
    body = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": message,
            "reason": reason, "code": code}
    if details:
        body["details"] = details
    return body


class FakeKubeAPI:
    """A stand-in for kube-apiserver, since a real one cannot run here.

    It serves only what the webhook reads, in the real wire format over HTTPS (its own
    CA): `GET /api/v1/namespaces/{ns}/serviceaccounts/{name}` answering a v1
    ServiceAccount, or the API server's `Status` body for 401 (neither the bearer token nor a client certificate of its CA),
    404 (`serviceaccounts "x" not found`, reason NotFound) and 403 for any other
    resource (the webhook's RBAC allows serviceaccounts only). Every path asked for is
    recorded, so tests can see what the webhook sent.
    """

    def __init__(self, ca: CA, directory: Path) -> None:
        self.accounts: dict[tuple[str, str], dict[str, Any]] = {}
        self.requests: list[str] = []
        cert, key = ca.issue(directory / "api", ["127.0.0.1", "localhost"], cn="kube-apiserver")
        api = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _send(self, code: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                api.requests.append(self.path)
                client_cert = self.connection.getpeercert()  # verified against the cluster CA when sent
                if self.headers.get("Authorization") != f"Bearer {API_TOKEN}" and not client_cert:
                    return self._send(401, _status(401, "Unauthorized", "Unauthorized"))
                parts = self.path.split("?")[0].strip("/").split("/")
                if len(parts) == 6 and parts[:3] == ["api", "v1", "namespaces"] and parts[4] == "serviceaccounts":
                    sa = api.accounts.get((parts[3], parts[5]))
                    if sa is None:
                        return self._send(404, _status(404, "NotFound", f'serviceaccounts "{parts[5]}" not found',
                                                       {"name": parts[5], "kind": "serviceaccounts"}))
                    return self._send(200, sa)
                return self._send(403, _status(403, "Forbidden", f"forbidden: cannot get path {self.path!r}"))

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert, key)
        ctx.load_verify_locations(cafile=str(ca.path))
        ctx.verify_mode = ssl.CERT_OPTIONAL  # a client certificate (kind's kubeconfigs) or a bearer token
        self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
        self.url = f"https://127.0.0.1:{self.httpd.server_address[1]}"
        self.ca = ca
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def add(self, namespace: str, name: str, annotations: dict[str, str] | None = None) -> dict[str, Any]:
        sa = service_account(namespace, name, annotations)
        self.accounts[(namespace, name)] = sa
        return sa

    def reads_of(self, namespace: str, name: str) -> int:
        return self.requests.count(f"/api/v1/namespaces/{namespace}/serviceaccounts/{name}")

    def kubeconfig(self, path: Path) -> Path:
        """A kubeconfig as `kind get kubeconfig` writes one (CA inline, here a bearer token user)."""
        ca_data = base64.b64encode(self.ca.path.read_bytes()).decode()
        path.write_text(json.dumps({
            "apiVersion": "v1", "kind": "Config", "current-context": "stand-in", "preferences": {},
            "clusters": [{"name": "stand-in", "cluster": {"server": self.url, "certificate-authority-data": ca_data}}],
            "users": [{"name": "webhook", "user": {"token": API_TOKEN}}],
            "contexts": [{"name": "stand-in", "context": {"cluster": "stand-in", "user": "webhook"}}],
        }))
        return path

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


# ---------------------------------------------------------------- the webhook process

@dataclass
class Webhook:
    url: str
    ca: str
    proc: subprocess.Popen
    log: Path
    cert_file: Path
    key_file: Path

    @property
    def verify(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=self.ca)

    def get(self, path: str) -> httpx.Response:
        return httpx.get(f"{self.url}{path}", verify=self.verify, timeout=10)

    def post(self, body: bytes, content_type: str | None = "application/json", **kw: Any) -> httpx.Response:
        headers = {"Content-Type": content_type} if content_type else {}
        return httpx.post(f"{self.url}/mutate-v1-pod?timeout=10s", content=body, headers=headers, verify=self.verify,
                          timeout=30, **kw)

    def review(self, review: dict[str, Any]) -> dict[str, Any]:
        r = self.post(json.dumps(review).encode())
        assert r.status_code == 200, r.text
        assert r.headers["content-type"] == "application/json"
        return r.json()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def start_webhook(directory: Path, ca: CA, api: FakeKubeAPI, *extra: str) -> Webhook:
    cert, key = ca.issue(directory / "certs", ["localhost", "127.0.0.1"])
    kubeconfig = api.kubeconfig(directory / "kubeconfig")
    port = free_port()
    log = directory / "webhook.log"
    with open(log, "ab") as out:  # the webhook keeps its own descriptor
        proc = subprocess.Popen(
            [*STRONGROOM, "webhook", "serve", "--port", str(port), "--bind", "127.0.0.1", "--tls-cert-file", str(cert),
             "--tls-private-key-file", str(key), "--kubeconfig", str(kubeconfig), *extra],
            stdout=out, stderr=subprocess.STDOUT,
        )
    return wait_healthy(Webhook(f"https://localhost:{port}", str(ca.path), proc, log, cert, key))


def wait_healthy(hook: Webhook, timeout: float = 20.0) -> Webhook:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if hook.proc.poll() is not None:
            raise RuntimeError(f"webhook exited early:\n{hook.log.read_text()}")
        try:
            if hook.get("/healthz").status_code == 200:
                return hook
        except (httpx.HTTPError, OSError):
            pass
        time.sleep(0.05)
    hook.stop()
    raise RuntimeError(f"webhook not healthy within {timeout}s:\n{hook.log.read_text()}")


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> CA:
    return make_ca(tmp_path_factory.mktemp("pki"), "stand-in cluster CA")


@pytest.fixture(scope="module")
def kube_api(pki, tmp_path_factory):
    api = FakeKubeAPI(pki, tmp_path_factory.mktemp("kube-api"))
    yield api
    api.close()


@pytest.fixture(scope="module")
def webhook(pki, kube_api, tmp_path_factory):
    hook = start_webhook(tmp_path_factory.mktemp("webhook"), pki, kube_api, "--tenant-id", TENANT,
                         "--authority-host", AUTHORITY)
    yield hook
    hook.stop()


# ---------------------------------------------------------------- pods and reviews

def deployment_pod(namespace: str = "default", sa: str = "workload-identity-sa", labelled: bool = True,
                   annotations: dict[str, str] | None = None) -> dict[str, Any]:
    """A Deployment's pod as the API server hands it to mutating webhooks.

    By then the built-in admission plugins have run: ServiceAccount added the
    kube-api-access projected volume and its mounts, DefaultTolerationSeconds the two
    tolerations, defaulting filled in the rest; the name is still only generateName and
    the namespace is not set in the object (it is in the request).
    """
    labels = {"app": "quick-start", "pod-template-hash": "6c9d7f8b5d"}
    if labelled:
        labels["azure.workload.identity/use"] = "true"
    api_access = {
        "name": "kube-api-access-x7k2p",
        "projected": {
            "defaultMode": 420,
            "sources": [
                {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
                {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
                {"downwardAPI": {"items": [{"fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"},
                                            "path": "namespace"}]}},
            ],
        },
    }
    mount = {"name": "kube-api-access-x7k2p", "readOnly": True,
             "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount"}

    def container(name: str, image: str) -> dict[str, Any]:
        return {
            "name": name, "image": image, "resources": {}, "volumeMounts": [dict(mount)],
            "terminationMessagePath": "/dev/termination-log", "terminationMessagePolicy": "File",
            "imagePullPolicy": "IfNotPresent",
        }

    pod: dict[str, Any] = {
        "kind": "Pod",
        "apiVersion": "v1",
        "metadata": {
            "generateName": "quick-start-6c9d7f8b5d-",
            "creationTimestamp": None,
            "labels": labels,
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "quick-start-6c9d7f8b5d",
                                 "uid": "0d6f1f3e-8f7e-4c55-9a35-3f8a9b1f2c11", "controller": True,
                                 "blockOwnerDeletion": True}],
            "managedFields": [{"manager": "kube-controller-manager", "operation": "Update", "apiVersion": "v1",
                               "time": "2026-12-04T17:02:00Z", "fieldsType": "FieldsV1", "fieldsV1": {"f:metadata": {}}}],
        },
        "spec": {
            "volumes": [api_access],
            "initContainers": [container("migrate", "ghcr.io/example/migrate:1.2")],
            "containers": [container("app", "ghcr.io/azure/azure-workload-identity/msal-go"),
                           container("sidecar", "docker.io/library/busybox:1.36")],
            "restartPolicy": "Always",
            "terminationGracePeriodSeconds": 30,
            "dnsPolicy": "ClusterFirst",
            "serviceAccountName": sa,
            "serviceAccount": sa,
            "securityContext": {},
            "schedulerName": "default-scheduler",
            "tolerations": [
                {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute",
                 "tolerationSeconds": 300},
                {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute",
                 "tolerationSeconds": 300},
            ],
            "priority": 0,
            "enableServiceLinks": True,
            "preemptionPolicy": "PreemptLowerPriority",
        },
        "status": {},
    }
    if annotations:
        pod["metadata"]["annotations"] = annotations
    return pod


def admission_review(pod: dict[str, Any], namespace: str = "default", version: str = "v1",
                     uid: str | None = None) -> dict[str, Any]:
    """An AdmissionReview as kube-apiserver POSTs it for a pod CREATE (admission.k8s.io/v1 or v1beta1)."""
    return {
        "kind": "AdmissionReview",
        "apiVersion": f"admission.k8s.io/{version}",
        "request": {
            "uid": uid or str(uuid.uuid4()),
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "requestKind": {"group": "", "version": "v1", "kind": "Pod"},
            "requestResource": {"group": "", "version": "v1", "resource": "pods"},
            "namespace": namespace,
            "operation": "CREATE",
            "userInfo": {"username": "system:serviceaccount:kube-system:replicaset-controller",
                         "uid": "5e0ad3c2-3f2b-4b0e-9d3c-6a1e8e6c2b77",
                         "groups": ["system:serviceaccounts", "system:serviceaccounts:kube-system",
                                    "system:authenticated"]},
            "object": copy.deepcopy(pod),
            "oldObject": None,
            "dryRun": False,
            "options": {"kind": "CreateOptions", "apiVersion": "meta.k8s.io/v1"},
        },
    }


def apply_response(pod: dict[str, Any], response: dict[str, Any]) -> dict[str, Any]:
    """What the API server does with an allowed response: apply the JSON Patch, then validate the pod."""
    assert response["allowed"] is True, response
    if "patch" not in response:
        assert "patchType" not in response
        return pod
    assert response["patchType"] == "JSONPatch"
    ops = json.loads(base64.b64decode(response["patch"]))
    patched = jsonpatch.apply_patch(pod, ops)
    validated = {k: v for k, v in patched.items() if k != "status"}  # status is the kubelet's, empty here
    kubernetes_validate.validate(validated, K8S_VERSION, strict=True)
    return patched


def env_of(container: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e.get("value", "") for e in container.get("env", [])}


def containers_by_name(pod: dict[str, Any]) -> dict[str, dict[str, Any]]:
    spec = pod["spec"]
    return {c["name"]: c for c in spec.get("initContainers", []) + spec["containers"]}
