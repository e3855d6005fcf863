"""SecretProviderClass files and the Azure provider's parameters: what is accepted, what is refused and how."""

from __future__ import annotations

import json

import pytest

from strongroom.csi import cloud
from strongroom.csi.credentials import service_account_token
from strongroom.csi.spc import KeyVaultObject, SPCError, load_spc, parse_objects, parse_parameters, parse_spc
from tests.csi.csi_support import objects_yaml

POD = {"csi.storage.k8s.io/pod.name": "web-0", "csi.storage.k8s.io/pod.namespace": "default"}

SEED_SPC = """\
apiVersion: secrets-store.csi.x-k8s.io/v1
kind: SecretProviderClass
metadata:
  name: azure-kvname-wi
  namespace: app
spec:
  provider: azure
  parameters:
    usePodIdentity: "false"
    clientID: "00000000-0000-0000-0000-000000000001"
    keyvaultName: kv1
    cloudName: ""
    objects: |
      array:
        - |
          objectName: db-password
          objectType: secret
          objectVersion: ""
    tenantId: "00000000-0000-0000-0000-0000000000aa"
  secretObjects:
    - secretName: db
      type: Opaque
      labels: {app: web}
      data:
        - objectName: db-password
          key: password
"""


def params(**extra: str) -> dict[str, str]:
    base = {"keyvaultName": "kv1", "tenantID": "t1", "objects": objects_yaml({"objectName": "s", "objectType": "secret"})}
    return {**POD, **base, **extra}


# -- manifests ---------------------------------------------------------------


def test_seed_spc_parses_with_its_secret_objects(tmp_path):
    path = tmp_path / "spc.yaml"
    path.write_text("---\napiVersion: v1\nkind: ServiceAccount\nmetadata: {name: sa}\n---\n" + SEED_SPC)
    spc = load_spc(path)
    assert (spc.name, spc.namespace, spc.provider) == ("azure-kvname-wi", "app", "azure")
    assert spc.parameters["keyvaultName"] == "kv1" and spc.parameters["cloudName"] == ""
    assert spc.objects() == [KeyVaultObject("db-password", "secret")]
    [so] = spc.secret_objects
    assert (so.secret_name, so.type, so.labels) == ("db", "Opaque", {"app": "web"})
    assert [(d.object_name, d.key) for d in so.data] == [("db-password", "password")]


def test_v1alpha1_is_still_accepted():
    spc = parse_spc(SEED_SPC.replace("/v1\n", "/v1alpha1\n", 1))
    assert spc.api_version == "secrets-store.csi.x-k8s.io/v1alpha1"


@pytest.mark.parametrize(
    "change, message",
    [
        (("secrets-store.csi.x-k8s.io/v1\n", "secrets-store.csi.x-k8s.io/v2\n"), "apiVersion must be"),
        (('usePodIdentity: "false"', "usePodIdentity: false"), 'spec.parameters.usePodIdentity must be a string'),
        (("provider: azure", "provider: ''"), "spec.provider is required"),
        (("      type: Opaque\n", ""), "type is required"),
        (("kind: SecretProviderClass", "kind: ConfigMap"), "holds no SecretProviderClass"),
    ],
)
def test_bad_manifests_are_refused_with_what_to_change(change, message):
    with pytest.raises(SPCError, match=message):
        parse_spc(SEED_SPC.replace(*change))


# -- objects ---------------------------------------------------------------------


def test_object_fields_keep_their_raw_text_as_go_yaml_does():
    text = objects_yaml(
        {"objectName": "123", "objectType": "secret", "filePermission": "0755", "objectVersion": "0a1b", "objectAlias": " spaced "}
    )
    [obj] = parse_objects(text)
    assert obj.object_name == "123" and obj.file_permission == "0755" and obj.object_version == "0a1b"
    assert obj.object_alias == "spaced"  # every string field is trimmed
    assert obj.mode(0o644) == 0o755


def test_all_fields_and_derived_names():
    [obj] = parse_objects(
        objects_yaml(
            {
                "objectName": "tls",
                "objectType": "secret",
                "objectAlias": "certs/tls.pem",
                "objectVersion": "latest",
                "objectVersionHistory": "3",
                "objectFormat": "PFX",
                "objectEncoding": "Base64",
                "filePermission": "0440",
            }
        )
    )
    assert obj.file_name == "certs/tls.pem" and obj.pinned_version == "" and not obj.single_version
    assert obj.uid() == "secret/tls" and obj.uid(2) == "secret/tls/2"
    assert obj.mode(0o644) == 0o440


@pytest.mark.parametrize(
    "fields, message",
    [
        ({"objectName": "s", "objectType": "Secret"}, "objectType must be secret, key or cert, got 'Secret'"),
        ({"objectName": "s", "objectType": "password"}, "objectType must be secret, key or cert"),
        ({"objectName": "s"}, "objectType must be secret, key or cert, got nothing"),
        ({"objectname": "s", "objectType": "secret"}, "objectName is required; it has objectType, objectname"),
        ({"objectName": "s", "objectType": "secret", "objectAlias": "../etc/passwd"}, "must not contain '..'"),
        ({"objectName": "s", "objectType": "secret", "objectAlias": "a/../../b"}, "must not contain '..'"),
        ({"objectName": "s", "objectType": "secret", "objectAlias": "/etc/passwd"}, "must be a relative path"),
        ({"objectName": "s", "objectType": "secret", "filePermission": "0999"}, "filePermission must be an octal"),
        ({"objectName": "s", "objectType": "secret", "filePermission": "rw-r--r--"}, "filePermission must be an octal"),
        ({"objectName": "s", "objectType": "secret", "filePermission": "04755"}, "between 0000 and 0777"),
        ({"objectName": "s", "objectType": "key", "objectFormat": "pfx"}, "pfx is only supported for objectType secret"),
        ({"objectName": "s", "objectType": "secret", "objectFormat": "der"}, "should be pem or pfx"),
        ({"objectName": "s", "objectType": "cert", "objectEncoding": "base64"}, "objectEncoding is only supported"),
        ({"objectName": "s", "objectType": "secret", "objectEncoding": "utf-16"}, "should be utf-8, base64 or hex"),
        ({"objectName": "s", "objectType": "secret", "objectVersionHistory": "two"}, "must be a whole number"),
    ],
)
def test_bad_objects_are_refused(fields, message):
    with pytest.raises(SPCError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_objects(objects_yaml(fields))


def test_object_errors_name_the_entry():
    text = objects_yaml({"objectName": "ok", "objectType": "secret"}, {"objectName": "db", "objectType": "sekret"})
    with pytest.raises(SPCError, match=r"objects\[1\] \(db\): objectType"):
        parse_objects(text)


def test_entries_must_be_yaml_strings():
    with pytest.raises(SPCError, match=r"objects\[0\] must be a YAML string.*'- \|'"):
        parse_objects("array:\n  - objectName: s\n    objectType: secret\n")


def test_two_objects_writing_one_file_are_refused():
    text = objects_yaml({"objectName": "a", "objectType": "secret"}, {"objectName": "a", "objectType": "cert"})
    with pytest.raises(SPCError, match="give one of them a different objectAlias"):
        parse_objects(text)


@pytest.mark.parametrize("text", ["", "array:\n", "array: []\n", "- a\n", "array: [\n"])
def test_empty_or_malformed_objects(text):
    with pytest.raises(SPCError):
        parse_objects(text)


# -- parameters ------------------------------------------------------------------


def test_tenant_id_wins_over_deprecated_tenantId():
    assert parse_parameters(params(tenantID="new", tenantId="old")).tenant_id == "new"
    p = params(tenantId="old")
    del p["tenantID"]
    assert parse_parameters(p).tenant_id == "old"


def test_pod_identity_is_refused_and_points_to_workload_identity():
    with pytest.raises(SPCError) as info:
        parse_parameters(params(usePodIdentity="true"))
    assert "pod identity is deprecated" in str(info.value)
    assert "workload identity" in str(info.value) and "clientID" in str(info.value)
    assert parse_parameters(params(usePodIdentity="False")).keyvault_name == "kv1"


def test_vm_managed_identity_parameters():
    p = parse_parameters(params(useVMManagedIdentity="true", userAssignedIdentityID="uami-client-id"))
    assert p.use_vm_managed_identity and p.user_assigned_identity_id == "uami-client-id"
    with pytest.raises(SPCError, match="useVMManagedIdentity"):
        parse_parameters(params(useVMManagedIdentity="yes"))


@pytest.mark.parametrize(
    "change, message",
    [
        ({"keyvaultName": "kv"}, "must be between 3 and 24 chars"),
        ({"keyvaultName": "k" * 25}, "must be between 3 and 24 chars"),
        ({"keyvaultName": "kv_1"}, r"must match \[-a-zA-Z0-9\]"),
        ({"keyvaultName": ""}, "keyvaultName is not provided"),
        ({"tenantID": ""}, "tenantId is not provided"),
        ({"csi.storage.k8s.io/pod.name": ""}, "podInfoOnMount"),
        ({"objects": ""}, "objects is not set"),
        ({"useAzureTokenProxy": "true"}, "identity binding"),
    ],
)
def test_bad_parameters(change, message):
    with pytest.raises(SPCError, match=message):
        parse_parameters(params(**change))


def test_workload_identity_token_is_taken_for_its_audience():
    tokens = json.dumps({"api://AzureADTokenExchange": {"token": "a.b.c", "expirationTimestamp": "2030-01-01T00:00:00Z"}})
    assert service_account_token(tokens) == "a.b.c"
    with pytest.raises(SPCError, match="tokenRequests"):
        service_account_token("")
    other = json.dumps({"api://AKSIdentityBinding": {"token": "x.y.z", "expirationTimestamp": "2030-01-01T00:00:00Z"}})
    with pytest.raises(SPCError, match=r"audiences present: api://AKSIdentityBinding"):
        service_account_token(other)


# -- clouds ------------------------------------------------------------------------


def test_provider_flags_replace_the_default_cloud_only():
    default = cloud.default_cloud("vault.localhost:8443", "https://localhost:8443")
    for name in ("", "AzurePublicCloud", "azurepubliccloud"):
        env = cloud.resolve(name, "", default)
        assert env.vault_url("kv1") == "https://kv1.vault.localhost:8443/"
        assert env.authority_host == "https://localhost:8443"
    gov = cloud.resolve("AzureUSGovernmentCloud", "", default)
    assert gov.vault_url("kv1") == "https://kv1.vault.usgovcloudapi.net/"
    assert gov.authority_host == "https://login.microsoftonline.us"
    with pytest.raises(cloud.CloudError, match="is not valid; use one of"):
        cloud.resolve("MarsCloud", "", default)


def test_azure_stack_reads_the_go_autorest_environment_file(tmp_path):
    f = tmp_path / "env.json"
    f.write_text(
        json.dumps(
            {
                "name": "AzureStackCloud",
                "activeDirectoryEndpoint": "https://adfs.local.azurestack.external/",
                "keyVaultDNSSuffix": "vault.local.azurestack.external",
                "keyVaultEndpoint": "https://vault.local.azurestack.external",
                "resourceManagerEndpoint": "https://management.local.azurestack.external/",
            }
        )
    )
    env = cloud.resolve("AzureStackCloud", str(f), cloud.default_cloud())
    assert env.vault_url("kv1") == "https://kv1.vault.local.azurestack.external/"
    assert env.authority_host == "https://adfs.local.azurestack.external"
    assert env.key_vault_endpoint == "https://vault.local.azurestack.external"
    with pytest.raises(cloud.CloudError, match="needs cloudEnvFileName"):
        cloud.resolve("AzureStackCloud", "", cloud.default_cloud())
    f.write_text('{"secret": "do-not-echo"')
    with pytest.raises(cloud.CloudError) as info:
        cloud.resolve("AzureStackCloud", str(f), cloud.default_cloud())
    assert "not JSON" in str(info.value) and "do-not-echo" not in str(info.value)
