"""The local cluster: Kubernetes' issuer documents, service accounts and projected tokens, admin-only token requests."""

from __future__ import annotations

import time
import uuid

import jwt
from jwt.algorithms import RSAAlgorithm

from tests.identity.conftest import EXCHANGE, claims_of, http, token_request, unique


def test_discovery_document_has_exactly_the_kubernetes_fields(server):
    with http(server) as c:
        r = c.get(f"{server.url}/clusters/local/.well-known/openid-configuration")
    assert r.status_code == 200
    issuer = f"https://localhost:{server.port}/clusters/local"
    assert r.json() == {
        "issuer": issuer,
        "jwks_uri": f"{issuer}/openid/v1/jwks",
        "response_types_supported": ["id_token"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
    }
    assert server.cli("cluster", "oidc-issuer").stdout == issuer + "\n"


def test_jwks_is_served_as_a_jwk_set_and_differs_from_the_entra_keys(server):
    with http(server) as c:
        cluster = c.get(f"{server.url}/clusters/local/openid/v1/jwks")
        entra = c.get(f"{server.url}/{server.admin['tenantId']}/discovery/v2.0/keys").json()
    assert cluster.headers["content-type"].startswith("application/jwk-set+json")
    keys = cluster.json()["keys"]
    assert keys and all(k["kty"] == "RSA" and k["alg"] == "RS256" and k["use"] == "sig" for k in keys)
    assert {k["kid"] for k in keys}.isdisjoint({k["kid"] for k in entra["keys"]})


def test_token_has_the_claims_of_a_projected_service_account_token(server):
    ns, sa = unique("ns"), unique("sa")
    created = server.cli_json("cluster", "serviceaccount", "create", "--namespace", ns, "--name", sa,
                              "--annotations", "azure.workload.identity/client-id=abc", "team=payments")
    uid = created["metadata"]["uid"]
    uuid.UUID(uid)
    assert created["metadata"]["annotations"] == {"azure.workload.identity/client-id": "abc", "team": "payments"}
    out = server.cli("cluster", "token", "--namespace", ns, "--service-account", sa, "--audience", EXCHANGE,
                     "--duration", "1h", "--pod-name", "web-0").stdout
    assert out.count("\n") == 1 and out.count(".") == 2  # the bare token, as kubectl create token prints it
    token = out.strip()
    assert jwt.get_unverified_header(token) == {"alg": "RS256", "kid": jwt.get_unverified_header(token)["kid"]}
    claims = claims_of(token)
    assert sorted(claims) == ["aud", "exp", "iat", "iss", "jti", "kubernetes.io", "nbf", "sub"]
    assert claims["iss"] == f"https://localhost:{server.port}/clusters/local"
    assert claims["sub"] == f"system:serviceaccount:{ns}:{sa}"
    assert claims["aud"] == [EXCHANGE]
    assert claims["nbf"] == claims["iat"] and claims["exp"] - claims["iat"] == 3600
    assert abs(claims["iat"] - time.time()) < 60
    k8s = claims["kubernetes.io"]
    assert k8s["namespace"] == ns and k8s["serviceaccount"] == {"name": sa, "uid": uid}
    assert k8s["pod"]["name"] == "web-0"
    uuid.UUID(k8s["pod"]["uid"])


def test_token_verifies_against_the_published_jwks(server, admin):
    ns, sa = unique("ns"), unique("sa")
    admin.service_account(ns, sa)
    token = admin.cluster_token(ns, sa)
    with http(server) as c:
        jwks = c.get(f"{server.url}/clusters/local/openid/v1/jwks").json()
    kid = jwt.get_unverified_header(token)["kid"]
    key = RSAAlgorithm.from_jwk(next(k for k in jwks["keys"] if k["kid"] == kid))
    claims = jwt.decode(token, key, algorithms=["RS256"], audience=EXCHANGE, issuer=admin.issuer())
    assert claims["sub"] == f"system:serviceaccount:{ns}:{sa}"


def test_each_service_account_has_its_own_uid_and_names_are_unique(server, admin):
    ns = unique("ns")
    a, b = admin.service_account(ns, "one"), admin.service_account(ns, "two")
    assert a["metadata"]["uid"] != b["metadata"]["uid"]
    again = server.cli("cluster", "serviceaccount", "create", "--namespace", ns, "--name", "one", check=False)
    assert again.returncode == 1
    assert again.stderr.strip() == 'ERROR: (AlreadyExists) serviceaccounts "one" already exists'
    listed = server.cli_json("cluster", "serviceaccount", "list", "--namespace", ns)
    assert sorted(i["metadata"]["name"] for i in listed) == ["one", "two"]
    server.cli("cluster", "serviceaccount", "delete", "--namespace", ns, "--name", "one")
    assert [i["metadata"]["name"] for i in server.cli_json("cluster", "serviceaccount", "list", "--namespace", ns)] == ["two"]


def test_durations_outside_10_minutes_to_24_hours_are_refused(server, admin):
    ns, sa = unique("ns"), unique("sa")
    admin.service_account(ns, sa)
    for duration, words in (("599", "less than 10 minutes"), ("86401", "longer than 24 hours")):
        r = server.cli("cluster", "token", "--namespace", ns, "--service-account", sa, "--duration", duration, check=False)
        assert r.returncode == 1 and r.stdout == ""
        assert "(Invalid)" in r.stderr and words in r.stderr and "spec.expirationSeconds" in r.stderr
    for duration, seconds in (("600", 600), ("24h", 86400)):
        token = server.cli("cluster", "token", "--namespace", ns, "--service-account", sa, "--duration", duration).stdout
        c = claims_of(token.strip())
        assert c["exp"] - c["iat"] == seconds


def test_unknown_service_account_is_not_found(server):
    r = server.cli("cluster", "token", "--namespace", "nowhere", "--service-account", "nobody", check=False)
    assert r.returncode == 1
    assert r.stderr.strip() == 'ERROR: (NotFound) serviceaccounts "nobody" not found'


def test_invalid_names_are_refused_as_kubernetes_does(server, admin):
    r = admin.call("POST", "/clusters/local/api/v1/namespaces/Bad_NS/serviceaccounts",
                   json={"metadata": {"name": "sa"}})
    assert r.status_code == 422
    body = r.json()
    assert body["kind"] == "Status" and body["reason"] == "Invalid" and body["code"] == 422


def test_token_requests_are_for_the_administrator_only(server, admin):
    ns, sa = unique("ns"), unique("sa")
    admin.service_account(ns, sa)
    app = server.cli_json("ad", "sp", "create-for-rbac", "--name", unique("not-admin"))
    r = token_request(server, {"grant_type": "client_credentials", "client_id": app["appId"],
                               "client_secret": app["password"], "scope": "https://management.azure.com/.default"})
    other = {"Authorization": f"Bearer {r.json()['access_token']}"}
    with http(server) as c:
        body = {"spec": {"audiences": [EXCHANGE]}}
        refused = c.post(f"{server.url}/clusters/local/api/v1/namespaces/{ns}/serviceaccounts/{sa}/token", json=body,
                         headers=other)
        anonymous = c.post(f"{server.url}/clusters/local/api/v1/namespaces/{ns}/serviceaccounts/{sa}/token", json=body)
    assert refused.status_code == 403 and refused.json()["reason"] == "Forbidden"
    assert "token" not in refused.json().get("status", {})
    assert anonymous.status_code == 401 and anonymous.json()["kind"] == "Status"
