"""A second instance (own CA, two worker processes): a private issuer trusted only when its CA is configured,
and signing-key rotation seen by every worker."""

from __future__ import annotations

import time

import jwt
import pytest
from azure.identity import WorkloadIdentityCredential

from tests.identity.conftest import (
    Admin,
    assert_entra_error,
    assertion_form,
    claims_of,
    http,
    token_request,
    vault_scope,
)


@pytest.fixture(scope="module")
def admin2(second_server):
    a = Admin(second_server)
    yield a
    a.http.close()


def test_private_issuer_is_trusted_when_its_ca_is_configured(server, second_server, admin, admin2, tmp_path):
    """The second instance was started with --issuer-ca-file <first instance's CA>: it can fetch the first cluster's keys."""
    fed = admin2.federate(issuer=admin.issuer())
    admin.service_account(fed.namespace, fed.service_account)  # the service account lives in the first cluster
    token_file = tmp_path / "token"
    token_file.write_text(admin.cluster_token(fed.namespace, fed.service_account))
    cred = WorkloadIdentityCredential(tenant_id=second_server.admin["tenantId"], client_id=fed.client_id,
                                      token_file_path=str(token_file), authority=second_server.url,
                                      connection_verify=second_server.ca)
    with cred:  # an idle pooled connection would hold up the multi-worker server's shutdown
        claims = claims_of(cred.get_token(vault_scope(second_server)).token)
    assert claims["oid"] == fed.principal_id and claims["xms_mirid"] == fed.resource_id


def test_private_issuer_without_its_ca_is_50166(server, admin, admin2):
    """The first instance does not trust the second one's CA: its issuer metadata cannot be fetched."""
    fed = admin.federate(issuer=admin2.issuer())
    admin2.service_account(fed.namespace, fed.service_account)
    token = admin2.cluster_token(fed.namespace, fed.service_account)
    body = assert_entra_error(token_request(server, assertion_form(server, fed.client_id, token)), 50166)
    assert "certificate verify failed" in body["error_description"]


def _admin_token(srv) -> str:
    a = srv.admin
    r = token_request(srv, {"grant_type": "client_credentials", "client_id": a["clientId"], "client_secret": a["clientSecret"],
                            "scope": vault_scope(srv)})
    assert r.status_code == 200, r.text
    return r.json()["access_token"]


def _published(srv) -> set[str]:
    with http(srv) as c:  # a new connection each time, so both workers answer over the loop
        return {k["kid"] for k in c.get(f"{srv.url}/{srv.admin['tenantId']}/discovery/v2.0/keys").json()["keys"]}


def _vault_answers(srv, token: str) -> int:
    with http(srv) as c:
        r = c.get(f"{srv.vault_url('kv-rotation')}/secrets", params={"api-version": "7.4"},
                  headers={"Authorization": f"Bearer {token}"})
    return r.status_code


def test_signing_key_rotation_keeps_old_tokens_valid_across_workers(second_server):
    second_server.cli("keyvault", "create", "--name", "kv-rotation")
    old_token = _admin_token(second_server)
    old_kid = jwt.get_unverified_header(old_token)["kid"]

    rotated = second_server.cli_json("identity", "rotate-signing-key")
    assert rotated["previousKid"] == old_kid and rotated["kid"] != old_kid
    assert set(rotated["publishedKids"]) == {old_kid, rotated["kid"]}
    time.sleep(1.2)  # workers look for a rotation at most once a second

    for _ in range(12):
        assert _published(second_server) >= {old_kid, rotated["kid"]}
        assert jwt.get_unverified_header(_admin_token(second_server))["kid"] == rotated["kid"]
        assert _vault_answers(second_server, old_token) == 200

    again = second_server.cli_json("identity", "rotate-signing-key")
    time.sleep(1.2)
    # The key before the previous one still signed tokens that have not expired: it stays published and valid.
    for _ in range(6):
        assert _published(second_server) >= {old_kid, rotated["kid"], again["kid"]}
        assert _vault_answers(second_server, old_token) == 200
