"""Over-the-wire helpers for the escalation tests: act as one principal, with its own token, on the real server."""

from __future__ import annotations

import uuid

import httpx

from tests.authz.conftest import AUTHZ_API, SP, admin_token, http, sp_token, vault_scope

ARM_API = {"api-version": "2023-07-01"}
KV_API = {"api-version": "7.4"}
ROLE = {
    "Key Vault Administrator": "00482a5a-887f-4fb3-b363-3b7fe8e74483",
    "Key Vault Contributor": "f25e0fa2-a7c8-4377-a976-54943a77a395",
    "Key Vault Secrets User": "4633458b-17de-408a-b874-0445c86b69e6",
    "Key Vault Reader": "21090545-7ca7-4776-b22c-e363652d74d2",
    "Key Vault Data Access Administrator": "8b54135c-b56d-4d72-a534-26097cfdc8d8",
}


class Actor:
    """One principal talking to the server: ARM calls with its management token, data calls with its vault token."""

    def __init__(self, server, sp: SP | None = None) -> None:
        self.server = server
        self.sp = sp
        self.object_id = sp.object_id if sp else None
        self.sub = server.admin["subscriptionId"]

    def _token(self, scope: str | None = None) -> str:
        if self.sp is None:
            return admin_token(self.server, scope) if scope else admin_token(self.server)
        return sp_token(self.server, self.sp, scope or "https://management.azure.com/.default")

    def arm(self, method: str, path: str, json=None, params=None) -> httpx.Response:
        with http(self.server) as h:
            return h.request(method, self.server.url + path, json=json, params=params or ARM_API,
                             headers={"Authorization": f"Bearer {self._token()}"})

    def data(self, method: str, vault: str, path: str, json=None) -> httpx.Response:
        with http(self.server) as h:
            return h.request(method, self.server.vault_url(vault) + path, json=json, params=KV_API,
                             headers={"Authorization": f"Bearer {self._token(vault_scope(self.server))}"})

    def vault_path(self, name: str, rg: str = "strongroom") -> str:
        return f"/subscriptions/{self.sub}/resourceGroups/{rg}/providers/Microsoft.KeyVault/vaults/{name}"

    def put_vault(self, name: str, rg: str = "strongroom", **props) -> httpx.Response:
        return self.arm("PUT", self.vault_path(name, rg), json={"location": "local", "properties": props})

    def assign(self, scope: str, role: str, principal_id: str) -> httpx.Response:
        body = {"properties": {"roleDefinitionId": f"/subscriptions/{self.sub}/providers/Microsoft.Authorization/"
                               f"roleDefinitions/{ROLE.get(role, role)}", "principalId": principal_id}}
        return self.arm("PUT", f"{scope}/providers/Microsoft.Authorization/roleAssignments/{uuid.uuid4()}", json=body,
                        params=AUTHZ_API)


def policy(tenant: str, object_id: str, *secrets: str) -> dict:
    return {"tenantId": tenant, "objectId": object_id, "permissions": {"secrets": list(secrets), "keys": [], "certificates": []}}


def assert_authorization_failed(r: httpx.Response, action: str) -> None:
    """ARM's 403: {"error": {"code": "AuthorizationFailed", "message": "... perform action '<action>' over scope ..."}}."""
    assert r.status_code == 403, r.text
    err = r.json()["error"]
    assert err["code"] == "AuthorizationFailed", err
    assert f"action '{action}'" in err["message"], err["message"]
