"""The provider driven as the Secrets Store CSI Driver drives it: gRPC over a real unix socket,
attributes shaped as the driver sends them, against a real `strongroom up`.

Authentication here is a nodePublishSecretRef service principal (the admin's),
one of the Azure provider's documented modes.
"""

from __future__ import annotations

import base64
import json
import re
import stat
import time

import grpc
import httpx

from strongroom.csi.proto.v1alpha1 import service_pb2 as pb
from strongroom.csi.provider import mount
from tests.csi.csi_support import (
    driver_attributes,
    driver_request,
    objects_yaml,
    provider_config,
    start_provider,
    unique,
)


def _version(secret_id: str) -> str:
    return secret_id.rstrip("/").rsplit("/", 1)[1]


def test_version_reports_runtime_and_semver(provider):
    response = provider.stub.Version(pb.VersionRequest(version="v1alpha1"), timeout=10)
    assert response.version == "v1alpha1"
    assert response.runtime_name == "strongroom"
    assert re.fullmatch(r"\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?", response.runtime_version)


def test_socket_is_private_to_its_owner(provider):
    mode = provider.running.socket_path.stat().st_mode
    assert stat.S_ISSOCK(mode)
    assert mode & 0o077 == 0, oct(mode)


def test_mounts_a_secret_as_the_driver_asks(provider, secret_client, spc_base, sp_secrets):
    name = unique("db-password")
    stored = secret_client.set_secret(name, "s3cret-value")
    attributes = driver_attributes({**spc_base, "objects": objects_yaml({"objectName": name, "objectType": "secret"})})

    response = provider.mount(driver_request(attributes, sp_secrets))

    assert [(f.path, f.mode, f.contents) for f in response.files] == [(name, 0o644, b"s3cret-value")]
    assert [(v.id, v.version) for v in response.object_version] == [(f"secret/{name}", stored.properties.version)]
    assert not response.HasField("error")


def test_alias_file_permission_and_default_mode(provider, secret_client, spc_base, sp_secrets):
    a, b = unique("alias-a"), unique("alias-b")
    secret_client.set_secret(a, "one")
    secret_client.set_secret(b, "two")
    objects = objects_yaml(
        {"objectName": a, "objectType": "secret", "objectAlias": "config/app.conf", "filePermission": '"0400"'},
        # unquoted, as people write it: YAML must not turn 0755 into 493
        {"objectName": b, "objectType": "secret", "filePermission": "0755"},
        {"objectName": a, "objectType": "secret", "objectAlias": "plain"},
    )
    attributes = driver_attributes({**spc_base, "objects": objects})

    response = provider.mount(driver_request(attributes, sp_secrets, permission=0o600))

    files = {f.path: (f.mode, f.contents) for f in response.files}
    assert files == {"config/app.conf": (0o400, b"one"), b: (0o755, b"two"), "plain": (0o600, b"one")}
    # ids stay <type>/<name> whatever the alias; the driver keys SecretProviderClassPodStatus on them
    assert [v.id for v in response.object_version] == [f"secret/{a}", f"secret/{b}", f"secret/{a}"]


def test_encodings_decode_before_writing(provider, secret_client, spc_base, sp_secrets):
    raw = bytes(range(256))
    b64, hexed, text = unique("enc-b64"), unique("enc-hex"), unique("enc-utf8")
    secret_client.set_secret(b64, base64.b64encode(raw).decode())
    secret_client.set_secret(hexed, raw.hex())
    secret_client.set_secret(text, "pässwörd ✓")
    objects = objects_yaml(
        {"objectName": b64, "objectType": "secret", "objectEncoding": "base64"},
        {"objectName": hexed, "objectType": "secret", "objectEncoding": "hex"},
        {"objectName": text, "objectType": "secret", "objectEncoding": "utf-8"},
    )

    response = provider.mount(driver_request(driver_attributes({**spc_base, "objects": objects}), sp_secrets))

    files = {f.path: f.contents for f in response.files}
    assert files == {b64: raw, hexed: raw, text: "pässwörd ✓".encode()}


def test_pfx_format_on_a_plain_secret_writes_it_as_stored(provider, secret_client, spc_base, sp_secrets):
    # Only a certificate-backed secret (kid set) is converted; a plain secret is written as is.
    name = unique("not-a-cert")
    secret_client.set_secret(name, "just text", content_type="application/x-pkcs12")
    objects = objects_yaml({"objectName": name, "objectType": "secret", "objectFormat": "pfx"})
    response = provider.mount(driver_request(driver_attributes({**spc_base, "objects": objects}), sp_secrets))
    assert response.files[0].contents == b"just text"


def test_version_pin_and_latest(provider, secret_client, spc_base, sp_secrets):
    name = unique("pinned")
    v1 = secret_client.set_secret(name, "first").properties.version
    v2 = secret_client.set_secret(name, "second").properties.version
    objects = objects_yaml(
        {"objectName": name, "objectType": "secret", "objectAlias": "old", "objectVersion": v1},
        {"objectName": name, "objectType": "secret", "objectAlias": "new", "objectVersion": "latest"},
    )

    response = provider.mount(driver_request(driver_attributes({**spc_base, "objects": objects}), sp_secrets))

    assert {f.path: f.contents for f in response.files} == {"old": b"first", "new": b"second"}
    assert [v.version for v in response.object_version] == [v1, v2]


def test_version_history_newest_first_skipping_disabled(provider, secret_client, spc_base, sp_secrets):
    name = unique("history")
    v1 = secret_client.set_secret(name, "one").properties.version
    time.sleep(1.1)  # Key Vault's `created` has one-second resolution; the provider sorts on it
    v2 = secret_client.set_secret(name, "two").properties.version
    v3 = secret_client.set_secret(name, "three").properties.version
    secret_client.update_secret_properties(name, v2, enabled=False)
    objects = objects_yaml(
        {"objectName": name, "objectType": "secret", "objectAlias": "hist", "objectVersionHistory": 5},
        {"objectName": name, "objectType": "secret", "objectAlias": "from-v1", "objectVersion": v1,
         "objectVersionHistory": 2},
    )

    response = provider.mount(driver_request(driver_attributes({**spc_base, "objects": objects}), sp_secrets))

    files = [(f.path, f.contents) for f in response.files]
    assert files == [("hist/0", b"three"), ("hist/1", b"one"), ("from-v1/0", b"one")]
    versions = [(v.id, v.version) for v in response.object_version]
    assert versions == [(f"secret/{name}/0", v3), (f"secret/{name}/1", v1), (f"secret/{name}/0", v1)]


def test_history_is_capped_at_the_requested_count(provider, secret_client, spc_base, sp_secrets):
    name = unique("capped")
    secret_client.set_secret(name, "old")
    time.sleep(1.1)
    secret_client.set_secret(name, "new")
    objects = objects_yaml({"objectName": name, "objectType": "secret", "objectVersionHistory": 1})
    # objectVersionHistory <= 1 means "just the object", named without an index
    response = provider.mount(driver_request(driver_attributes({**spc_base, "objects": objects}), sp_secrets))
    assert [(f.path, f.contents) for f in response.files] == [(name, b"new")]
    assert response.object_version[0].id == f"secret/{name}"


def test_missing_secret_is_not_found_and_names_the_object(provider, spc_base, sp_secrets):
    name = unique("missing")
    objects = objects_yaml({"objectName": name, "objectType": "secret"})
    err = provider.mount_error(driver_request(driver_attributes({**spc_base, "objects": objects}), sp_secrets))
    assert err.code() == grpc.StatusCode.NOT_FOUND
    assert f"objectName:{name}" in err.details()
    assert "SecretNotFound" in err.details() and "Hint:" in err.details()


def test_many_objects_come_back_in_the_spc_order_and_the_first_failure_is_the_one_named(
    provider, secret_client, spc_base, sp_secrets
):
    # The provider fetches a mount's objects side by side; what the driver gets must not show it.
    names = [unique(f"many-{i}") for i in range(8)]
    for i, name in enumerate(names):
        secret_client.set_secret(name, f"value-{i}")
    objects = objects_yaml(*({"objectName": n, "objectType": "secret"} for n in names))
    response = provider.mount(driver_request(driver_attributes({**spc_base, "objects": objects}), sp_secrets))
    assert [(f.path, f.contents) for f in response.files] == [(n, f"value-{i}".encode()) for i, n in enumerate(names)]
    assert [v.id for v in response.object_version] == [f"secret/{n}" for n in names]

    first_missing, later_missing = unique("missing-first"), unique("missing-later")
    order = [names[0], names[1], first_missing, names[2], names[3], later_missing, names[4]]
    objects = objects_yaml(*({"objectName": n, "objectType": "secret"} for n in order))
    err = provider.mount_error(driver_request(driver_attributes({**spc_base, "objects": objects}), sp_secrets))
    assert err.code() == grpc.StatusCode.NOT_FOUND
    assert f"objectName:{first_missing}" in err.details() and later_missing not in err.details()


def test_wrong_client_secret_is_unauthenticated_with_the_aadsts_code(provider, spc_base, sp_secrets):
    objects = objects_yaml({"objectName": "anything", "objectType": "secret"})
    bad = {**sp_secrets, "clientsecret": "not-the-secret"}
    err = provider.mount_error(driver_request(driver_attributes({**spc_base, "objects": objects}), bad))
    assert err.code() == grpc.StatusCode.UNAUTHENTICATED
    assert "AADSTS7000215" in err.details()
    assert "not-the-secret" not in err.details()


def test_invalid_spc_is_invalid_argument(provider, spc_base, sp_secrets):
    objects = objects_yaml({"objectName": "x", "objectType": "secret", "objectAlias": "../escape"})
    err = provider.mount_error(driver_request(driver_attributes({**spc_base, "objects": objects}), sp_secrets))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "must not contain '..'" in err.details()


def test_pod_identity_is_refused_with_the_replacement(provider, spc_base, sp_secrets):
    params = {**spc_base, "usePodIdentity": "true", "objects": objects_yaml({"objectName": "x", "objectType": "secret"})}
    err = provider.mount_error(driver_request(driver_attributes(params), sp_secrets))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "deprecated" in err.details() and "workload identity" in err.details()


def test_response_over_4_mib_is_refused(provider, secret_client, spc_base, sp_secrets):
    name = unique("big")
    secret_client.set_secret(name, "x" * 25000)  # Key Vault's largest value
    objects = objects_yaml(*({"objectName": name, "objectType": "secret", "objectAlias": f"copy-{i}"} for i in range(200)))
    err = provider.mount_error(driver_request(driver_attributes({**spc_base, "objects": objects}), sp_secrets))
    assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "4194304 bytes" in err.details() and "4 MiB" in err.details()


def test_unreachable_vault_is_unavailable_with_a_hint(server, tmp_path, spc_base, sp_secrets):
    # A custom cloud (cloudName AzureStackCloud + cloudEnvFileName) whose vaults sit on a closed port.
    import socket as socketlib

    with socketlib.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    env_file = tmp_path / "azurestack.json"
    env_file.write_text(
        json.dumps(
            {
                "name": "AzureStackCloud",
                "activeDirectoryEndpoint": f"{server.url}/",
                "keyVaultDNSSuffix": f"vault.localhost:{closed}",
                "resourceManagerEndpoint": f"{server.url}/",
            }
        )
    )
    params = {
        **spc_base,
        "cloudName": "AzureStackCloud",
        "cloudEnvFileName": str(env_file),
        "objects": objects_yaml({"objectName": "db-password", "objectType": "secret"}),
    }
    p = start_provider(tmp_path / "p.sock", provider_config(server))
    try:
        err = p.mount_error(driver_request(driver_attributes(params), sp_secrets))
    finally:
        p.close()
    assert err.code() == grpc.StatusCode.UNAVAILABLE
    assert f"vault.localhost:{closed}" in err.details()
    assert "unreachable" in err.details() and "connection refused" in err.details() and "Hint:" in err.details()


def test_in_process_mount_is_the_same_code_path(server, secret_client, spc_base, sp_secrets):
    name = unique("inproc")
    version = secret_client.set_secret(name, "agent-side").properties.version
    attributes = driver_attributes({**spc_base, "objects": objects_yaml({"objectName": name, "objectType": "secret"})})
    result = mount(attributes, sp_secrets, 0o640, config=provider_config(server))
    assert [(f.path, f.mode, f.contents) for f in result.files] == [(name, 0o640, b"agent-side")]
    assert [(v.id, v.version) for v in result.object_versions] == [(f"secret/{name}", version)]


def test_metrics_named_as_the_azure_provider(provider, secret_client, spc_base, sp_secrets):
    name = unique("metered")
    secret_client.set_secret(name, "v")
    attributes = driver_attributes({**spc_base, "objects": objects_yaml({"objectName": name, "objectType": "secret"})})
    provider.mount(driver_request(attributes, sp_secrets))
    missing = unique("metered-missing")
    provider.mount_error(
        driver_request(
            driver_attributes({**spc_base, "objects": objects_yaml({"objectName": missing, "objectType": "secret"})}), sp_secrets
        )
    )

    port = provider.running.metrics_server.port
    samples = _samples(httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text)

    fixed = {"service_name": "csi-secrets-store-provider-strongroom", "provider": "strongroom", "os_type": "linux"}
    ok = _find(samples, "keyvault_request_count", object_name=name)
    assert ok and ok[0][0] == {**fixed, "object_type": "secret", "object_name": name, "error": ""} and ok[0][1] == 1
    failed = _find(samples, "keyvault_request_count", object_name=missing)
    assert failed and missing in failed[0][0]["error"] and "SecretNotFound" in failed[0][0]["error"]
    mount_ok = _find(samples, "grpc_request_bucket", grpc_method="/v1alpha1.CSIDriverProvider/Mount", grpc_code="OK")
    assert mount_ok and {k: mount_ok[0][0][k] for k in fixed} == fixed
    assert sorted({float(labels["le"]) for labels, _ in mount_ok}) == [
        0.1, 0.2, 0.3, 0.4, 0.5, 1, 1.5, 2, 2.5, 3, 5, 10, 15, 30, float("inf")
    ]
    not_found = _find(samples, "grpc_request_count", grpc_code="NotFound")
    assert any(missing in labels["grpc_message"] for labels, _ in not_found)
    assert httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5).status_code == 200


def _samples(text: str) -> list:
    from prometheus_client.parser import text_string_to_metric_families

    return [s for family in text_string_to_metric_families(text) for s in family.samples]


def _find(samples: list, metric: str, **labels: str) -> list[tuple[dict, float]]:
    return [
        (dict(s.labels), s.value)
        for s in samples
        if s.name == metric and all(s.labels.get(k) == v for k, v in labels.items())
    ]


def test_secret_values_never_reach_errors_or_metrics(provider, secret_client, spc_base, sp_secrets):
    name = unique("not-base64")
    secret_client.set_secret(name, "CANARY-VALUE-@@@")
    objects = objects_yaml({"objectName": name, "objectType": "secret", "objectEncoding": "base64"})
    err = provider.mount_error(driver_request(driver_attributes({**spc_base, "objects": objects}), sp_secrets))
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "not valid base64" in err.details() and name in err.details()
    assert "CANARY" not in err.details()
    text = httpx.get(f"http://127.0.0.1:{provider.running.metrics_server.port}/metrics", timeout=5).text
    assert "CANARY" not in text
