"""What an audit record may say: no unverified identity, no tag, value or token; the sign-in's details.

Attacks a dedicated real server over the wire. Before the fix a wrong secret for
the admin's client id was recorded with the admin's oid/appid in identity.claim,
the sign-in details were not recorded at all, and a tag name came back in a
resultDescription.
"""

from __future__ import annotations

import uuid

import httpx
import pytest
from azure.identity import ClientSecretCredential
from azure.keyvault.keys import KeyClient
from azure.keyvault.secrets import SecretClient

from tests.conftest import Server, start_server

VAULT = "kv-records"


@pytest.fixture(scope="module")
def srv(tmp_path_factory) -> Server:
    s = start_server(tmp_path_factory.mktemp("records"))
    s.cli("keyvault", "create", "--name", VAULT)
    yield s
    s.stop()


def records_of(srv: Server, cid: str) -> list[dict]:
    return [r for r in srv.cli_json("audit", "list") if r["correlationId"] == cid]


def test_a_failed_sign_in_carries_no_verified_identity_only_the_claimed_client_id(srv: Server):
    a = srv.admin
    cid = str(uuid.uuid4())
    wrong = f"WRONG-SECRET-{uuid.uuid4()}"
    r = httpx.post(
        f"{srv.url}/{a['tenantId']}/oauth2/v2.0/token",
        data={"grant_type": "client_credentials", "scope": "https://vault.azure.net/.default",
              "client_id": a["clientId"], "client_secret": wrong},
        headers={"client-request-id": cid}, verify=srv.ssl_context,
    )
    assert r.status_code == 401
    (rec,) = records_of(srv, cid)
    assert rec["operationName"] == "Authentication"
    assert rec["identity"]["claim"] == {}  # nobody was verified
    auth = rec["properties"]["authentication"]
    assert auth["clientId"] == a["clientId"]
    assert (auth["grantType"], auth["credentialType"], auth["resource"]) == (
        "client_credentials", "ClientSecret", "https://vault.azure.net",
    )
    assert auth["result"].startswith("AADSTS")
    assert wrong not in (srv.state_dir / "audit.jsonl").read_text()


def test_a_successful_sign_in_names_the_verified_caller_and_its_details(srv: Server):
    a = srv.admin
    cid = str(uuid.uuid4())
    r = httpx.post(
        f"{srv.url}/{a['tenantId']}/oauth2/v2.0/token",
        data={"grant_type": "client_credentials", "scope": "https://vault.azure.net/.default",
              "client_id": a["clientId"], "client_secret": a["clientSecret"]},
        headers={"client-request-id": cid}, verify=srv.ssl_context,
    )
    assert r.status_code == 200
    (rec,) = records_of(srv, cid)
    assert rec["identity"]["claim"]["appid"] == a["clientId"] and rec["identity"]["claim"]["oid"]
    assert rec["properties"]["authentication"]["result"] == "Success"
    assert rec["properties"]["authentication"]["clientId"] == a["clientId"]
    text = (srv.state_dir / "audit.jsonl").read_text()
    assert r.json()["access_token"] not in text and a["clientSecret"] not in text


def test_no_tag_value_or_token_reaches_the_audit_log(srv: Server):
    a = srv.admin
    cred = ClientSecretCredential(a["tenantId"], a["clientId"], a["clientSecret"], authority=srv.url,
                                  disable_instance_discovery=True, connection_verify=srv.ca)
    mark = uuid.uuid4().hex[:10]
    tag_name, tag_value, value, ctype = f"TAGNAME{mark}", f"TAGVALUE{mark}", f"VALUE{mark}", f"CTYPE{mark}"
    secrets = SecretClient(srv.vault_url(VAULT), cred, connection_verify=srv.ca)
    secrets.set_secret("tagged", value, tags={tag_name: tag_value}, content_type=ctype)
    secrets.update_secret_properties("tagged", tags={tag_name: tag_value + "2"})
    KeyClient(srv.vault_url(VAULT), cred, connection_verify=srv.ca).create_rsa_key("k1", tags={tag_name: tag_value})
    srv.cli("keyvault", "create", "--name", "kv-tagged", "--tags", f"{tag_name}={tag_value}")
    # Refused input must not come back through the error message into resultDescription.
    bearer = cred.get_token("https://vault.azure.net/.default").token
    headers = {"Authorization": f"Bearer {bearer}"}
    for tags in ({tag_name: tag_value * 40}, {tag_name * 60: tag_value}, {f"{tag_name}{i}": tag_value for i in range(60)}):
        r = httpx.put(f"{srv.vault_url(VAULT)}/secrets/bad?api-version=7.6", json={"value": value, "tags": tags},
                      headers=headers, verify=srv.ssl_context)
        assert r.status_code == 400
    r = httpx.put(f"{srv.vault_url(VAULT)}/secrets/bad?api-version=7.6&token={bearer}", json={"value": value},
                  headers=headers, verify=srv.ssl_context)
    text = (srv.state_dir / "audit.jsonl").read_text()
    for marker in (mark, bearer, bearer.split(".")[2]):
        assert marker not in text, f"{marker[:20]}... found in the audit log"
