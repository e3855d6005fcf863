"""Role evaluation against real storage: scope containment, wildcards, notDataActions,
union of assignments, single-object scope, custom roles, conditions, and cross-process
invalidation (two AuthzStores on one SQLite file stand for two server workers)."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from strongroom.authz import Authorizer, AuthzStore, Caller
from strongroom.authz.actions import SECRET_ACTIONS, matches
from strongroom.authz.conditions import ConditionError, Context, assignment_attributes, compile_condition
from strongroom.authz.roles import BUILTIN_BY_GUID, CUSTOM, Permission, RoleDefinition
from strongroom.authz.scopes import contains, parse_scope
from strongroom.authz.store import new_assignment
from strongroom.barrier import Barrier, Keyring, MasterKey, SealedStore
from strongroom.errors import ServiceError
from strongroom.keyvault.vaults import Vault
from strongroom.storage.sqlite import SQLiteStorage

SUB = "11111111-2222-3333-4444-555555555555"
ADMIN = "aaaaaaaa-0000-0000-0000-000000000000"
ALICE = "a11ce000-0000-0000-0000-000000000001"
BOB = "b0b00000-0000-0000-0000-000000000002"
SECRETS_USER = "4633458b-17de-408a-b874-0445c86b69e6"
SECRETS_OFFICER = "b86a8fe4-44ce-4948-aee5-eccb2c155cd7"
READER = "21090545-7ca7-4776-b22c-e363652d74d2"
ADMINISTRATOR = "00482a5a-887f-4fb3-b363-3b7fe8e74483"
DATA_ACCESS_ADMIN = "8b54135c-b56d-4d72-a534-26097cfdc8d8"
GET = SECRET_ACTIONS["SecretGet"]
SET = SECRET_ACTIONS["SecretSet"]
LIST = SECRET_ACTIONS["SecretList"]
PURGE = SECRET_ACTIONS["SecretPurge"]


def vault(name: str = "kv1", rg: str = "rg1", rbac: bool = True) -> Vault:
    return Vault(name=name, subscription_id=SUB, resource_group=rg, tenant_id="t", rbac_authorization=rbac)


def caller(oid: str) -> Caller:
    return Caller(oid, "app-" + oid[:4], "t", "https://issuer/")


@pytest.fixture
def storage(tmp_path: Path):
    s = SQLiteStorage(tmp_path / "db.sqlite")
    yield s
    s.close()


@pytest.fixture
def keyring() -> Keyring:
    return Keyring([MasterKey.generate()])


@pytest.fixture
def store(storage, keyring) -> AuthzStore:
    return AuthzStore(SealedStore(storage, Barrier(keyring)))


@pytest.fixture
def authz(store) -> Authorizer:
    return Authorizer(ADMIN, store)


def assign(store: AuthzStore, scope: str, role: str, principal: str, **kw):
    a = new_assignment(scope, role, principal, "ServicePrincipal", ADMIN, **kw)
    store.put_assignment(a)
    return a


def secret_id(v: Vault, name: str) -> str:
    return f"{v.resource_id}/secrets/{name}"


# -- scopes and patterns -------------------------------------------------------------


def test_scope_containment_is_by_path_segment_and_case_insensitive():
    kv = vault().resource_id
    assert contains(kv, kv + "/secrets/db")
    assert contains(kv.upper(), kv.lower() + "/secrets/DB")
    assert contains(f"/subscriptions/{SUB}", kv)
    assert contains(f"/subscriptions/{SUB}/resourceGroups/RG1", kv)
    # Siblings that merely share a prefix are not contained.
    assert not contains(f"/subscriptions/{SUB}/resourceGroups/rg", kv)
    assert not contains(kv.replace("/kv1", "/kv"), kv)
    assert not contains(kv + "/secrets/db", kv + "/secrets/db2")
    assert not contains(kv + "/secrets/db", kv)  # a secret scope never reaches the vault (list)


def test_scopes_parse_at_four_levels_and_reject_others():
    kv = vault().resource_id
    assert [parse_scope(s).level for s in (f"/subscriptions/{SUB}", f"/subscriptions/{SUB}/resourceGroups/rg1", kv,
                                           kv + "/secrets/db")] == ["subscription", "resourceGroup", "vault", "secret"]
    for bad in ("/", "", "subscriptions/x", f"/subscriptions/{SUB}/providers/Microsoft.KeyVault/vaults/kv1",
                kv + "/keys/k", kv + "/secrets/db/versions"):
        with pytest.raises(ServiceError) as e:
            parse_scope(bad)
        assert e.value.status == 400 and e.value.code == "InvalidScope"


def test_wildcards_match_across_segments_case_insensitively():
    assert matches("Microsoft.KeyVault/vaults/*", GET)
    assert matches("microsoft.keyvault/VAULTS/secrets/*", PURGE)
    assert matches("Microsoft.KeyVault/vaults/*/read", "Microsoft.KeyVault/vaults/keys/read")
    assert not matches("Microsoft.KeyVault/vaults/*/read", GET)
    assert not matches("Microsoft.KeyVault/vaults/secrets/getSecret/action", SET)
    assert not matches("Microsoft.KeyVault/vaults/keys/*", GET)
    assert matches("Microsoft.KeyVault/vaults/secrets/getsecret/ACTION", GET)


# -- evaluation --------------------------------------------------------------------


def test_no_assignment_is_denied_with_azures_reason(authz):
    d = authz.check(caller(ALICE), vault(), GET, secret_id(vault(), "db"))
    assert (d.allowed, d.reason, d.assignment_id, d.rbac) == (False, "DeniedWithNoValidRBAC", None, True)


def test_instance_admin_is_always_allowed(authz):
    d = authz.check(caller(ADMIN), vault(), PURGE, secret_id(vault(), "db"))
    assert d.allowed and d.reason == "InstanceAdministrator" and d.assignment_id is None


@pytest.mark.parametrize("level", ["subscription", "resourceGroup", "vault", "secret"])
def test_an_assignment_at_any_containing_scope_grants_and_is_named(store, authz, level):
    v = vault()
    scope = {
        "subscription": f"/subscriptions/{SUB}",
        "resourceGroup": f"/subscriptions/{SUB}/resourceGroups/RG1",  # case differs from the vault's
        "vault": v.resource_id,
        "secret": secret_id(v, "db"),
    }[level]
    a = assign(store, scope, SECRETS_USER, ALICE)
    d = authz.check(caller(ALICE), v, GET, secret_id(v, "DB"))
    assert d.allowed and d.assignment_id == a.id and d.reason == "RoleAssignment"
    assert not authz.check(caller(BOB), v, GET, secret_id(v, "db")).allowed  # only Alice's
    # Another vault in the same group: reached only from the subscription or resource group.
    other = vault("kv2")
    assert authz.check(caller(ALICE), other, GET, secret_id(other, "db")).allowed == (level in ("subscription", "resourceGroup"))


def test_secret_scope_reaches_only_that_secret_and_not_the_listing(store, authz):
    v = vault()
    assign(store, secret_id(v, "db"), SECRETS_USER, ALICE)
    assert authz.check(caller(ALICE), v, GET, secret_id(v, "db")).allowed
    assert not authz.check(caller(ALICE), v, GET, secret_id(v, "db2")).allowed
    assert not authz.check(caller(ALICE), v, LIST, v.resource_id).allowed


def test_each_operation_checks_its_own_data_action(store, authz):
    v = vault()
    assign(store, v.resource_id, SECRETS_USER, ALICE)
    allowed = {op for op, action in SECRET_ACTIONS.items()
               if authz.check(caller(ALICE), v, action, secret_id(v, "db")).allowed}
    assert allowed == {"SecretGet", "SecretList", "SecretListVersions", "SecretListDeleted", "SecretGetDeleted"}
    assign(store, v.resource_id, READER, BOB)
    reader = {op for op, action in SECRET_ACTIONS.items() if authz.check(caller(BOB), v, action, secret_id(v, "db")).allowed}
    assert reader == {"SecretList", "SecretListVersions", "SecretListDeleted", "SecretGetDeleted"}


def custom_role(store: AuthzStore, name: str, data: tuple[str, ...], not_data: tuple[str, ...] = (), scopes=None) -> RoleDefinition:
    role = RoleDefinition(
        name=str(uuid.uuid4()), role_name=name, description="", role_type=CUSTOM,
        permissions=(Permission(data_actions=data, not_data_actions=not_data),),
        assignable_scopes=tuple(scopes or [f"/subscriptions/{SUB}"]),
    )
    store.put_role(role)
    return role


def test_not_data_actions_subtract_within_the_role_but_are_not_a_deny(store, authz):
    v = vault()
    no_purge = custom_role(store, "Secrets Officer without purge", ("Microsoft.KeyVault/vaults/secrets/*",),
                           ("Microsoft.KeyVault/vaults/secrets/purge/action",))
    assign(store, v.resource_id, no_purge.name, ALICE)
    sid = secret_id(v, "db")
    assert authz.check(caller(ALICE), v, SET, sid).allowed
    assert not authz.check(caller(ALICE), v, PURGE, sid).allowed
    # Union: another assignment that grants purge wins; notDataActions of one role deny nothing of another.
    officer = assign(store, sid, SECRETS_OFFICER, ALICE)
    d = authz.check(caller(ALICE), v, PURGE, sid)
    assert d.allowed and d.assignment_id == officer.id
    assert not authz.check(caller(ALICE), v, PURGE, secret_id(v, "other")).allowed


def test_union_of_assignments_at_different_scopes(store, authz):
    v = vault()
    reader = assign(store, f"/subscriptions/{SUB}", READER, ALICE)
    user = assign(store, secret_id(v, "db"), SECRETS_USER, ALICE)
    assert authz.check(caller(ALICE), v, LIST, v.resource_id).assignment_id == reader.id
    assert authz.check(caller(ALICE), v, GET, secret_id(v, "db")).assignment_id == user.id
    assert not authz.check(caller(ALICE), v, GET, secret_id(v, "other")).allowed


def test_custom_role_changes_and_deletion_take_effect(store, authz):
    v = vault()
    role = custom_role(store, "Getter", ("Microsoft.KeyVault/vaults/secrets/getSecret/action",))
    assign(store, v.resource_id, role.name, ALICE)
    assert authz.check(caller(ALICE), v, GET, secret_id(v, "db")).allowed
    # Narrow the role: the same assignment now grants nothing for get.
    store.put_role(RoleDefinition(**{**role.__dict__, "permissions": (Permission(
        data_actions=("Microsoft.KeyVault/vaults/secrets/readMetadata/action",)),)}))
    assert not authz.check(caller(ALICE), v, GET, secret_id(v, "db")).allowed
    assert authz.check(caller(ALICE), v, LIST, v.resource_id).allowed
    store.delete_role(role)  # an orphaned assignment grants nothing
    assert not authz.check(caller(ALICE), v, LIST, v.resource_id).allowed


def test_a_change_in_one_process_is_seen_by_another_on_its_next_check(storage, keyring):
    """Two stores on one database: what one worker writes, the other enforces on its very next check."""
    worker1 = Authorizer(ADMIN, AuthzStore(SealedStore(storage, Barrier(keyring))))
    other_storage = SQLiteStorage(storage.path)  # a second connection, as another process has
    try:
        worker2 = Authorizer(ADMIN, AuthzStore(SealedStore(other_storage, Barrier(keyring))))
        v, sid = vault(), secret_id(vault(), "db")
        assert not worker2.check(caller(ALICE), v, GET, sid).allowed  # snapshot built (empty)
        a = assign(worker1.store, v.resource_id, SECRETS_USER, ALICE)
        assert worker2.check(caller(ALICE), v, GET, sid).allowed
        worker1.store.delete_assignment(a)
        assert not worker2.check(caller(ALICE), v, GET, sid).allowed
    finally:
        other_storage.close()


def test_the_snapshot_is_reused_until_something_changes(store, authz):
    v = vault()
    assign(store, v.resource_id, SECRETS_USER, ALICE)
    first = store.snapshot()
    authz.check(caller(ALICE), v, GET, secret_id(v, "db"))
    assert store.snapshot() is first
    assign(store, v.resource_id, READER, BOB)
    assert store.snapshot() is not first


# -- access policies -----------------------------------------------------------------


def test_access_policy_vault_ignores_rbac_and_rbac_vault_ignores_policies(store, authz):
    from strongroom.authz import policies

    v = vault(rbac=False)
    v.access_policies = [policies.entry("t", ALICE, {"secrets": ["get"]})]
    assign(store, v.resource_id, SECRETS_OFFICER, ALICE)  # ignored on an access-policy vault
    sid = secret_id(v, "db")
    d = authz.check(caller(ALICE), v, GET, sid, "secrets/get")
    assert d.allowed and not d.rbac and d.assignment_id is None
    denied = authz.check(caller(ALICE), v, LIST, v.resource_id, "secrets/list")
    assert not denied.allowed and denied.permission == "secrets/list"
    assert not authz.check(caller(ALICE), v, SET, sid, "secrets/set").allowed
    v.rbac_authorization = True  # switched: now the assignment counts and the policy does not
    assert authz.check(caller(ALICE), v, SET, sid).allowed
    assert not authz.check(caller(BOB), v, GET, sid).allowed


def test_all_in_a_stored_policy_means_every_permission():
    from strongroom.authz import policies

    stored = [policies.entry("t", ALICE, {"secrets": ["all"]})]
    assert all(policies.allows(stored, ALICE, None, f"secrets/{p}") for p in policies.PERMISSIONS["secrets"])
    assert not policies.allows(stored, ALICE, None, "keys/get")
    assert policies.canonical_permissions("keys", ["WRAPKEY", "all"], expand_all=True)[0] == "wrapKey"
    with pytest.raises(ServiceError):
        policies.canonical_permissions("secrets", ["read"])


# -- conditions --------------------------------------------------------------------


def test_data_access_administrator_condition_limits_which_roles_it_may_assign():
    daa = BUILTIN_BY_GUID[DATA_ACCESS_ADMIN].permissions[0]
    node = compile_condition(daa.condition)
    write, delete = "Microsoft.Authorization/roleAssignments/write", "Microsoft.Authorization/roleAssignments/delete"
    ok = assignment_attributes("request", SECRETS_USER, BOB, "ServicePrincipal")
    escalate = assignment_attributes("request", DATA_ACCESS_ADMIN, BOB, "ServicePrincipal")
    contributor = assignment_attributes("request", "f25e0fa2-a7c8-4377-a976-54943a77a395", BOB, "ServicePrincipal")
    assert node(Context(write, ok))
    assert not node(Context(write, escalate))
    assert not node(Context(write, contributor))
    assert node(Context(delete, assignment_attributes("resource", ADMINISTRATOR, BOB, "ServicePrincipal")))
    assert not node(Context(delete, assignment_attributes("resource", DATA_ACCESS_ADMIN, BOB, "ServicePrincipal")))
    assert node(Context("Microsoft.Authorization/roleAssignments/read", {}))


def test_may_applies_actions_scope_and_condition(store, authz):
    v = vault()
    assign(store, v.resource_id, DATA_ACCESS_ADMIN, ALICE)
    write = "Microsoft.Authorization/roleAssignments/write"
    ok = assignment_attributes("request", SECRETS_USER, BOB, "ServicePrincipal")
    assert authz.may(caller(ALICE), write, v.resource_id + "/secrets/db", ok).allowed
    assert not authz.may(caller(ALICE), write, f"/subscriptions/{SUB}", ok).allowed  # above its scope
    bad = assignment_attributes("request", DATA_ACCESS_ADMIN, BOB, "ServicePrincipal")
    assert not authz.may(caller(ALICE), write, v.resource_id, bad).allowed
    assert authz.may(caller(ALICE), "Microsoft.Authorization/roleAssignments/read", v.resource_id).allowed
    # A Secrets User has no control-plane actions at all.
    assign(store, v.resource_id, SECRETS_USER, BOB)
    assert not authz.may(caller(BOB), "Microsoft.Authorization/roleAssignments/read", v.resource_id).allowed


def test_an_assignment_condition_constrains_delegation(store, authz):
    v = vault()
    only_users = ("((!(ActionMatches{'Microsoft.Authorization/roleAssignments/write'})) OR "
                  f"(@Request[Microsoft.Authorization/roleAssignments:RoleDefinitionId] ForAnyOfAnyValues:GuidEquals{{{SECRETS_USER}}}))")
    assign(store, v.resource_id, DATA_ACCESS_ADMIN, ALICE, condition=only_users, condition_version="2.0")
    write = "Microsoft.Authorization/roleAssignments/write"
    assert authz.may(caller(ALICE), write, v.resource_id, assignment_attributes("request", SECRETS_USER, BOB, "ServicePrincipal")).allowed
    assert not authz.may(caller(ALICE), write, v.resource_id, assignment_attributes("request", READER, BOB, "ServicePrincipal")).allowed


@pytest.mark.parametrize("bad", [
    "@Resource[Microsoft.KeyVault/vaults/secrets:name] StringEquals 'x'",  # an attribute we do not have
    "ActionMatches{'x'} AND",
    "(ActionMatches{'x'}",
    "@Request[Microsoft.Authorization/roleAssignments:RoleDefinitionId] Frobnicates {x}",
    "DROP TABLE",
])
def test_conditions_outside_the_supported_subset_are_rejected(bad):
    with pytest.raises(ConditionError):
        compile_condition(bad)


# -- vault lifecycle -------------------------------------------------------------------


def test_vault_creation_grants_its_creator_and_clears_a_purged_namesakes_grants(store, authz):
    v = vault()
    stale = assign(store, secret_id(v, "db"), SECRETS_USER, BOB)  # left over from a purged vault "kv1"
    store.store.write(authz.on_vault_created(caller(ALICE))(v))
    snap = store.snapshot()
    assert stale.name not in snap.assignments
    (grant,) = snap.grants_for(ALICE)
    assert grant.role.role_name == "Key Vault Administrator" and grant.assignment.scope == v.resource_id
    policy_vault = vault("kv2", rbac=False)
    assert store.store.write(authz.on_vault_created(caller(ALICE))(policy_vault)) is None
    assert policy_vault.access_policies[0]["objectId"] == ALICE
    assert "purge" in policy_vault.access_policies[0]["permissions"]["secrets"]
