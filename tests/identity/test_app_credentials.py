"""App registrations with client secrets and certificates (`ad sp create-for-rbac`, `ad app credential reset`),
used by the unmodified azure-identity credentials and by MSAL."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jwt
import msal
import pytest
from azure.core.exceptions import ClientAuthenticationError, HttpResponseError
from azure.identity import CertificateCredential, ClientSecretCredential
from azure.keyvault.secrets import SecretClient
from cryptography.hazmat.primitives import serialization

from strongroom.identity.certs import self_signed
from tests.conftest import STRONGROOM
from tests.identity.conftest import JWT_BEARER, assert_entra_error, claims_of, token_request, unique, vault_scope


def cli_env_home(server, tmp_path, *args: str) -> dict:
    """Run the CLI with HOME set, since --create-cert writes the key file into the home directory as az does."""
    env = {**os.environ, "STRONGROOM_STATE_DIR": str(server.state_dir), "HOME": str(tmp_path)}
    proc = subprocess.run([*STRONGROOM, *args], capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def secret_credential(server, tenant: str, app_id: str, secret: str) -> ClientSecretCredential:
    return ClientSecretCredential(tenant, app_id, secret, authority=server.url, disable_instance_discovery=True,
                                  connection_verify=server.ca)


@pytest.fixture(scope="module")
def cert_app(server, tmp_path_factory):
    home = tmp_path_factory.mktemp("home")
    return cli_env_home(server, home, "ad", "sp", "create-for-rbac", "--name", unique("cert-app"), "--create-cert")


def test_create_for_rbac_prints_what_az_prints_and_the_password_works(server):
    name = unique("legacy-app")
    out = server.cli_json("ad", "sp", "create-for-rbac", "--name", name)
    assert sorted(out) == ["appId", "displayName", "password", "tenant"]
    assert out["displayName"] == name and out["tenant"] == server.admin["tenantId"]
    uuid.UUID(out["appId"])
    token = secret_credential(server, out["tenant"], out["appId"], out["password"]).get_token(vault_scope(server))
    claims = claims_of(token.token)
    assert claims["appid"] == out["appId"] and claims["azpacr"] == "1"
    sp = server.cli_json("ad", "sp", "show", "--id", out["appId"])
    assert claims["oid"] == sp["id"] and sp["servicePrincipalType"] == "Application"


def test_create_for_rbac_again_resets_the_password(server):
    name = unique("reset-app")
    first = server.cli_json("ad", "sp", "create-for-rbac", "--name", name)
    second = server.cli_json("ad", "sp", "create-for-rbac", "--name", name)
    assert second["appId"] == first["appId"] and second["password"] != first["password"]
    form = {"grant_type": "client_credentials", "client_id": first["appId"], "scope": vault_scope(server)}
    assert_entra_error(token_request(server, {**form, "client_secret": first["password"]}), 7000215)
    assert token_request(server, {**form, "client_secret": second["password"]}).status_code == 200


def test_certificate_credential_of_azure_identity(server, cert_app):
    assert cert_app["password"] is None
    pem_path = cert_app["fileWithCertAndPrivateKey"]
    assert os.stat(pem_path).st_mode & 0o077 == 0
    cred = CertificateCredential(cert_app["tenant"], cert_app["appId"], certificate_path=pem_path,
                                 authority=server.url, disable_instance_discovery=True, connection_verify=server.ca)
    claims = claims_of(cred.get_token(vault_scope(server)).token)
    assert claims["appid"] == cert_app["appId"] and claims["azpacr"] == "2"


def test_msal_with_sha256_thumbprint_and_ps256(server, cert_app, monkeypatch):
    """MSAL signs with PS256 and names the certificate by x5t#S256 when given the public certificate."""
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", server.ca)  # requests lets this variable override `verify`
    pem = Path(cert_app["fileWithCertAndPrivateKey"]).read_text()
    key_pem = pem[: pem.index("-----BEGIN CERTIFICATE-----")]
    cert_pem = pem[pem.index("-----BEGIN CERTIFICATE-----"):]
    app = msal.ConfidentialClientApplication(
        cert_app["appId"], authority=f"{server.url}/{cert_app['tenant']}", verify=server.ca,
        client_credential={"private_key": key_pem, "public_certificate": cert_pem}, instance_discovery=False,
    )
    result = app.acquire_token_for_client([vault_scope(server)])
    assert "access_token" in result, result
    assert claims_of(result["access_token"])["appid"] == cert_app["appId"]


def _assertion(server, app_id: str, key, cert, **overrides) -> str:
    t = int(time.time())
    claims = {"aud": f"{server.url}/{server.admin['tenantId']}/oauth2/v2.0/token", "iss": app_id, "sub": app_id,
              "jti": str(uuid.uuid4()), "iat": t, "nbf": t, "exp": t + 600, **overrides}
    x5t = base64.urlsafe_b64encode(hashlib.sha1(cert.public_bytes(serialization.Encoding.DER)).digest()).decode().rstrip("=")
    return jwt.encode(claims, key, algorithm="RS256", headers={"x5t": x5t})


def _form(server, app_id: str, assertion: str) -> dict[str, str]:
    return {"grant_type": "client_credentials", "client_id": app_id, "client_assertion": assertion,
            "client_assertion_type": JWT_BEARER, "scope": vault_scope(server)}


@pytest.fixture(scope="module")
def own_cert(server, cert_app, tmp_path_factory):
    """A certificate the user made, registered with `ad app credential reset --cert @file --append`."""
    pem, cert = self_signed("my-own-cert")
    path = tmp_path_factory.mktemp("cert") / "cert.pem"
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    out = server.cli_json("ad", "app", "credential", "reset", "--id", cert_app["appId"], "--cert", f"@{path}", "--append")
    assert out["appId"] == cert_app["appId"] and out["password"] is None
    key = serialization.load_pem_private_key(pem, password=None)
    return key, cert


def test_appended_certificate_works_and_the_first_one_still_does(server, cert_app, own_cert):
    key, cert = own_cert
    assert token_request(server, _form(server, cert_app["appId"], _assertion(server, cert_app["appId"], key, cert))).status_code == 200
    listed = server.cli_json("ad", "app", "credential", "list", "--id", cert_app["appId"], "--cert")
    assert len(listed) == 2 and all(c["type"] == "AsymmetricX509Cert" for c in listed)
    test_certificate_credential_of_azure_identity(server, cert_app)


def test_certificate_assertion_errors(server, cert_app, own_cert):
    key, cert = own_cert
    app_id = cert_app["appId"]
    wrong_aud = _assertion(server, app_id, key, cert, aud="https://login.microsoftonline.com/x/oauth2/v2.0/token")
    assert_entra_error(token_request(server, _form(server, app_id, wrong_aud)), 700023)
    expired = _assertion(server, app_id, key, cert, iat=int(time.time()) - 7200, nbf=int(time.time()) - 7200,
                         exp=int(time.time()) - 3600)
    assert_entra_error(token_request(server, _form(server, app_id, expired)), 700024)
    stranger_pem, stranger = self_signed("unregistered")
    stranger_key = serialization.load_pem_private_key(stranger_pem, password=None)
    body = assert_entra_error(token_request(server, _form(server, app_id, _assertion(server, app_id, stranger_key, stranger))), 700027)
    assert "The key was not found" in body["error_description"]
    # A registered thumbprint with someone else's signature.
    forged = _assertion(server, app_id, stranger_key, cert)
    assert_entra_error(token_request(server, _form(server, app_id, forged)), 700027)
    mismatch = _assertion(server, app_id, key, cert, iss="someone-else")
    assert_entra_error(token_request(server, _form(server, app_id, mismatch)), 700021)


def test_expired_client_secret_is_7000222(server, admin):
    sp = server.cli_json("ad", "sp", "create-for-rbac", "--name", unique("short-lived"))
    app = admin.http.get(f"{server.url}/v1.0/applications/{sp['appId']}", headers=_graph_headers(server)).json()
    end = (datetime.now(UTC) + timedelta(seconds=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    r = admin.http.post(f"{server.url}/v1.0/applications/{app['id']}/addPassword", headers=_graph_headers(server),
                        json={"passwordCredential": {"displayName": "brief", "endDateTime": end}})
    assert r.status_code == 200, r.text
    secret = r.json()["secretText"]
    time.sleep(2.1)
    form = {"grant_type": "client_credentials", "client_id": sp["appId"], "client_secret": secret, "scope": vault_scope(server)}
    assert_entra_error(token_request(server, form), 7000222)


def _graph_headers(server) -> dict[str, str]:
    a = server.admin
    r = token_request(server, {"grant_type": "client_credentials", "client_id": a["clientId"],
                               "client_secret": a["clientSecret"], "scope": "https://graph.microsoft.com/.default"})
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def test_service_principal_list_includes_managed_identities_and_protects_the_admin(server, admin):
    identity = admin.create_identity(unique("rg"), unique("listed"))
    sps = server.cli_json("ad", "sp", "list", "--all")
    mine = [s for s in sps if s["appId"] == identity["properties"]["clientId"]]
    assert mine and mine[0]["servicePrincipalType"] == "ManagedIdentity"
    assert identity["id"] in mine[0]["alternativeNames"]
    refused = server.cli("ad", "sp", "delete", "--id", server.admin["clientId"], check=False)
    assert refused.returncode != 0 and "administrator" in refused.stderr


def test_app_delete_removes_the_app_and_its_credentials(server):
    out = server.cli_json("ad", "sp", "create-for-rbac", "--name", unique("doomed"))
    server.cli("ad", "app", "delete", "--id", out["appId"])
    form = {"grant_type": "client_credentials", "client_id": out["appId"], "client_secret": out["password"],
            "scope": vault_scope(server)}
    assert_entra_error(token_request(server, form), 700016, "unauthorized_client", 400)
    with pytest.raises(ClientAuthenticationError):
        secret_credential(server, out["tenant"], out["appId"], out["password"]).get_token(vault_scope(server))


def test_create_for_rbac_with_role_and_scopes_can_read_only_there(server, vault):
    vault_id = server.cli("keyvault", "show", "--name", vault, "--query", "id", "-o", "tsv").stdout.strip()
    granted, other = unique("rbac-granted"), unique("rbac-other")
    for name in (granted, other):
        server.cli("keyvault", "secret", "set", "--vault-name", vault, "--name", name, "--value", "v-" + name)
    out = server.cli_json("ad", "sp", "create-for-rbac", "--name", unique("ci-app"), "--role", "Key Vault Secrets User",
                          "--scopes", f"{vault_id}/secrets/{granted}")
    assert sorted(out) == ["appId", "displayName", "password", "tenant"]
    cred = secret_credential(server, out["tenant"], out["appId"], out["password"])
    client = SecretClient(server.vault_url(vault), cred, connection_verify=server.ca)
    assert client.get_secret(granted).value == "v-" + granted
    with pytest.raises(HttpResponseError) as denied:
        client.get_secret(other)
    assert denied.value.status_code == 403
    alone = server.cli("ad", "sp", "create-for-rbac", "--name", unique("half"), "--role", "Key Vault Secrets User", check=False)
    assert alone.returncode == 1 and "--scopes" in alone.stderr
