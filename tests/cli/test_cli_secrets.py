"""The CLI as a user types it: `strongroom keyvault ...` and `keyvault secret ...`, az's flags and output."""

from __future__ import annotations

import base64
import json
import stat
from pathlib import Path

import pytest
import yaml

from tests.conftest import Server

MISSING = "A secret with (name/id) {} was not found in this key vault."


def fails(server: Server, *args: str) -> tuple[str, str]:
    """Run a command that must fail; return (code, message) from its single stderr line."""
    proc = server.cli(*args, check=False)
    assert proc.returncode != 0, proc.stdout
    assert proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("ERROR: ("), lines[0]
    code, _, message = lines[0].removeprefix("ERROR: (").partition(") ")
    return code, message


def secret(server: Server, vault: str, *args: str):
    return server.cli_json("keyvault", "secret", *args, "--vault-name", vault)


# -- vaults -------------------------------------------------------------------------


def test_vault_life_cycle(server: Server):
    admin = server.admin
    created = server.cli_json("keyvault", "create", "--name", "kv-cli-life", "--retention-days", "7",
                              "--tags", "env=dev", "team=x")
    assert created["name"] == "kv-cli-life"
    assert created["id"] == (f"/subscriptions/{admin['subscriptionId']}/resourceGroups/strongroom"
                             "/providers/Microsoft.KeyVault/vaults/kv-cli-life")
    assert created["resourceGroup"] == "strongroom"
    assert created["tags"] == {"env": "dev", "team": "x"}
    props = created["properties"]
    assert props["vaultUri"] == server.vault_url("kv-cli-life") + "/"
    assert props["tenantId"] == admin["tenantId"]
    assert props["softDeleteRetentionInDays"] == 7
    assert props["enableRbacAuthorization"] is True

    assert server.cli_json("keyvault", "show", "--name", "kv-cli-life") == created
    assert "kv-cli-life" in server.cli_json("keyvault", "list", "--query", "[].name")
    secret(server, "kv-cli-life", "set", "--name", "inside", "--value", "v1")

    assert server.cli("keyvault", "delete", "--name", "kv-cli-life").stdout == ""
    assert "kv-cli-life" not in server.cli_json("keyvault", "list", "--query", "[].name")
    deleted = server.cli_json("keyvault", "list-deleted", "--query", "[?name=='kv-cli-life'] | [0]")
    assert deleted["properties"]["vaultId"] == created["id"]
    assert fails(server, "keyvault", "show", "--name", "kv-cli-life")[0] == "ResourceNotFound"
    # The name stays taken while the vault is soft-deleted.
    assert fails(server, "keyvault", "create", "--name", "kv-cli-life")[0] == "ConflictError"

    assert server.cli_json("keyvault", "recover", "--name", "kv-cli-life", "--query", "name") == "kv-cli-life"
    assert secret(server, "kv-cli-life", "show", "--name", "inside", "--query", "value") == "v1"

    server.cli("keyvault", "delete", "--name", "kv-cli-life")
    server.cli("keyvault", "purge", "--name", "kv-cli-life")
    assert server.cli_json("keyvault", "list-deleted", "--query", "[?name=='kv-cli-life']") == []
    # Purged: the name is free again and nothing of the old vault comes back.
    server.cli("keyvault", "create", "--name", "kv-cli-life")
    assert fails(server, "keyvault", "secret", "show", "--vault-name", "kv-cli-life", "--name", "inside")[0] == "SecretNotFound"


def test_vault_rbac_flag_takes_a_value(server: Server):
    v = server.cli_json("keyvault", "create", "--name", "kv-cli-policies", "--enable-rbac-authorization", "false")
    assert v["properties"]["enableRbacAuthorization"] is False
    v = server.cli_json("keyvault", "create", "--name", "kv-cli-rbac", "--enable-rbac-authorization")
    assert v["properties"]["enableRbacAuthorization"] is True


@pytest.mark.parametrize("name", ["ab", "1abc", "a--b", "abc-", "a" * 25, "ab_c", "-abc", "ab.c"])
def test_vault_name_rules(server: Server, name: str):
    code, message = fails(server, "keyvault", "create", "--name", name)
    assert code == "VaultNameNotValid"
    assert f"'{name}'" in message and "3-24" in message


def test_vault_names_at_the_limits(server: Server):
    for name in ("abc", "z" * 24, "a-b-c-1"):
        assert server.cli_json("keyvault", "create", "--name", name, "--query", "name") == name


# -- secrets: set and show -----------------------------------------------------------


def test_set_with_every_attribute(server: Server, vault: str):
    s = secret(server, vault, "set", "--name", "cli-attrs", "--value", "s3cret", "--content-type", "text/plain",
               "--tags", "a=1", "b=2", "--expires", "2030-01-01T00:00:00Z", "--not-before", "2020-06-01T12:30:00Z",
               "--disabled", "true")
    assert s["value"] == "s3cret"
    assert s["name"] == "cli-attrs"
    assert s["id"].startswith(f"{server.vault_url(vault)}/secrets/cli-attrs/")
    assert s["contentType"] == "text/plain"
    assert s["tags"] == {"a": "1", "b": "2"}
    assert s["attributes"]["enabled"] is False
    assert s["attributes"]["expires"] == "2030-01-01T00:00:00+00:00"
    assert s["attributes"]["notBefore"] == "2020-06-01T12:30:00+00:00"
    assert s["attributes"]["recoveryLevel"] == "Recoverable+Purgeable"
    # A bare --disabled means true, as in az; --disabled false enables.
    assert secret(server, vault, "set", "--name", "cli-attrs", "--value", "x", "--disabled",
                  "--query", "attributes.enabled") is False
    assert secret(server, vault, "set", "--name", "cli-attrs", "--value", "y", "--disabled", "false",
                  "--query", "attributes.enabled") is True
    assert secret(server, vault, "show", "--name", "cli-attrs", "--query", "value") == "y"


def test_show_by_version_and_id(server: Server, vault: str):
    first = secret(server, vault, "set", "--name", "cli-versions", "--value", "one")
    second = secret(server, vault, "set", "--name", "cli-versions", "--value", "two")
    version = first["id"].rsplit("/", 1)[1]
    assert secret(server, vault, "show", "--name", "cli-versions", "--version", version, "--query", "value") == "one"
    assert secret(server, vault, "show", "--name", "cli-versions", "--query", "value") == "two"
    by_id = server.cli_json("keyvault", "secret", "show", "--id", first["id"])
    assert by_id["value"] == "one" and by_id["id"] == first["id"]
    latest = server.cli_json("keyvault", "secret", "show", "--id", first["id"].rsplit("/", 1)[0], "--query", "id")
    assert latest == second["id"]

    versions = server.cli_json("keyvault", "secret", "list-versions", "--vault-name", vault, "--name", "cli-versions")
    assert sorted(v["id"] for v in versions) == sorted([first["id"], second["id"]])
    assert all("value" not in v for v in versions)
    listed = secret(server, vault, "list", "--query", "[?name=='cli-versions']")
    assert len(listed) == 1 and "value" not in listed[0]
    assert listed[0]["id"] == f"{server.vault_url(vault)}/secrets/cli-versions"


@pytest.mark.parametrize("encoding", ["base64", "hex", "utf-8"])
def test_set_from_file_and_download(server: Server, vault: str, tmp_path: Path, encoding: str):
    data = "héllo ünïcode\n".encode() if encoding == "utf-8" else bytes(range(256))
    src = tmp_path / "in.bin"
    src.write_bytes(data)
    name = f"cli-file-{encoding.replace('-', '')}"
    s = secret(server, vault, "set", "--name", name, "--file", str(src), "--encoding", encoding)
    expected = {"base64": lambda: base64.b64encode(data).decode(), "hex": data.hex, "utf-8": data.decode}[encoding]()
    assert s["value"] == expected
    assert s["tags"] == {"file-encoding": encoding}

    # Without --encoding, download uses the secret's file-encoding tag (as az does).
    out = tmp_path / "out.bin"
    server.cli("keyvault", "secret", "download", "--vault-name", vault, "--name", name, "--file", str(out))
    assert out.read_bytes() == data
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    out2 = tmp_path / "out2.bin"
    server.cli("keyvault", "secret", "download", "--vault-name", vault, "--name", name, "--file", str(out2),
               "--encoding", encoding)
    assert out2.read_bytes() == data
    # An existing file is never overwritten.
    code, message = fails(server, "keyvault", "secret", "download", "--vault-name", vault, "--name", name,
                          "--file", str(out))
    assert code == "InvalidArgumentValue" and "already exists" in message
    assert out.read_bytes() == data


def test_binary_file_needs_a_binary_encoding(server: Server, vault: str, tmp_path: Path):
    src = tmp_path / "bin"
    src.write_bytes(b"\xff\xfe\x00binary")
    code, message = fails(server, "keyvault", "secret", "set", "--vault-name", vault, "--name", "cli-bin",
                          "--file", str(src))
    assert code == "InvalidArgumentValue" and "base64" in message
    code, _ = fails(server, "keyvault", "secret", "set", "--vault-name", vault, "--name", "cli-bin",
                    "--file", str(tmp_path / "missing"))
    assert code == "InvalidArgumentValue"


# -- secrets: attributes, delete, recover, purge, backup -------------------------------


def test_set_attributes(server: Server, vault: str):
    created = secret(server, vault, "set", "--name", "cli-setattr", "--value", "v", "--tags", "old=1")
    version = created["id"].rsplit("/", 1)[1]
    updated = secret(server, vault, "set-attributes", "--name", "cli-setattr", "--enabled", "false",
                     "--tags", "new=2", "--content-type", "application/json", "--expires", "2031-02-03T04:05:06Z")
    assert "value" not in updated
    assert updated["id"] == created["id"]
    assert updated["attributes"]["enabled"] is False
    assert updated["attributes"]["expires"] == "2031-02-03T04:05:06+00:00"
    assert updated["tags"] == {"new": "2"}
    assert updated["contentType"] == "application/json"
    # A disabled secret's value cannot be read, as in Azure.
    assert fails(server, "keyvault", "secret", "show", "--vault-name", vault, "--name", "cli-setattr")[0] == "Forbidden"
    secret(server, vault, "set-attributes", "--name", "cli-setattr", "--version", version, "--enabled", "true")
    shown = secret(server, vault, "show", "--name", "cli-setattr")
    assert shown["value"] == "v" and shown["tags"] == {"new": "2"} and shown["attributes"]["enabled"] is True


def test_delete_show_deleted_recover_purge(server: Server, vault: str):
    secret(server, vault, "set", "--name", "cli-del", "--value", "keep-me")
    deleted = secret(server, vault, "delete", "--name", "cli-del")
    assert deleted["recoveryId"] == f"{server.vault_url(vault)}/deletedsecrets/cli-del"
    assert deleted["deletedDate"] and deleted["scheduledPurgeDate"]
    assert "value" not in deleted

    code, message = fails(server, "keyvault", "secret", "show", "--vault-name", vault, "--name", "cli-del")
    assert code == "SecretNotFound" and message.startswith(MISSING.format("cli-del"))
    assert "cli-del" in secret(server, vault, "list-deleted", "--query", "[].name")
    assert "cli-del" not in secret(server, vault, "list", "--query", "[].name")
    shown = secret(server, vault, "show-deleted", "--name", "cli-del")
    assert shown["recoveryId"] == deleted["recoveryId"] and "value" not in shown
    by_id = server.cli_json("keyvault", "secret", "show-deleted", "--id", deleted["recoveryId"], "--query", "name")
    assert by_id == "cli-del"

    recovered = secret(server, vault, "recover", "--name", "cli-del")
    assert recovered["name"] == "cli-del" and "value" not in recovered
    assert secret(server, vault, "show", "--name", "cli-del", "--query", "value") == "keep-me"

    secret(server, vault, "delete", "--name", "cli-del")
    assert server.cli("keyvault", "secret", "purge", "--vault-name", vault, "--name", "cli-del").stdout == ""
    assert "cli-del" not in secret(server, vault, "list-deleted", "--query", "[].name")
    code, message = fails(server, "keyvault", "secret", "show-deleted", "--vault-name", vault, "--name", "cli-del")
    assert code == "SecretNotFound" and "cli-del" in message
    assert fails(server, "keyvault", "secret", "recover", "--vault-name", vault, "--name", "cli-del")[0] == "SecretNotFound"
    # Purged: the name can be used afresh.
    assert secret(server, vault, "set", "--name", "cli-del", "--value", "new", "--query", "value") == "new"


def test_backup_and_restore(server: Server, vault: str, tmp_path: Path):
    secret(server, vault, "set", "--name", "cli-bak", "--value", "backup-me-PLAIN", "--tags", "k=v")
    secret(server, vault, "set", "--name", "cli-bak", "--value", "backup-me-LATEST")
    blob = tmp_path / "cli-bak.blob"
    assert server.cli("keyvault", "secret", "backup", "--vault-name", vault, "--name", "cli-bak",
                      "--file", str(blob)).stdout == ""
    assert stat.S_IMODE(blob.stat().st_mode) == 0o600
    assert b"backup-me" not in blob.read_bytes()
    code, message = fails(server, "keyvault", "secret", "backup", "--vault-name", vault, "--name", "cli-bak",
                          "--file", str(blob))
    assert code == "InvalidArgumentValue" and "already exists" in message

    # A restore over a live secret is refused.
    code, _ = fails(server, "keyvault", "secret", "restore", "--vault-name", vault, "--file", str(blob))
    assert code == "Conflict"

    secret(server, vault, "delete", "--name", "cli-bak")
    server.cli("keyvault", "secret", "purge", "--vault-name", vault, "--name", "cli-bak")
    restored = server.cli_json("keyvault", "secret", "restore", "--vault-name", vault, "--file", str(blob))
    assert restored["name"] == "cli-bak" and "value" not in restored
    assert secret(server, vault, "show", "--name", "cli-bak", "--query", "value") == "backup-me-LATEST"
    assert len(secret(server, vault, "list-versions", "--name", "cli-bak")) == 2

    junk = tmp_path / "junk.blob"
    junk.write_bytes(b"not a backup")
    assert fails(server, "keyvault", "secret", "restore", "--vault-name", vault, "--file", str(junk))[0]


# -- output and errors ----------------------------------------------------------------


@pytest.fixture(scope="module")
def shown(server: Server, vault: str) -> dict:
    return secret(server, vault, "set", "--name", "cli-out", "--value", "out-value", "--tags", "team=red")


def test_output_json_and_yaml(server: Server, vault: str, shown: dict):
    args = ["keyvault", "secret", "show", "--vault-name", vault, "--name", "cli-out"]
    as_json = json.loads(server.cli(*args, "-o", "json").stdout)
    assert as_json == shown
    assert yaml.safe_load(server.cli(*args, "-o", "yaml").stdout) == as_json
    assert server.cli(*args, "-o", "none").stdout == ""


def test_output_tsv_and_table(server: Server, vault: str, shown: dict):
    args = ["keyvault", "secret", "show", "--vault-name", vault, "--name", "cli-out"]
    assert server.cli(*args, "--query", "value", "-o", "tsv").stdout == "out-value\n"
    # az's tsv: columns sorted by key, an object blank, a null "None".
    tsv = server.cli(*args, "-o", "tsv").stdout
    assert tsv == f"\tNone\t{shown['id']}\tNone\tNone\tcli-out\t\tout-value\n"
    # A query's object keeps the query's column order.
    assert server.cli(*args, "--query", "{n: name, t: tags.team, c: contentType}", "-o", "tsv").stdout == "cli-out\tred\tNone\n"
    table = server.cli(*args, "-o", "table").stdout.splitlines()
    assert table[0].split()[:1] and "Name" in table[0].split() and "Value" in table[0].split()
    assert shown["id"] in table[1] and "out-value" in table[1]  # cells are never truncated
    names = server.cli("keyvault", "secret", "list", "--vault-name", vault, "--query", "[].name", "-o", "tsv")
    assert "cli-out" in names.stdout.splitlines()


def test_query_is_jmespath(server: Server, vault: str, shown: dict):
    red = secret(server, vault, "list", "--query", "[?tags.team=='red'].{n: name, t: tags.team}")
    assert {"n": "cli-out", "t": "red"} in red
    assert secret(server, vault, "show", "--name", "cli-out", "--query", "length(tags)") == 1


def test_bad_query_is_refused_before_anything_is_done(server: Server, vault: str):
    code, message = fails(server, "keyvault", "secret", "set", "--vault-name", vault, "--name", "cli-badq",
                          "--value", "v", "--query", "[[")
    assert code == "InvalidArgumentValue" and "--query" in message
    assert fails(server, "keyvault", "secret", "show", "--vault-name", vault, "--name", "cli-badq")[0] == "SecretNotFound"


def test_errors_are_one_line_with_the_servers_code(server: Server, vault: str):
    code, message = fails(server, "keyvault", "secret", "show", "--vault-name", vault, "--name", "no-such-secret")
    assert code == "SecretNotFound" and message.startswith(MISSING.format("no-such-secret"))
    code, _ = fails(server, "keyvault", "secret", "set", "--vault-name", vault, "--name", "bad_name", "--value", "v")
    assert code == "BadParameter"
    code, _ = fails(server, "keyvault", "secret", "set", "--vault-name", vault, "--name", "x", "--value", "v",
                    "--expires", "next tuesday")
    assert code == "InvalidArgumentValue"
    code, _ = fails(server, "keyvault", "secret", "set", "--vault-name", vault, "--name", "x", "--value", "v",
                    "--disabled", "maybe")
    assert code == "InvalidArgumentValue"
    code, _ = fails(server, "keyvault", "secret", "set", "--vault-name", vault, "--name", "x")
    assert code == "InvalidArgumentValue"
    code, _ = fails(server, "keyvault", "secret", "show", "--vault-name", "kv-never-made", "--name", "x")
    assert code == "VaultNotFound"


def test_secret_values_never_reach_error_output(server: Server, vault: str):
    proc = server.cli("keyvault", "secret", "set", "--vault-name", vault, "--name", "cli-leak",
                      "--value", "LEAK-CANARY-123", "--content-type", "x" * 300, check=False)
    assert proc.returncode != 0
    assert "LEAK-CANARY" not in proc.stderr and "LEAK-CANARY" not in proc.stdout
