"""Custom role definitions: an update needs roleDefinitions/write on the role's existing scopes; names are unique.

Attacks over the wire with the attacker's own token (issue #10, section 1).
"""

from __future__ import annotations

import uuid

import pytest

from tests.authz.attack import Actor, assert_authorization_failed
from tests.authz.conftest import AUTHZ_API, make_sp, unique_vault

S = "Microsoft.KeyVault/vaults/secrets"


def _role_path(actor: Actor, guid: str) -> str:
    return f"/subscriptions/{actor.sub}/providers/Microsoft.Authorization/roleDefinitions/{guid}"


def _role_body(name: str, scopes: list[str], data_actions: list[str], actions: list[str] | None = None) -> dict:
    return {"properties": {"roleName": name, "description": "test", "assignableScopes": scopes,
                           "permissions": [{"actions": actions or [], "notActions": [], "dataActions": data_actions,
                                            "notDataActions": []}]}}


@pytest.fixture(scope="module")
def admin(server) -> Actor:
    return Actor(server)


def test_narrowing_a_subscription_wide_role_to_ones_vault_to_widen_it_is_refused(server, admin):
    victim, own = unique_vault("vic"), unique_vault("mine")
    for v in (victim, own):
        assert admin.put_vault(v).status_code == 201
    assert admin.data("PUT", victim, "/secrets/payroll", json={"value": "top-secret"}).status_code == 200
    attacker = Actor(server, make_sp(server, "roleedit"))
    sub = f"/subscriptions/{admin.sub}"

    # A harmless subscription-wide custom role, assigned to the attacker at the subscription.
    lister = str(uuid.uuid4())
    r = admin.arm("PUT", _role_path(admin, lister), json=_role_body(f"Lister {lister[:8]}", [sub], [f"{S}/readMetadata/action"]),
                  params=AUTHZ_API)
    assert r.status_code == 201, r.text
    assert admin.assign(sub, lister, attacker.object_id).status_code == 201
    # The attacker may write role definitions on its own vault only.
    writer = str(uuid.uuid4())
    body = _role_body(f"Role writer {writer[:8]}", [admin.vault_path(own)], [],
                      actions=["Microsoft.Authorization/roleDefinitions/write"])
    assert admin.arm("PUT", _role_path(admin, writer), json=body, params=AUTHZ_API).status_code == 201
    assert admin.assign(admin.vault_path(own), writer, attacker.object_id).status_code == 201
    assert attacker.data("GET", victim, "/secrets/payroll").status_code == 403

    # Narrow the subscription-wide role to its own vault and widen its data actions.
    r = attacker.arm("PUT", _role_path(admin, lister), params=AUTHZ_API,
                     json=_role_body(f"Lister {lister[:8]}", [admin.vault_path(own)], [f"{S}/*"]))
    assert_authorization_failed(r, "Microsoft.Authorization/roleDefinitions/write")
    assert f"scope '{sub}'" in r.json()["error"]["message"]
    role = admin.arm("GET", _role_path(admin, lister), params=AUTHZ_API).json()["properties"]
    assert role["assignableScopes"] == [sub] and role["permissions"][0]["dataActions"] == [f"{S}/readMetadata/action"]
    assert attacker.data("GET", victim, "/secrets/payroll").status_code == 403

    # A role whose scopes are all the attacker's own stays the attacker's to change.
    mine = str(uuid.uuid4())
    assert admin.arm("PUT", _role_path(admin, mine), params=AUTHZ_API,
                     json=_role_body(f"Mine {mine[:8]}", [admin.vault_path(own)], [f"{S}/readMetadata/action"])).status_code == 201
    r = attacker.arm("PUT", _role_path(admin, mine), params=AUTHZ_API,
                     json=_role_body(f"Mine {mine[:8]}", [admin.vault_path(own)], [f"{S}/getSecret/action"]))
    assert r.status_code == 200, r.text


@pytest.mark.parametrize("name", [
    "Key Vault Administrator ", " key vault administrator", "KEY VAULT  ADMINISTRATOR", "Key Vault Secrets User\t",
    "Ｋｅｙ Ｖａｕｌｔ Ａｄｍｉｎｉｓｔｒａｔｏｒ",
])
def test_a_custom_role_cannot_take_a_built_in_roles_name(server, admin, name):
    r = admin.arm("PUT", _role_path(admin, str(uuid.uuid4())), params=AUTHZ_API,
                  json=_role_body(name, [f"/subscriptions/{admin.sub}"], [f"{S}/getSecret/action"]))
    assert r.status_code == 409, r.text
    assert r.json()["error"]["code"] == "RoleDefinitionWithSameNameExists"


def test_custom_role_names_collide_after_normalisation(server, admin):
    base = f"Payments Reader {uuid.uuid4().hex[:6]}"
    sub = f"/subscriptions/{admin.sub}"
    r = admin.arm("PUT", _role_path(admin, str(uuid.uuid4())), params=AUTHZ_API, json=_role_body(f"  {base} ", [sub], []))
    assert r.status_code == 201 and r.json()["properties"]["roleName"] == base
    r = admin.arm("PUT", _role_path(admin, str(uuid.uuid4())), params=AUTHZ_API, json=_role_body(base.upper(), [sub], []))
    assert r.status_code == 409 and r.json()["error"]["code"] == "RoleDefinitionWithSameNameExists"
