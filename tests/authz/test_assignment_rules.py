"""The role-assignment and custom-role rules in authz/, in-process (the handlers only parse and render).

The same rules are attacked over the wire in test_role_cli.py and test_control_plane_escalation.py;
here each refusal is pinned to its rule, without a server.
"""

from __future__ import annotations

import pytest

from strongroom.authz import assignments, definitions
from strongroom.authz.roles import SECRETS_OFFICER
from strongroom.authz.store import _build, new_assignment
from strongroom.errors import ServiceError

SUB = "00000000-0000-0000-0000-00000000000a"
VAULT = f"/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/kv1"
NAME = "11111111-2222-3333-4444-555555555555"
PRINCIPAL = assignments.Principal("66666666-7777-8888-9999-000000000000", "application")


def request(**changes) -> assignments.AssignmentRequest:
    fields = dict(name=NAME, scope=VAULT, role_definition_id=SECRETS_OFFICER, principal_ref=PRINCIPAL.object_id)
    fields.update(changes)
    return assignments.AssignmentRequest(**fields)


def check(snap, req, principal=PRINCIPAL):
    return assignments.check(snap, req, principal, subscription_id=SUB, tenant_id="t", display_scope=req.scope)


@pytest.mark.parametrize("req, principal, code", [
    (request(role_definition_id="no-such-role"), PRINCIPAL, "RoleDefinitionDoesNotExist"),
    (request(role_definition_id=f"/subscriptions/other/providers/Microsoft.Authorization/roleDefinitions/{SECRETS_OFFICER}"),
     PRINCIPAL, "RoleDefinitionDoesNotExist"),
    (request(), None, "PrincipalNotFound"),
    (request(principal_type="Robot"), PRINCIPAL, "InvalidPrincipalType"),
    (request(principal_type="User"), PRINCIPAL, "UnmatchedPrincipalType"),
    (request(condition="not a condition"), PRINCIPAL, "InvalidCondition"),
    (request(condition="x", condition_version="1.0"), PRINCIPAL, "InvalidConditionVersion"),
    (request(description="d" * 2049), PRINCIPAL, "InvalidRequestContent"),
])
def test_a_bad_assignment_is_refused_with_azures_code(req, principal, code):
    with pytest.raises(ServiceError) as caught:
        check(_build(None, [], []), req, principal)
    assert (caught.value.status, caught.value.code) == (400, code)


def test_an_update_changes_only_description_and_condition_and_leaves_the_snapshot_alone():
    stored = new_assignment(VAULT, SECRETS_OFFICER, PRINCIPAL.object_id, "ServicePrincipal", "creator", name=NAME)
    snap = _build(None, [stored], [])
    updated, created = assignments.decide(snap, check(snap, request(description="why")), "updater")
    assert not created and updated.description == "why" and updated.updated_by == "updater"
    assert snap.assignments[NAME].description is None  # nothing changes before the write commits
    with pytest.raises(ServiceError) as caught:  # another scope under the same name
        assignments.decide(snap, check(snap, request(scope=VAULT + "/secrets/s")), "updater")
    assert caught.value.code == "RoleAssignmentUpdateNotPermitted"
    with pytest.raises(ServiceError) as caught:  # the same grant under another name
        assignments.decide(snap, check(snap, request(name=NAME.replace("1", "9"))), "updater")
    assert caught.value.code == "RoleAssignmentExists"


def test_custom_role_rules():
    snap = _build(None, [], [])
    with pytest.raises(ServiceError) as caught:
        definitions.existing_custom(snap, SECRETS_OFFICER)
    assert caught.value.code == "RoleDefinitionIsBuiltIn"
    with pytest.raises(ServiceError) as caught:
        definitions.check_role_name(snap, NAME, "key vault SECRETS   officer")  # a built-in name after normalising
    assert caught.value.code == "RoleDefinitionWithSameNameExists"
    with pytest.raises(ServiceError) as caught:
        definitions.assignable_scopes({"assignableScopes": ["/"]})
    assert caught.value.code == "InvalidAssignableScope"
    with pytest.raises(ServiceError) as caught:
        definitions.permission_from({"dataActions": ["Microsoft.KeyVault/vaults/secrets/launchMissiles/action"]})
    assert caught.value.code == "InvalidDataActionOrNotDataAction"
    props = {"permissions": [{"actions": ["Microsoft.KeyVault/vaults/read"]}], "description": "d"}
    checked = definitions.check(None, "Reader of kv1", props, VAULT, (VAULT,))
    role = definitions.build(NAME, checked, "admin")
    assert role.is_custom and role.assignable_scopes == (VAULT,) and role.created_by == "admin"
    with pytest.raises(ServiceError):  # the path's scope must overlap the assignable scopes
        definitions.check(None, "Reader of kv1", props, f"/subscriptions/{SUB}/resourceGroups/other", (VAULT,))
