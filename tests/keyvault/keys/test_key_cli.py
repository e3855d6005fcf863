"""`strongroom keyvault key ...` with az's names, flags and output shapes, against a real server."""

from __future__ import annotations

import base64
import hashlib
import json

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa, utils

from .conftest import unique


def _fails(server, *args: str) -> str:
    proc = server.cli(*args, check=False)
    assert proc.returncode != 0, proc.stdout
    return proc.stderr


def test_create_show_list_set_attributes(server, vault):
    name = unique("cli")
    created = server.cli_json("keyvault", "key", "create", "--vault-name", vault, "--name", name, "--kty", "EC",
                              "--curve", "P-384", "--ops", "sign", "verify", "--tags", "team=infra", "--expires",
                              "2030-01-01T00:00:00Z")
    assert created["key"]["kty"] == "EC" and created["key"]["crv"] == "P-384" and created["key"]["d"] is None
    assert created["key"]["keyOps"] == ["sign", "verify"] and created["tags"] == {"team": "infra"}
    assert created["attributes"]["expires"] == "2030-01-01T00:00:00+00:00" and created["attributes"]["enabled"] is True
    kid = created["key"]["kid"]
    assert server.cli_json("keyvault", "key", "show", "--id", kid)["key"]["x"] == created["key"]["x"]
    listed = server.cli_json("keyvault", "key", "list", "--vault-name", vault, "--query", f"[?name=='{name}']")
    assert listed[0]["kid"].endswith(f"/keys/{name}") and listed[0]["attributes"]["enabled"] is True
    updated = server.cli_json("keyvault", "key", "set-attributes", "--vault-name", vault, "--name", name, "--enabled", "false")
    assert updated["attributes"]["enabled"] is False
    versions = server.cli_json("keyvault", "key", "list-versions", "--vault-name", vault, "--name", name)
    assert [v["kid"] for v in versions] == [kid]


def test_import_pem_encrypt_decrypt_sign_verify(server, vault, tmp_path):
    name = unique("cli-rsa")
    priv = rsa.generate_private_key(65537, 2048)
    pem = tmp_path / "key.pem"
    pem.write_bytes(priv.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.BestAvailableEncryption(b"pw")))
    imported = server.cli_json("keyvault", "key", "import", "--vault-name", vault, "--name", name, "--pem-file", str(pem),
                               "--pem-password", "pw")
    n = int.from_bytes(base64.urlsafe_b64decode(imported["key"]["n"] + "=="), "big")
    assert n == priv.public_key().public_numbers().n

    encrypted = server.cli_json("keyvault", "key", "encrypt", "--vault-name", vault, "--name", name, "--algorithm",
                                "RSA-OAEP-256", "--value", base64.b64encode(b"hello").decode())
    oaep = padding.OAEP(padding.MGF1(hashes.SHA256()), hashes.SHA256(), None)
    assert priv.decrypt(base64.b64decode(encrypted["result"]), oaep) == b"hello"
    decrypted = server.cli_json("keyvault", "key", "decrypt", "--vault-name", vault, "--name", name, "--algorithm",
                                "RSA-OAEP-256", "--value", encrypted["result"], "--data-type", "plaintext")
    assert decrypted["result"] == "hello"

    digest = hashlib.sha256(b"document").digest()
    signed = server.cli_json("keyvault", "key", "sign", "--vault-name", vault, "--name", name, "--algorithm", "PS256",
                             "--digest", base64.b64encode(digest).decode())
    sig = base64.b64decode(signed["signature"])
    priv.public_key().verify(sig, digest, padding.PSS(padding.MGF1(hashes.SHA256()), 32), utils.Prehashed(hashes.SHA256()))
    verified = server.cli_json("keyvault", "key", "verify", "--vault-name", vault, "--name", name, "--algorithm", "PS256",
                               "--digest", base64.b64encode(digest).decode(), "--signature", signed["signature"])
    assert verified["isValid"] is True


def test_delete_recover_purge_backup_restore(server, vault, tmp_path):
    name = unique("cli-life")
    server.cli("keyvault", "key", "create", "--vault-name", vault, "--name", name, "--kty", "oct", "--size", "256")
    deleted = server.cli_json("keyvault", "key", "delete", "--vault-name", vault, "--name", name)
    assert deleted["recoveryId"].endswith(f"/deletedkeys/{name}") and deleted["deletedDate"]
    server.cli("keyvault", "key", "recover", "--vault-name", vault, "--name", name)
    backup = tmp_path / "key.blob"
    server.cli("keyvault", "key", "backup", "--vault-name", vault, "--name", name, "--file", str(backup))
    server.cli("keyvault", "key", "delete", "--vault-name", vault, "--name", name)
    server.cli("keyvault", "key", "purge", "--vault-name", vault, "--name", name)
    restored = server.cli_json("keyvault", "key", "restore", "--vault-name", vault, "--file", str(backup))
    assert restored["key"]["kid"].split("/")[4] == name and restored["key"]["kty"] == "oct"


def test_rotation_policy_and_rotate(server, vault, tmp_path):
    name = unique("cli-rot")
    first = server.cli_json("keyvault", "key", "create", "--vault-name", vault, "--name", name)
    policy = tmp_path / "policy.json"
    policy.write_text(json.dumps({"lifetimeActions": [{"trigger": {"timeAfterCreate": "P90D"}, "action": {"type": "Rotate"}},
                                                      {"trigger": {"timeBeforeExpiry": "P30D"}, "action": {"type": "Notify"}}],
                                  "attributes": {"expiryTime": "P2Y"}}))
    updated = server.cli_json("keyvault", "key", "rotation-policy", "update", "--vault-name", vault, "--name", name,
                              "--value", f"@{policy}")
    assert updated["expiresIn"] == "P2Y"
    assert {(a["action"], a["timeAfterCreate"], a["timeBeforeExpiry"]) for a in updated["lifetimeActions"]} == {
        ("Rotate", "P90D", None), ("Notify", None, "P30D")}
    shown = server.cli_json("keyvault", "key", "rotation-policy", "show", "--vault-name", vault, "--name", name)
    assert shown["id"].endswith(f"/keys/{name}/rotationpolicy") and shown["createdOn"]
    rotated = server.cli_json("keyvault", "key", "rotate", "--vault-name", vault, "--name", name)
    assert rotated["key"]["kid"] != first["key"]["kid"] and rotated["attributes"]["expires"]


def test_errors_are_one_line_with_azure_codes(server, vault):
    assert "(KeyNotFound)" in _fails(server, "keyvault", "key", "show", "--vault-name", vault, "--name", unique("nope"))
    assert "(BadParameter)" in _fails(server, "keyvault", "key", "create", "--vault-name", vault, "--name", unique("x"),
                                      "--kty", "RSA", "--size", "1024")
    assert "usage error" in _fails(server, "keyvault", "key", "show", "--name", "x")
    assert "cannot read the PEM" in _fails(server, "keyvault", "key", "import", "--vault-name", vault, "--name", unique("x"),
                                           "--pem-string", "not a pem")
