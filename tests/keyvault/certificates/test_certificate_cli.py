"""`strongroom keyvault certificate ...` with az's names, flags and output shapes, against a real server."""

from __future__ import annotations

import base64
import json

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs12

from .conftest import self_signed, unique


def _fails(server, *args: str) -> str:
    proc = server.cli(*args, check=False)
    assert proc.returncode != 0, proc.stdout
    return proc.stderr


def test_default_policy_create_show_download(server, vault, tmp_path):
    policy = server.cli_json("keyvault", "certificate", "get-default-policy")
    assert policy["x509CertificateProperties"]["subject"] == "CN=CLIGetDefaultPolicy"
    assert policy["issuerParameters"]["name"] == "Self" and policy["keyProperties"]["keyType"] == "RSA"
    # The az recipe: edit the default policy's subject and create from it.
    name = unique("cli-cert")
    policy["x509CertificateProperties"]["subject"] = f"CN={name}"
    (tmp_path / "policy.json").write_text(json.dumps(policy))
    op = server.cli_json("keyvault", "certificate", "create", "--vault-name", vault, "--name", name,
                         "--policy", f"@{tmp_path / 'policy.json'}", "--tags", "env=dev")
    assert op["status"] == "completed" and op["target"].endswith(f"/certificates/{name}")
    shown = server.cli_json("keyvault", "certificate", "show", "--vault-name", vault, "--name", name)
    assert shown["policy"]["x509CertificateProperties"]["subject"] == f"CN={name}"
    assert shown["policy"]["lifetimeActions"] == [{"action": {"actionType": "AutoRenew"},
                                                  "trigger": {"daysBeforeExpiry": 90, "lifetimePercentage": None}}]
    assert shown["policy"]["keyProperties"]["reuseKey"] is True and shown["tags"] == {"env": "dev"}
    assert len(shown["x509ThumbprintHex"]) == 40 and shown["sid"] == shown["id"].replace("/certificates/", "/secrets/")
    assert shown["kid"] == shown["id"].replace("/certificates/", "/keys/")
    pem, der = tmp_path / "c.pem", tmp_path / "c.der"
    server.cli("keyvault", "certificate", "download", "--vault-name", vault, "--name", name, "--file", str(pem))
    server.cli("keyvault", "certificate", "download", "--vault-name", vault, "--name", name, "--file", str(der),
               "--encoding", "DER")
    assert x509.load_pem_x509_certificate(pem.read_bytes()) == x509.load_der_x509_certificate(der.read_bytes())
    assert x509.load_der_x509_certificate(der.read_bytes()).subject.rfc4514_string() == f"CN={name}"
    listed = server.cli_json("keyvault", "certificate", "list", "--vault-name", vault, "--query", f"[?name=='{name}']")
    assert listed[0]["x509ThumbprintHex"] == shown["x509ThumbprintHex"]
    versions = server.cli_json("keyvault", "certificate", "list-versions", "--vault-name", vault, "--name", name)
    assert [v["id"] for v in versions] == [shown["id"]]
    disabled = server.cli_json("keyvault", "certificate", "set-attributes", "--vault-name", vault, "--name", name,
                               "--enabled", "false")
    assert disabled["attributes"]["enabled"] is False


def test_import_pfx_with_password_delete_recover_backup_restore(server, vault, tmp_path):
    key, cert = self_signed("cli-import.example")
    pfx = tmp_path / "c.pfx"
    pfx.write_bytes(pkcs12.serialize_key_and_certificates(b"c", key, cert, None, serialization.BestAvailableEncryption(b"pw")))
    name = unique("cli-import")
    imported = server.cli_json("keyvault", "certificate", "import", "--vault-name", vault, "--name", name, "--file", str(pfx),
                               "--password", "pw")
    assert imported["policy"]["issuerParameters"]["name"] == "Unknown"
    assert x509.load_der_x509_certificate(base64.b64decode(imported["cer"])) == cert
    deleted = server.cli_json("keyvault", "certificate", "delete", "--vault-name", vault, "--name", name)
    assert deleted["recoveryId"].endswith(f"/deletedcertificates/{name}")
    server.cli("keyvault", "certificate", "recover", "--vault-name", vault, "--name", name)
    blob = tmp_path / "c.blob"
    server.cli("keyvault", "certificate", "backup", "--vault-name", vault, "--name", name, "--file", str(blob))
    server.cli("keyvault", "certificate", "delete", "--vault-name", vault, "--name", name)
    server.cli("keyvault", "certificate", "purge", "--vault-name", vault, "--name", name)
    restored = server.cli_json("keyvault", "certificate", "restore", "--vault-name", vault, "--file", str(blob))
    assert restored["id"].split("/")[4] == name
    pem = tmp_path / "c.pem"
    pem.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption()) + cert.public_bytes(serialization.Encoding.PEM))
    from_pem = server.cli_json("keyvault", "certificate", "import", "--vault-name", vault, "--name", unique("cli-pem"),
                               "--file", str(pem))
    assert from_pem["policy"]["secretProperties"]["contentType"] == "application/x-pem-file"
    assert "(BadParameter)" in _fails(server, "keyvault", "certificate", "import", "--vault-name", vault,
                                      "--name", unique("x"), "--file", str(pfx), "--password", "wrong")


def test_issuers_and_contacts(server, vault):
    issuer = unique("cli-issuer")
    created = server.cli_json("keyvault", "certificate", "issuer", "create", "--vault-name", vault, "--issuer-name", issuer,
                              "--provider-name", "Strongroom", "--account-id", "acct")
    assert created["provider"] == "Strongroom" and created["credentials"]["accountId"] == "acct"
    assert issuer in [i["id"].rsplit("/", 1)[1] for i in server.cli_json(
        "keyvault", "certificate", "issuer", "list", "--vault-name", vault)]
    assert server.cli_json("keyvault", "certificate", "issuer", "show", "--vault-name", vault,
                           "--issuer-name", issuer)["attributes"]["enabled"] is True
    # A policy naming the issuer gets a certificate from the instance CA.
    name = unique("cli-ca")
    op = server.cli_json("keyvault", "certificate", "create", "--vault-name", vault, "--name", name, "--policy",
                         json.dumps({"issuerParameters": {"name": issuer}, "x509CertificateProperties": {"subject": "CN=ca.internal"}}))
    assert op["status"] == "completed" and op["issuerParameters"]["name"] == issuer
    server.cli("keyvault", "certificate", "issuer", "delete", "--vault-name", vault, "--issuer-name", issuer)
    assert "(CertificateIssuerNotFound)" in _fails(server, "keyvault", "certificate", "issuer", "show", "--vault-name", vault,
                                                   "--issuer-name", issuer)

    contacts_vault = unique("kvc")[:20]
    server.cli("keyvault", "create", "--name", contacts_vault)
    added = server.cli_json("keyvault", "certificate", "contact", "add", "--vault-name", contacts_vault,
                            "--email", "a@example.com", "--name", "A")
    server.cli("keyvault", "certificate", "contact", "add", "--vault-name", contacts_vault, "--email", "b@example.com")
    listed = server.cli_json("keyvault", "certificate", "contact", "list", "--vault-name", contacts_vault)
    assert [c["emailAddress"] for c in listed["contactList"]] == ["a@example.com", "b@example.com"]
    assert added["id"].endswith("/certificates/contacts")
    left = server.cli_json("keyvault", "certificate", "contact", "delete", "--vault-name", contacts_vault, "--email", "a@example.com")
    assert [c["emailAddress"] for c in left["contactList"]] == ["b@example.com"]
    assert "(ContactNotFound)" in _fails(server, "keyvault", "certificate", "contact", "delete", "--vault-name",
                                         contacts_vault, "--email", "zzz@example.com")
