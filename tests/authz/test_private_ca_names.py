"""The private CA signs only names the instance admin allowed (`up --ca-allowed-domains`).

Attacked over the wire by a principal holding only Key Vault Certificates Officer on
its own vault. Before the fix it got a certificate chaining to the instance's CA for
any name, `login.microsoftonline.com` and this server's own `*.vault.localhost` included.
The session server allows `internal` (tests/conftest.py).
"""

from __future__ import annotations

import subprocess

import pytest

from strongroom.keyvault.ca_names import CANamePolicy, parse_allowed
from tests.authz.attack import Actor
from tests.authz.conftest import make_sp, unique_vault
from tests.conftest import STRONGROOM


@pytest.fixture(scope="module")
def officer(server):
    admin = Actor(server)
    vault = unique_vault("ca")
    assert admin.put_vault(vault).status_code == 201
    actor = Actor(server, make_sp(server, "certofficer"))
    assert admin.assign(admin.vault_path(vault), "a4417e6f-fecd-4de8-b567-7b0420556985", actor.object_id).status_code == 201
    return actor, vault


def _create(actor: Actor, vault: str, name: str, subject: str, dns: list[str] | None = None, issuer: str = "Strongroom"):
    x509_props: dict = {"subject": subject}
    if dns:
        x509_props["sans"] = {"dns_names": dns}
    return actor.data("POST", vault, f"/certificates/{name}/create",
                      json={"policy": {"issuer": {"name": issuer}, "x509_props": x509_props}})


def _operation(actor: Actor, vault: str, name: str) -> dict:
    r = actor.data("GET", vault, f"/certificates/{name}/pending")
    assert r.status_code == 200, r.text
    return r.json()


@pytest.mark.parametrize("subject,dns", [
    ("CN=login.microsoftonline.com", ["login.microsoftonline.com"]),
    ("CN=Totally Harmless", ["login.microsoftonline.com"]),  # the SAN is what TLS clients check
    ("CN=login.microsoftonline.com", None),  # ... and the CN, for older ones
    ("CN=app", ["kv1.vault.localhost"]),  # this very server's vault hosts
    ("CN=app", ["*.vault.localhost"]),
    ("CN=app", ["*.localhost"]),  # a wildcard that covers vault.localhost
    ("CN=app", ["localhost"]),
    ("CN=app", ["svc.internal.attacker.example"]),
    ("CN=app", ["svc.internal", "evil.example"]),  # one bad name spoils the request
    ("CN=app", ["*.internal"]),  # allowed: a wildcard below an allowed domain ...
])
def test_the_private_ca_refuses_names_the_admin_did_not_allow(officer, subject, dns):
    actor, vault = officer
    name = f"c{abs(hash((subject, str(dns)))) % 10**8}"
    r = _create(actor, vault, name, subject, dns)
    assert r.status_code == 202, r.text
    op = _operation(actor, vault, name)
    if dns == ["*.internal"]:
        assert op["status"] == "completed", op
        return
    # Key Vault's certificate-operation error shape: a failed operation with error.code and error.message.
    assert op["status"] == "failed", op
    assert op["error"]["code"] == "CertificateNameNotAllowed"
    assert "--ca-allowed-domains" in op["error"]["message"]
    # No certificate came out of it.
    got = actor.data("GET", vault, f"/certificates/{name}")
    assert got.status_code == 404 or "cer" not in got.json(), got.text


def test_allowed_names_and_self_signed_certificates_still_work(officer):
    actor, vault = officer
    assert _create(actor, vault, "allowed", "CN=svc.internal", ["svc.internal", "a.b.internal"]).status_code == 202
    assert _operation(actor, vault, "allowed")["status"] == "completed"
    r = _create(actor, vault, "selfsigned", "CN=login.microsoftonline.com", ["login.microsoftonline.com"], issuer="Self")
    assert r.status_code == 202 and _operation(actor, vault, "selfsigned")["status"] == "completed"  # trusted by nobody


def test_an_issuer_record_signed_by_the_ca_is_held_to_the_same_list(officer):
    actor, vault = officer
    r = actor.data("PUT", vault, "/certificates/issuers/corp-ca", json={"provider": "Strongroom"})
    assert r.status_code == 200, r.text
    assert _create(actor, vault, "viaissuer", "CN=app", ["login.microsoftonline.com"], issuer="corp-ca").status_code == 202
    op = _operation(actor, vault, "viaissuer")
    assert (op["status"], op["error"]["code"]) == ("failed", "CertificateNameNotAllowed")


def test_name_policy_rules():
    p = CANamePolicy(allowed=parse_allowed(["example.com,*.corp.example", "10.0.0.5"]),
                     reserved_subtrees=("vault.localhost",), reserved_hosts=("localhost",))
    ok = [("dns", "example.com"), ("dns", "a.b.example.com"), ("dns", "*.example.com"), ("dns", "x.corp.example"),
          ("dns", "*.corp.example"), ("email", "ops@example.com"), ("uri", "https://api.example.com/x"), ("ip", "10.0.0.5")]
    bad = [("dns", "corp.example"), ("dns", "example.com.evil.net"), ("dns", "notexample.com"), ("dns", "*.com"),
           ("email", "ops@evil.net"), ("uri", "https://evil.net/"), ("ip", "10.0.0.6"), ("dns", "kv.vault.localhost")]
    assert [v for k, v in ok if p.refusal(k, v)] == []
    assert [v for k, v in bad if p.refusal(k, v) is None] == []
    assert CANamePolicy().refusal("dns", "anything.internal") is not None  # default: nothing


@pytest.mark.parametrize("bad", ["not a domain", "*", "exa*mple.com", "a..b"])
def test_up_refuses_a_malformed_allow_list(tmp_path, bad):
    proc = subprocess.run([*STRONGROOM, "up", "--state-dir", str(tmp_path), "--ca-allowed-domains", bad],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "--ca-allowed-domains" in proc.stderr
    assert not (tmp_path / "admin.json").exists()
