"""`keyvault update` changes only what it is given; `keyvault create` on an existing vault is refused, as az does."""

from __future__ import annotations

import uuid

from tests.conftest import Server


def unique() -> str:
    return f"kvu-{uuid.uuid4().hex[:8]}"


def test_create_on_an_existing_vault_is_refused_and_changes_nothing(server: Server) -> None:
    name = unique()
    server.cli("keyvault", "create", "--name", name, "--enable-rbac-authorization", "false", "--tags", "team=a")
    again = server.cli("keyvault", "create", "--name", name, check=False)
    assert again.returncode == 1
    assert again.stderr.strip() == (f"ERROR: (VaultAlreadyExists) The specified vault: {name} already exists. "
                                    "Change its settings with `strongroom keyvault update`.")
    vault = server.cli_json("keyvault", "show", "--name", name)
    assert vault["properties"]["enableRbacAuthorization"] is False  # the re-run used to reset it to true
    assert vault["tags"] == {"team": "a"}


def test_update_changes_only_what_it_is_given(server: Server) -> None:
    name = unique()
    server.cli("keyvault", "create", "--name", name, "--tags", "team=a", "--retention-days", "14")
    v = server.cli_json("keyvault", "update", "--name", name, "--tags", "env=prod", "owner=me")
    assert v["tags"] == {"env": "prod", "owner": "me"}
    assert v["properties"]["softDeleteRetentionInDays"] == 14 and v["properties"]["enableRbacAuthorization"] is True

    v = server.cli_json("keyvault", "update", "--name", name, "--retention-days", "30", "--enable-purge-protection")
    assert v["properties"]["softDeleteRetentionInDays"] == 30 and v["properties"]["enablePurgeProtection"] is True
    assert v["tags"] == {"env": "prod", "owner": "me"}

    v = server.cli_json("keyvault", "update", "--name", name, "--enable-rbac-authorization", "false")
    assert v["properties"]["enableRbacAuthorization"] is False and v["properties"]["enablePurgeProtection"] is True

    v = server.cli_json("keyvault", "update", "--name", name, "--tags", "")
    assert v["tags"] == {} and v["properties"]["softDeleteRetentionInDays"] == 30


def test_update_surfaces_the_servers_refusal(server: Server) -> None:
    name = unique()
    server.cli("keyvault", "create", "--name", name, "--enable-purge-protection")
    off = server.cli("keyvault", "update", "--name", name, "--enable-purge-protection", "false", check=False)
    assert off.returncode == 1 and "Traceback" not in off.stderr
    assert off.stderr.strip() == "ERROR: (BadRequest) Purge protection cannot be disabled once it has been enabled."
    bad = server.cli("keyvault", "update", "--name", name, "--retention-days", "3", check=False)
    assert bad.returncode == 1 and "between 7 and 90" in bad.stderr
    assert server.cli_json("keyvault", "show", "--name", name)["properties"]["softDeleteRetentionInDays"] == 90
