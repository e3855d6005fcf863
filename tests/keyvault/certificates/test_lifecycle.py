"""Lifetime actions on a dev-mode server (`strongroom up --dev`), with its clock shifted forward.

A certificate with a 2-day AutoRenew window renews by itself once the vault's
time reaches the window, and a mounted `cert` object follows; keys rotate per
their rotation policy; near-expiry and expired events reach the change feed.
"""

from __future__ import annotations

import json
import ssl
import time
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from azure.identity import ClientSecretCredential
from azure.keyvault.certificates import CertificateClient, CertificatePolicy, CertificatePolicyAction, LifetimeAction
from azure.keyvault.keys import KeyClient, KeyRotationLifetimeAction, KeyRotationPolicy, KeyRotationPolicyAction
from azure.keyvault.secrets import SecretClient
from cryptography import x509

from strongroom.csi.provider import mount
from tests.conftest import Server, start_server
from tests.csi.csi_support import driver_attributes, objects_yaml, provider_config

from .conftest import unique

DAY = 86400
MANAGEMENT = "https://management.azure.com/.default"


@pytest.fixture(scope="module")
def dev(tmp_path_factory) -> Server:
    srv = start_server(tmp_path_factory.mktemp("dev"), "--dev", "--ca-allowed-domains", "internal")
    srv.cli("keyvault", "create", "--name", "kv-dev")
    srv.cli("keyvault", "create", "--name", "kv-other")
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def credential(dev: Server):
    a = dev.admin
    return ClientSecretCredential(a["tenantId"], a["clientId"], a["clientSecret"], authority=dev.url,
                                  disable_instance_discovery=True, connection_verify=dev.ca)


def _clients(dev: Server, credential, vault: str = "kv-dev"):
    url = dev.vault_url(vault)
    return (CertificateClient(url, credential, connection_verify=dev.ca), KeyClient(url, credential, connection_verify=dev.ca),
            SecretClient(url, credential, connection_verify=dev.ca))


def _shift(dev: Server, credential, seconds: int, vault: str | None = "kv-dev") -> dict:
    token = credential.get_token(MANAGEMENT).token
    r = httpx.post(f"{dev.url}/strongroom/dev/time-shift", json={"seconds": seconds, "vault": vault},
                   headers={"Authorization": f"Bearer {token}"}, verify=ssl.create_default_context(cafile=dev.ca))
    assert r.status_code == 200, r.text
    return r.json()


def _vault_now(dev: Server, credential, vault: str = "kv-dev") -> int:
    token = credential.get_token(MANAGEMENT).token
    r = httpx.get(f"{dev.url}/strongroom/dev/time-shift", headers={"Authorization": f"Bearer {token}"},
                  verify=ssl.create_default_context(cafile=dev.ca))
    return r.json()["vaults"][vault]["now"]


def _events(dev: Server, credential, want: Iterable[tuple[str, str]], vault: str = "kv-dev", timeout: float = 10.0,
            count: int = 1) -> list[dict]:
    """Read the vault's change feed (SSE, from the start) until every (eventType, subject) in `want` was seen `count` times."""
    pending = {w: count for w in want}
    token = credential.get_token(f"https://vault.localhost:{dev.port}/.default").token
    seen: list[dict] = []
    deadline = time.monotonic() + timeout
    with httpx.stream("GET", f"{dev.vault_url(vault)}/strongroom/events", params={"from": 1},
                      headers={"Authorization": f"Bearer {token}"}, verify=ssl.create_default_context(cafile=dev.ca),
                      timeout=httpx.Timeout(timeout)) as r:
        assert r.status_code == 200
        for line in r.iter_lines():
            if line.startswith("data: "):
                event = json.loads(line[6:])
                seen.append(event)
                key = (event["eventType"], event["subject"])
                if key in pending:
                    pending[key] -= 1
                    if not pending[key]:
                        del pending[key]
            if not pending or time.monotonic() > deadline:
                break
    assert not pending, f"missing events {pending}; saw {[(e['eventType'], e['subject']) for e in seen]}"
    return seen


def _wait_for(check, timeout: float = 5.0):
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result or time.monotonic() > deadline:
            return result
        time.sleep(0.1)


def test_autorenew_window_renews_the_certificate_and_the_mount_follows(dev: Server, credential):
    certs, keys, secrets = _clients(dev, credential)
    name = unique("renew")
    policy = CertificatePolicy(
        issuer_name="Strongroom", subject="CN=renew.internal", san_dns_names=["renew.internal"], validity_in_months=1,
        lifetime_actions=[LifetimeAction(CertificatePolicyAction.auto_renew, days_before_expiry=2)],
    )
    first = certs.begin_create_certificate(name, policy).result()
    admin = dev.admin
    attributes = driver_attributes({"keyvaultName": "kv-dev", "tenantId": admin["tenantId"], "usePodIdentity": "false",
                                    "objects": objects_yaml({"objectName": name, "objectType": "cert"})})
    sp = {"clientid": admin["clientId"], "clientsecret": admin["clientSecret"]}
    before = mount(attributes, sp, config=provider_config(dev))
    assert before.object_versions[0].version == first.properties.version

    time.sleep(1.5)  # a lifecycle pass runs every second in dev mode: nothing is due yet
    assert certs.get_certificate(name).properties.version == first.properties.version

    # Move the vault's clock into the window: 2 days before expiry, plus a minute.
    exp = int(first.properties.expires_on.timestamp())
    started = time.monotonic()
    _shift(dev, credential, exp - 2 * DAY + 60 - _vault_now(dev, credential))
    renewed = _wait_for(lambda: (c := certs.get_certificate(name)).properties.version != first.properties.version and c)
    assert renewed, "the certificate did not renew within 5 s of the shift"
    assert time.monotonic() - started < 5
    new_cert = x509.load_der_x509_certificate(renewed.cer)
    old_cert = x509.load_der_x509_certificate(first.cer)
    assert new_cert.public_key() != old_cert.public_key()  # a new key: the policy does not reuse keys
    assert new_cert.subject == old_cert.subject and renewed.policy.lifetime_actions[0].days_before_expiry == 2
    assert new_cert.not_valid_after_utc > old_cert.not_valid_after_utc
    assert len(list(certs.list_properties_of_certificate_versions(name))) == 2
    assert secrets.get_secret(name).properties.version == renewed.properties.version  # backing objects follow
    assert keys.get_key(name).properties.version == renewed.properties.version

    after = mount(attributes, sp, config=provider_config(dev))
    assert after.object_versions[0].version == renewed.properties.version
    assert after.files[0].contents != before.files[0].contents
    assert x509.load_pem_x509_certificate(after.files[0].contents) == new_cert

    seen = _events(dev, credential, [("Microsoft.KeyVault.CertificateNewVersionCreated", name)], count=2)
    versions = [e["data"]["Version"] for e in seen if e["subject"] == name and e["eventType"].endswith("CertificateNewVersionCreated")]
    assert versions == [first.properties.version, renewed.properties.version]
    time.sleep(1.5)  # renewed once: the new version is far from its own window
    assert len(list(certs.list_properties_of_certificate_versions(name))) == 2


def test_a_certificate_that_cannot_renew_does_not_hold_up_the_others(dev: Server, credential):
    dev.cli("keyvault", "create", "--name", "kv-orphans")
    certs, _, _ = _clients(dev, credential, "kv-orphans")
    issuer = unique("gone-issuer")
    certs.create_issuer(issuer, "Strongroom")
    window = [LifetimeAction(CertificatePolicyAction.auto_renew, days_before_expiry=5)]
    orphan, healthy = unique("orphan"), unique("healthy")
    orphaned = certs.begin_create_certificate(orphan, CertificatePolicy(
        issuer_name=issuer, subject="CN=orphan.internal", validity_in_months=1, lifetime_actions=window)).result()
    first = certs.begin_create_certificate(healthy, CertificatePolicy(
        issuer_name="Self", subject="CN=healthy", validity_in_months=1, lifetime_actions=window)).result()
    certs.delete_issuer(issuer)  # the orphan's renewal now fails: its issuer is gone
    exp = int(first.properties.expires_on.timestamp())
    _shift(dev, credential, exp - 4 * DAY - _vault_now(dev, credential, "kv-orphans"), vault="kv-orphans")
    renewed = _wait_for(lambda: certs.get_certificate(healthy).properties.version != first.properties.version)
    assert renewed, "a certificate that cannot renew held up the others"
    assert certs.get_certificate(orphan).properties.version == orphaned.properties.version


def test_a_watch_mount_of_the_cert_follows_the_renewal(dev: Server, credential, tmp_path):
    """`strongroom mount --watch` (the agent, workload identity as on AKS) rewrites a `cert` object on renewal."""
    from tests.agent.conftest import agent, federate, wait_until

    dev.cli("keyvault", "create", "--name", "kv-watch", "-g", "rg-watch")
    certs, _, _ = _clients(dev, credential, "kv-watch")
    name = unique("watched")
    first = certs.begin_create_certificate(name, CertificatePolicy(
        issuer_name="Strongroom", subject="CN=watched.internal", validity_in_months=1,
        lifetime_actions=[LifetimeAction(CertificatePolicyAction.auto_renew, days_before_expiry=2)])).result()
    w = federate(dev, "kv-watch", "rg-watch", "workload", role="Key Vault Certificate User")
    spc = tmp_path / "spc.yaml"
    spc.write_text(
        "apiVersion: secrets-store.csi.x-k8s.io/v1\nkind: SecretProviderClass\nmetadata:\n  name: certs\n"
        f"  namespace: {w.namespace}\nspec:\n  provider: azure\n  parameters:\n    usePodIdentity: \"false\"\n"
        f"    clientID: \"{w.client_id}\"\n    keyvaultName: kv-watch\n    tenantId: \"{w.tenant_id}\"\n"
        f"    objects: |\n      array:\n        - |\n          objectName: {name}\n          objectType: cert\n"
    )
    target, log = tmp_path / "mnt", tmp_path / "agent.log"
    proc = agent(dev, "mount", "--spc", str(spc), "--namespace", w.namespace, "--service-account", w.service_account,
                 "--target", str(target), "--watch", log=log)
    try:
        wait_until(lambda: (target / name).exists() and "subscribed" in log.read_text(), timeout=20)
        assert x509.load_pem_x509_certificate((target / name).read_bytes()).serial_number == \
            x509.load_der_x509_certificate(first.cer).serial_number
        exp = int(first.properties.expires_on.timestamp())
        _shift(dev, credential, exp - 2 * DAY + 60 - _vault_now(dev, credential, "kv-watch"), vault="kv-watch")
        renewed = _wait_for(lambda: (c := certs.get_certificate(name)).properties.version != first.properties.version and c)
        assert renewed
        new_serial = x509.load_der_x509_certificate(renewed.cer).serial_number
        elapsed = wait_until(lambda: x509.load_pem_x509_certificate((target / name).read_bytes()).serial_number == new_serial,
                             timeout=10)
        assert elapsed < 1.0, f"the mount followed the renewal after {elapsed:.2f} s"
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_rotation_policy_rotates_the_key_and_notify_raises_near_expiry(dev: Server, credential):
    _, keys, _ = _clients(dev, credential)
    rotating, notifying = unique("rotating"), unique("notifying")
    first = keys.create_rsa_key(rotating)
    keys.update_key_rotation_policy(rotating, KeyRotationPolicy(
        expires_in="P60D", lifetime_actions=[KeyRotationLifetimeAction(KeyRotationPolicyAction.rotate, time_after_create="P7D")]))
    soon = datetime.fromtimestamp(_vault_now(dev, credential) + 20 * DAY, UTC)
    keys.create_ec_key(notifying, expires_on=soon)  # the default policy: Notify 30 days before expiry
    _shift(dev, credential, 8 * DAY)
    rotated = _wait_for(lambda: (k := keys.get_key(rotating)).properties.version != first.properties.version and k)
    assert rotated, "the key did not rotate"
    assert rotated.properties.expires_on - rotated.properties.created_on == timedelta(days=60)
    _events(dev, credential, [("Microsoft.KeyVault.KeyNewVersionCreated", rotating),
                              ("Microsoft.KeyVault.KeyNearExpiry", notifying)])


def test_near_expiry_and_expired_events_for_secrets_and_certificates(dev: Server, credential):
    certs, _, secrets = _clients(dev, credential)
    secret, cert = unique("expiring-secret"), unique("expiring-cert")
    now = _vault_now(dev, credential)
    secrets.set_secret(secret, "v", expires_on=datetime.fromtimestamp(now + 40 * DAY, UTC))
    certs.begin_create_certificate(cert, CertificatePolicy(
        issuer_name="Self", subject="CN=exp", validity_in_months=1,
        lifetime_actions=[LifetimeAction(CertificatePolicyAction.email_contacts, lifetime_percentage=50)])).result()
    _shift(dev, credential, 15 * DAY)  # secret: 25 days left; certificate: half its life
    _events(dev, credential, [("Microsoft.KeyVault.SecretNearExpiry", secret),
                              ("Microsoft.KeyVault.CertificateNearExpiry", cert)])
    _shift(dev, credential, 30 * DAY)
    seen = _events(dev, credential, [("Microsoft.KeyVault.SecretExpired", secret),
                                     ("Microsoft.KeyVault.CertificateExpired", cert)])
    time.sleep(1.5)  # each event once per version, however many passes see it
    again = _events(dev, credential, [("Microsoft.KeyVault.SecretExpired", secret)])
    count = lambda evs, t: sum(1 for e in evs if e["subject"] == secret and e["eventType"] == t)  # noqa: E731
    assert count(again, "Microsoft.KeyVault.SecretExpired") == 1 and count(seen, "Microsoft.KeyVault.SecretNearExpiry") == 1


def test_a_shift_moves_one_vault_only(dev: Server, credential):
    before = _vault_now(dev, credential, "kv-other")
    state = _shift(dev, credential, 5 * DAY, vault="kv-dev")
    assert state["vaults"]["kv-other"]["shiftSeconds"] == 0
    assert abs(_vault_now(dev, credential, "kv-other") - before) < 5
    _, _, secrets = _clients(dev, credential, "kv-other")
    created = secrets.set_secret(unique("real-time"), "v").properties.created_on
    assert abs(created.timestamp() - time.time()) < 60  # the other vault still lives in real time


def test_time_shift_is_dev_only_and_admin_only(server, dev: Server, credential):
    token = credential.get_token(MANAGEMENT).token
    r = httpx.post(f"{server.url}/strongroom/dev/time-shift", json={"seconds": 60},
                   headers={"Authorization": f"Bearer {token}"}, verify=ssl.create_default_context(cafile=server.ca))
    assert r.status_code in (401, 404)  # the session server is not in dev mode (and this token is not its own)
    session_token = ClientSecretCredential(
        server.admin["tenantId"], server.admin["clientId"], server.admin["clientSecret"], authority=server.url,
        disable_instance_discovery=True, connection_verify=server.ca).get_token(MANAGEMENT).token
    r = httpx.post(f"{server.url}/strongroom/dev/time-shift", json={"seconds": 60},
                   headers={"Authorization": f"Bearer {session_token}"}, verify=ssl.create_default_context(cafile=server.ca))
    assert r.status_code == 404 and "--dev" in r.json()["error"]["message"]
    sp = dev.cli_json("ad", "sp", "create-for-rbac", "--name", unique("not-admin"))
    other = ClientSecretCredential(dev.admin["tenantId"], sp["appId"], sp["password"], authority=dev.url,
                                   disable_instance_discovery=True, connection_verify=dev.ca).get_token(MANAGEMENT).token
    r = httpx.post(f"{dev.url}/strongroom/dev/time-shift", json={"seconds": 60},
                   headers={"Authorization": f"Bearer {other}"}, verify=ssl.create_default_context(cafile=dev.ca))
    assert r.status_code == 403
    r = httpx.post(f"{dev.url}/strongroom/dev/time-shift", json={"seconds": -5},
                   headers={"Authorization": f"Bearer {token}"}, verify=ssl.create_default_context(cafile=dev.ca))
    assert r.status_code == 400 and r.json()["error"]["code"] == "BadParameter"


def test_time_shift_cli(dev: Server):
    shown = dev.cli_json("admin", "time-shift")
    shifted = dev.cli_json("admin", "time-shift", "--days", "1", "--vault-name", "kv-other")
    assert shifted["vaultSeconds"]["kv-other"] == shown["vaultSeconds"].get("kv-other", 0) + DAY
    assert dev.cli_json("admin", "time-shift", "--reset")["vaultSeconds"] == {}
    failed = dev.cli("admin", "time-shift", "--days", "0", check=False)
    assert failed.returncode != 0 and "positive" in failed.stderr
