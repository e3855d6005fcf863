"""The token endpoint over raw HTTP: every AADSTS error it names, in Entra's JSON, and the successful grants.

Federated assertions come from the instance's own cluster (`strongroom cluster
token`), so they are really signed and really verified through the issuer's
discovery document and JWKS fetched over HTTPS.
"""

from __future__ import annotations

import json
import time

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.identity.conftest import (
    EXCHANGE,
    assert_entra_error,
    assertion_form,
    claims_of,
    local_cluster,
    token_request,
    unique,
    vault_scope,
)


@pytest.fixture(scope="module")
def fed(admin):
    return admin.federate()


@pytest.fixture(scope="module")
def cluster(server):
    with local_cluster(server) as c:
        yield c


def test_federated_assertion_gets_a_token_with_the_identitys_claims(server, fed, admin):
    r = token_request(server, assertion_form(server, fed.client_id, admin.cluster_token(fed.namespace, fed.service_account)))
    assert r.status_code == 200, r.text
    assert r.headers["cache-control"] == "no-store"
    body = r.json()
    assert body["token_type"] == "Bearer" and body["expires_in"] == 3600
    claims = claims_of(body["access_token"])
    assert claims["oid"] == fed.principal_id
    assert claims["appid"] == fed.client_id
    assert claims["xms_mirid"] == fed.resource_id
    assert claims["aud"] == vault_scope(server).removesuffix("/.default")
    assert claims["tid"] == server.admin["tenantId"]


def test_token_file_with_trailing_newline_is_accepted(server, fed, admin):
    token = admin.cluster_token(fed.namespace, fed.service_account) + "\n"
    assert token_request(server, assertion_form(server, fed.client_id, token)).status_code == 200


def test_wrong_subject_is_700213(server, fed, admin):
    other = unique("sa")
    admin.service_account(fed.namespace, other)
    r = token_request(server, assertion_form(server, fed.client_id, admin.cluster_token(fed.namespace, other)))
    body = assert_entra_error(r, 700213)
    assert f"system:serviceaccount:{fed.namespace}:{other}" in body["error_description"]


def test_wrong_audience_is_700212(server, fed, admin):
    token = admin.cluster_token(fed.namespace, fed.service_account, "api://SomethingElse")
    body = assert_entra_error(token_request(server, assertion_form(server, fed.client_id, token)), 700212)
    assert "'api://SomethingElse'" in body["error_description"]


def test_wrong_issuer_is_700211(server, admin):
    # The identity trusts another issuer only; the local cluster's token is not accepted.
    other = admin.federate(issuer="https://issuer.example.com/tenant/cluster")
    token = admin.cluster_token(other.namespace, other.service_account)
    body = assert_entra_error(token_request(server, assertion_form(server, other.client_id, token)), 700211)
    assert f"'{admin.issuer()}'" in body["error_description"]


def test_issuer_matching_is_case_sensitive(server, admin):
    issuer = admin.issuer()
    shouting = issuer.replace("/clusters/local", "/CLUSTERS/local")
    other = admin.federate(issuer=shouting)
    token = admin.cluster_token(other.namespace, other.service_account)
    assert_entra_error(token_request(server, assertion_form(server, other.client_id, token)), 700211)


def test_subject_and_audience_both_wrong_is_70021(server, fed, admin):
    other = unique("sa")
    admin.service_account(fed.namespace, other)
    token = admin.cluster_token(fed.namespace, other, "api://SomethingElse")
    body = assert_entra_error(token_request(server, assertion_form(server, fed.client_id, token)), 70021)
    assert "Assertion Subject:" in body["error_description"]


def test_subject_of_one_credential_and_audience_of_another_is_70021(server, admin):
    fed = admin.federate()
    second_sa = unique("sa")
    admin.service_account(fed.namespace, second_sa)
    r = admin.put_fic(fed.resource_group, fed.name, "fic-second", fed.issuer,
                      f"system:serviceaccount:{fed.namespace}:{second_sa}", ["api://Second"])
    assert r.status_code == 201, r.text
    # The subject matches fic-main and the audience matches fic-second, but no single credential matches both.
    token = admin.cluster_token(fed.namespace, fed.service_account, "api://Second")
    assert_entra_error(token_request(server, assertion_form(server, fed.client_id, token)), 70021)


def test_wildcard_subject_matches_nothing(server, admin):
    fed = admin.federate(subject="system:serviceaccount:team:*")
    admin.service_account("team", fed.service_account)
    token = admin.cluster_token("team", fed.service_account)
    assert_entra_error(token_request(server, assertion_form(server, fed.client_id, token)), 700213)


def test_identity_without_federated_credentials_is_70025(server, fed, admin):
    bare = admin.create_identity(unique("rg"), unique("bare"))["properties"]["clientId"]
    token = admin.cluster_token(fed.namespace, fed.service_account)
    body = assert_entra_error(token_request(server, assertion_form(server, bare, token)), 70025)
    assert bare in body["error_description"]


def test_expired_assertion_is_700024(server, fed, cluster):
    token, _ = cluster.token(
        fed.namespace, fed.service_account, [EXCHANGE], duration=600, issued_at=int(time.time()) - 3600
    )
    body = assert_entra_error(token_request(server, assertion_form(server, fed.client_id, token)), 700024)
    assert "Client assertion is not within its valid time range" in body["error_description"]


def test_assertion_from_the_future_is_700024(server, fed, cluster):
    token, _ = cluster.token(fed.namespace, fed.service_account, [EXCHANGE], issued_at=int(time.time()) + 3600)
    assert_entra_error(token_request(server, assertion_form(server, fed.client_id, token)), 700024)


def test_assertion_within_clock_skew_is_accepted(server, fed, cluster):
    token, _ = cluster.token(fed.namespace, fed.service_account, [EXCHANGE], issued_at=int(time.time()) + 60)
    assert token_request(server, assertion_form(server, fed.client_id, token)).status_code == 200


def test_assertion_living_longer_than_24_hours_is_700024(server, fed, cluster):
    key = cluster.keys.current
    t = int(time.time())
    claims = {"iss": fed.issuer, "sub": f"system:serviceaccount:{fed.namespace}:{fed.service_account}", "aud": [EXCHANGE],
              "iat": t, "nbf": t, "exp": t + 86400 + 3600}
    token = jwt.encode(claims, key.private, algorithm="RS256", headers={"kid": key.kid})
    body = assert_entra_error(token_request(server, assertion_form(server, fed.client_id, token)), 700024)
    assert "longer than 24 hours" in body["error_description"]


def test_forged_signature_is_700027(server, fed, cluster):
    forger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    t = int(time.time())
    claims = {"iss": fed.issuer, "sub": f"system:serviceaccount:{fed.namespace}:{fed.service_account}", "aud": [EXCHANGE],
              "iat": t, "nbf": t, "exp": t + 600}
    for kid in (cluster.keys.current.kid, "no-such-kid"):
        token = jwt.encode(claims, forger, algorithm="RS256", headers={"kid": kid})
        assert_entra_error(token_request(server, assertion_form(server, fed.client_id, token)), 700027)


@pytest.mark.parametrize("alg", ["HS256", "none", "PS256"])
def test_algorithms_outside_the_allow_list_are_refused(server, fed, alg):
    t = int(time.time())
    claims = {"iss": fed.issuer, "sub": f"system:serviceaccount:{fed.namespace}:{fed.service_account}", "aud": [EXCHANGE],
              "iat": t, "nbf": t, "exp": t + 600}
    if alg == "PS256":
        token = jwt.encode(claims, rsa.generate_private_key(public_exponent=65537, key_size=2048), algorithm=alg)
    else:
        token = jwt.encode(claims, "secret-the-attacker-chose-32-bytes" if alg == "HS256" else None, algorithm=alg)
    body = assert_entra_error(token_request(server, assertion_form(server, fed.client_id, token)), 700027)
    assert alg in body["error_description"]


def test_unreachable_issuer_is_50166(server, admin):
    dead = admin.federate(issuer="https://localhost:1/clusters/gone")
    t = int(time.time())
    claims = {"iss": dead.issuer, "sub": f"system:serviceaccount:{dead.namespace}:{dead.service_account}",
              "aud": [EXCHANGE], "iat": t, "exp": t + 600}
    token = jwt.encode(claims, rsa.generate_private_key(public_exponent=65537, key_size=2048), algorithm="RS256",
                       headers={"kid": "k1"})
    body = assert_entra_error(token_request(server, assertion_form(server, dead.client_id, token)), 50166)
    assert "Request to External OIDC endpoint failed" in body["error_description"]


def test_malformed_assertion_is_50027(server, fed):
    assert_entra_error(token_request(server, assertion_form(server, fed.client_id, "not-a-jwt")), 50027, "invalid_request", 400)


def test_unknown_client_is_700016(server, fed, admin):
    token = admin.cluster_token(fed.namespace, fed.service_account)
    r = token_request(server, assertion_form(server, "11111111-2222-3333-4444-555555555555", token))
    assert_entra_error(r, 700016, "unauthorized_client", 400)


def test_no_credential_is_7000218(server, fed):
    form = {"grant_type": "client_credentials", "client_id": fed.client_id, "scope": vault_scope(server)}
    assert_entra_error(token_request(server, form), 7000218)


def test_wrong_client_secret_is_7000215(server):
    admin = server.admin
    form = {"grant_type": "client_credentials", "client_id": admin["clientId"], "client_secret": "wrong",
            "scope": vault_scope(server)}
    assert_entra_error(token_request(server, form), 7000215)


def test_client_secret_grant_ignores_claims_parameter(server):
    admin = server.admin
    form = {"grant_type": "client_credentials", "client_id": admin["clientId"], "client_secret": admin["clientSecret"],
            "scope": vault_scope(server), "claims": '{"access_token":{"xms_cc":{"values":["CP1"]}}}'}
    r = token_request(server, form)
    assert r.status_code == 200, r.text
    assert claims_of(r.json()["access_token"])["azpacr"] == "1"
    assert "xms_mirid" not in claims_of(r.json()["access_token"])


def test_federated_credentials_of_an_app_registration_work_too(server, fed, admin):
    sp = server.cli_json("ad", "sp", "create-for-rbac", "--name", unique("fedapp"))
    params = {"name": "cluster-sa", "issuer": fed.issuer, "subject": f"system:serviceaccount:{fed.namespace}:{fed.service_account}",
              "audiences": [EXCHANGE]}
    created = server.cli_json("ad", "app", "federated-credential", "create", "--id", sp["appId"], "--parameters", json.dumps(params))
    assert created["name"] == "cluster-sa" and created["audiences"] == [EXCHANGE]
    r = token_request(server, assertion_form(server, sp["appId"], admin.cluster_token(fed.namespace, fed.service_account)))
    assert r.status_code == 200, r.text
    claims = claims_of(r.json()["access_token"])
    assert claims["appid"] == sp["appId"] and "xms_mirid" not in claims
