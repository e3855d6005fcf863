"""Helpers for the identity tests: identities, service accounts and federated credentials set up
through the CLI as a user would, raw token requests, and a second instance with its own CA."""

from __future__ import annotations

import contextlib
import json
import ssl
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import jwt
import pytest

from strongroom.barrier import Barrier, SealedStore
from strongroom.barrier.keyring import load_or_create_keyring
from strongroom.issuer.cluster import LOCAL, Cluster
from strongroom.settings import Settings
from strongroom.storage import open_storage
from tests.conftest import Server, start_server

JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
EXCHANGE = "api://AzureADTokenExchange"


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def claims_of(token: str) -> dict[str, Any]:
    """A JWT's claims without verification (the tests look at what the server put in)."""
    return jwt.decode(token, options={"verify_signature": False})


@dataclass
class Federated:
    """A managed identity federated with a service account of a cluster."""

    client_id: str
    principal_id: str
    resource_id: str
    resource_group: str
    name: str
    namespace: str
    service_account: str
    issuer: str


def http(server: Server) -> httpx.Client:
    return httpx.Client(verify=ssl.create_default_context(cafile=server.ca), timeout=30)


def token_request(server: Server, form: dict[str, str], tenant: str | None = None) -> httpx.Response:
    with http(server) as c:
        return c.post(f"{server.url}/{tenant or server.admin['tenantId']}/oauth2/v2.0/token", data=form)


def vault_scope(server: Server) -> str:
    return f"https://vault.localhost:{server.port}/.default"


def assertion_form(server: Server, client_id: str, assertion: str) -> dict[str, str]:
    """What WorkloadIdentityCredential sends (including the CAE `claims` it always adds)."""
    return {
        "client_id": client_id,
        "client_assertion": assertion,
        "client_assertion_type": JWT_BEARER,
        "grant_type": "client_credentials",
        "scope": vault_scope(server),
        "claims": json.dumps({"access_token": {"xms_cc": {"values": ["CP1"]}}}),
    }


class Admin:
    """The instance administrator over HTTP (what the CLI does, without a process per call: keeps tests fast)."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.http = http(server)
        a = server.admin
        self.subscription = a["subscriptionId"]
        r = token_request(server, {"grant_type": "client_credentials", "client_id": a["clientId"],
                                   "client_secret": a["clientSecret"], "scope": "https://management.azure.com/.default"})
        r.raise_for_status()
        self.headers = {"Authorization": f"Bearer {r.json()['access_token']}"}

    def call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return self.http.request(method, f"{self.server.url}{path}", headers=self.headers, **kwargs)

    def ok(self, method: str, path: str, **kwargs: Any) -> Any:
        r = self.call(method, path, **kwargs)
        assert r.status_code < 300, r.text
        return r.json() if r.content else None

    def identity_path(self, rg: str, name: str) -> str:
        return (f"/subscriptions/{self.subscription}/resourceGroups/{rg}/providers/"
                f"Microsoft.ManagedIdentity/userAssignedIdentities/{name}")

    def create_identity(self, rg: str, name: str) -> dict[str, Any]:
        return self.ok("PUT", self.identity_path(rg, name), json={"location": "local"})

    def put_fic(self, rg: str, identity: str, name: str, issuer: str, subject: str, audiences: list[str]) -> httpx.Response:
        body = {"properties": {"issuer": issuer, "subject": subject, "audiences": audiences}}
        return self.call("PUT", f"{self.identity_path(rg, identity)}/federatedIdentityCredentials/{name}", json=body)

    def service_account(self, namespace: str, name: str) -> dict[str, Any]:
        body = {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": name}}
        return self.ok("POST", f"/clusters/local/api/v1/namespaces/{namespace}/serviceaccounts", json=body)

    def cluster_token(self, namespace: str, name: str, audience: str = EXCHANGE, duration: int = 3600) -> str:
        body = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
                "spec": {"audiences": [audience], "expirationSeconds": duration}}
        r = self.ok("POST", f"/clusters/local/api/v1/namespaces/{namespace}/serviceaccounts/{name}/token", json=body)
        return r["status"]["token"]

    def issuer(self) -> str:
        return self.ok("GET", "/clusters/local/.well-known/openid-configuration")["issuer"]

    def federate(self, *, issuer: str | None = None, subject: str | None = None, audience: str = EXCHANGE) -> Federated:
        """A managed identity trusting a (new) service account of the local cluster."""
        rg, name, ns, sa = unique("rg"), unique("id"), unique("ns"), unique("sa")
        identity = self.create_identity(rg, name)
        self.service_account(ns, sa)
        issuer = issuer or self.issuer()
        r = self.put_fic(rg, name, "fic-main", issuer, subject or f"system:serviceaccount:{ns}:{sa}", [audience])
        assert r.status_code == 201, r.text
        props = identity["properties"]
        return Federated(props["clientId"], props["principalId"], identity["id"], rg, name, ns, sa, issuer)


@pytest.fixture(scope="session")
def admin(server: Server) -> Admin:
    a = Admin(server)
    yield a
    a.http.close()


@contextlib.contextmanager
def local_cluster(server: Server) -> Iterator[Cluster]:
    """The instance's cluster opened from its state dir, to mint tokens with its real key but chosen times
    (as someone holding the master key could; a client could not)."""
    storage = open_storage(Settings(state_dir=server.state_dir, port=server.port).storage)
    try:
        store = SealedStore(storage, Barrier(load_or_create_keyring(server.state_dir)))
        yield Cluster(store, LOCAL, f"{server.url}/clusters/{LOCAL}")
    finally:
        storage.close()


def assert_entra_error(response: httpx.Response, code: int, error: str = "invalid_client", status: int = 401) -> dict:
    """Entra's error JSON: error, error_description starting with AADSTSxxxx:, error_codes, timestamp, ids."""
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error"] == error
    assert body["error_description"].startswith(f"AADSTS{code}: "), body["error_description"]
    assert body["error_codes"] == [code]
    for field in ("timestamp", "trace_id", "correlation_id"):
        assert isinstance(body[field], str) and body[field]
    uuid.UUID(body["trace_id"])
    uuid.UUID(body["correlation_id"])
    return body


@pytest.fixture(scope="session")
def second_server(tmp_path_factory, server: Server) -> Server:
    """Another instance, with its own CA, two workers, and the first instance's CA configured for issuers."""
    srv = start_server(tmp_path_factory.mktemp("second"), "--workers", "2", "--issuer-ca-file", server.ca)
    yield srv
    srv.stop()
