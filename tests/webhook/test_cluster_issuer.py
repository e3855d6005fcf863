"""From nothing to a pod reading a secret, with the cluster's own service-account issuer.

A real cluster's issuer (`kubectl get --raw /.well-known/openid-configuration`) is its API
server, serving TLS with the cluster's private CA. Strongroom trusts it through
`strongroom up --issuer-ca-file` (in deploy/, the kube-root-ca.crt ConfigMap). The steps:
the seed's walkthrough with the federated credential's issuer set to the cluster's; the
webhook mutates the pod; the unmodified azure-identity + azure-keyvault-secrets, given
only the environment the webhook injected and the token kubelet would project, read the
secret.
"""

from __future__ import annotations

import base64
import hashlib
import json
import ssl
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import jwt
import pytest
from azure.identity import WorkloadIdentityCredential
from azure.keyvault.secrets import SecretClient
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from tests.conftest import start_server
from tests.identity.conftest import assert_entra_error, assertion_form, token_request
from tests.webhook.conftest import (
    CA,
    FakeKubeAPI,
    admission_review,
    apply_response,
    deployment_pod,
    env_of,
    make_ca,
    start_webhook,
)


class ClusterIssuer:
    """A stand-in for a cluster's service-account issuer (kube-apiserver cannot run here).

    It serves what kube-apiserver serves, in its format (kubernetes/kubernetes
    pkg/serviceaccount/openidmetadata.go): `/.well-known/openid-configuration` with exactly
    issuer, jwks_uri, response_types_supported, subject_types_supported and
    id_token_signing_alg_values_supported; `/openid/v1/jwks` with the RSA key (kid = the
    base64url SHA-256 of its DER public key, as kube-apiserver derives it). Its TLS
    certificate comes from its own CA, as a cluster's does. `token()` mints what kubelet
    projects into a pod (claims.go: iss, sub, aud, iat, nbf, exp, jti, kubernetes.io).
    """

    def __init__(self, ca: CA, directory: Path) -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        der = self.key.public_key().public_bytes(serialization.Encoding.DER,
                                                 serialization.PublicFormat.SubjectPublicKeyInfo)
        self.kid = base64.urlsafe_b64encode(hashlib.sha256(der).digest()).rstrip(b"=").decode()
        cert, key = ca.issue(directory, ["localhost", "127.0.0.1"], cn="kube-apiserver")
        issuer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_GET(self) -> None:
                if self.path == "/.well-known/openid-configuration":
                    body = {"issuer": issuer.url, "jwks_uri": f"{issuer.url}/openid/v1/jwks",
                            "response_types_supported": ["id_token"], "subject_types_supported": ["public"],
                            "id_token_signing_alg_values_supported": ["RS256"]}
                elif self.path == "/openid/v1/jwks":
                    jwk = json.loads(RSAAlgorithm.to_jwk(issuer.key.public_key()))
                    body = {"keys": [{"use": "sig", "kty": "RSA", "kid": issuer.kid, "alg": "RS256",
                                      "n": jwk["n"], "e": jwk["e"]}]}
                else:
                    self.send_error(404)
                    return
                data = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert, key)
        self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
        self.url = f"https://localhost:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def token(self, namespace: str, service_account: str, pod: str, expiration: int) -> str:
        now = int(time.time())
        claims = {
            "aud": ["api://AzureADTokenExchange"], "exp": now + expiration, "iat": now, "nbf": now,
            "iss": self.url, "jti": str(uuid.uuid4()), "sub": f"system:serviceaccount:{namespace}:{service_account}",
            "kubernetes.io": {"namespace": namespace,
                              "node": {"name": "node-1", "uid": str(uuid.uuid4())},
                              "pod": {"name": pod, "uid": str(uuid.uuid4())},
                              "serviceaccount": {"name": service_account, "uid": str(uuid.uuid4())}},
        }
        return jwt.encode(claims, self.key, algorithm="RS256", headers={"kid": self.kid})

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    directory = tmp_path_factory.mktemp("cluster")
    ca = make_ca(directory / "ca", "kubernetes")  # a cluster CA: what kube-root-ca.crt holds
    issuer = ClusterIssuer(ca, directory / "issuer")
    api = FakeKubeAPI(ca, directory / "api")
    yield ca, issuer, api
    issuer.close()
    api.close()


@pytest.fixture(scope="module")
def strongroom(cluster, tmp_path_factory):
    ca, _, _ = cluster
    srv = start_server(tmp_path_factory.mktemp("strongroom"), "--issuer-ca-file", str(ca.path))
    yield srv
    srv.stop()


def test_pod_reads_its_secret_through_the_webhook_and_the_clusters_own_issuer(cluster, strongroom, tmp_path,
                                                                            monkeypatch):
    ca, issuer, api = cluster
    srv = strongroom
    # The seed's steps with strongroom in place of az; the issuer is the cluster's, as
    # `kubectl get --raw /.well-known/openid-configuration | jq -r .issuer` prints it.
    srv.cli("keyvault", "create", "--name", "kv-cluster", "-g", "rg-cluster")
    srv.cli("keyvault", "secret", "set", "--vault-name", "kv-cluster", "--name", "db-password", "--value", "in-cluster")
    client_id = srv.cli("identity", "create", "--name", "app-id", "-g", "rg-cluster",
                        "--query", "clientId", "-o", "tsv").stdout.strip()
    vault_id = srv.cli("keyvault", "show", "--name", "kv-cluster", "--query", "id", "-o", "tsv").stdout.strip()
    srv.cli("role", "assignment", "create", "--role", "Key Vault Secrets User", "--assignee", client_id,
            "--scope", vault_id)
    srv.cli("identity", "federated-credential", "create", "--name", "kubernetes-federated-credential",
            "--identity-name", "app-id", "-g", "rg-cluster", "--issuer", issuer.url,
            "--subject", "system:serviceaccount:default:workload-identity-sa", "--audiences", "api://AzureADTokenExchange")
    # kubectl apply of the annotated ServiceAccount, then the labelled pod goes through the webhook.
    api.add("default", "workload-identity-sa", {"azure.workload.identity/client-id": client_id})
    tenant = srv.admin["tenantId"]
    hook = start_webhook(tmp_path / "webhook", ca, api, "--tenant-id", tenant, "--authority-host", srv.url)
    try:
        pod = deployment_pod()
        answer = hook.review(admission_review(pod))["response"]
    finally:
        hook.stop()
    patched = apply_response(pod, answer)
    env = env_of(patched["spec"]["containers"][0])
    volume = next(v for v in patched["spec"]["volumes"] if v["name"] == "azure-identity-token")
    projection = volume["projected"]["sources"][0]["serviceAccountToken"]

    # kubelet projects the token at the mount path; here it goes in a temporary file instead.
    token_file = tmp_path / projection["path"]
    token_file.write_text(issuer.token("default", "workload-identity-sa", "quick-start-6c9d7f8b5d-abcde",
                                       projection["expirationSeconds"]))
    assert env["AZURE_FEDERATED_TOKEN_FILE"] == f"/var/run/secrets/azure/tokens/{projection['path']}"
    for name, value in {**env, "AZURE_FEDERATED_TOKEN_FILE": str(token_file)}.items():
        monkeypatch.setenv(name, value)
    assert env["AZURE_AUTHORITY_HOST"] == srv.url and env["AZURE_TENANT_ID"] == tenant

    with WorkloadIdentityCredential(connection_verify=srv.ca) as credential:
        client = SecretClient(srv.vault_url("kv-cluster"), credential, connection_verify=srv.ca)
        assert client.get_secret("db-password").value == "in-cluster"


def test_another_service_account_of_the_same_cluster_is_refused(cluster, strongroom):
    """The federated credential names one subject: a token for another service account is AADSTS700213."""
    _, issuer, _ = cluster
    srv = strongroom
    client_id = srv.cli("identity", "show", "--name", "app-id", "-g", "rg-cluster",
                        "--query", "clientId", "-o", "tsv").stdout.strip()
    token = issuer.token("default", "someone-else", "intruder", 3600)
    body = assert_entra_error(token_request(srv, assertion_form(srv, client_id, token)), 700213)
    assert "system:serviceaccount:default:someone-else" in body["error_description"]
