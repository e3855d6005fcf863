"""The webhook's pod mutation over the wire, checked against upstream azure-workload-identity v1.5.1.

Each test names the upstream source it follows: Azure/azure-workload-identity at tag
v1.5.1, pkg/webhook/webhook.go and pkg/webhook/consts.go. Reviews go to a real
`strongroom webhook serve` over TLS; its patch is applied with `jsonpatch` and the
pod validated against Kubernetes' 1.37 schema (kubernetes-validate), as the API server
would apply and validate it.
"""

from __future__ import annotations

import pytest

from tests.webhook.conftest import (
    AUTHORITY,
    TENANT,
    admission_review,
    apply_response,
    containers_by_name,
    deployment_pod,
    env_of,
)

CLIENT_ID = "8f4e0b1a-5c6d-4e7f-9a0b-1c2d3e4f5a6b"
TOKEN_FILE = "/var/run/secrets/azure/tokens/azure-identity-token"


@pytest.fixture(scope="module")
def namespace(kube_api):
    kube_api.add("default", "workload-identity-sa", {"azure.workload.identity/client-id": CLIENT_ID})
    return "default"


def _mutate(webhook, pod, namespace="default", version="v1"):
    review = admission_review(pod, namespace, version)
    answer = webhook.review(review)
    assert answer["apiVersion"] == f"admission.k8s.io/{version}" and answer["kind"] == "AdmissionReview"
    assert answer["response"]["uid"] == review["request"]["uid"]
    return answer["response"]


def test_labelled_pod_gets_env_token_volume_and_mount_in_every_container(webhook, namespace):
    """webhook.go `Handle` -> `mutateContainers` (init containers and containers), `addEnvironmentVariables`,
    `addProjectedTokenVolumeMount`, `addProjectedServiceAccountTokenVolume`; names from consts.go."""
    pod = deployment_pod()
    response = _mutate(webhook, pod)
    assert response["patchType"] == "JSONPatch"
    patched = apply_response(pod, response)
    for name, container in containers_by_name(patched).items():
        assert env_of(container) == {
            "AZURE_CLIENT_ID": CLIENT_ID,
            "AZURE_TENANT_ID": TENANT,
            "AZURE_FEDERATED_TOKEN_FILE": TOKEN_FILE,
            "AZURE_AUTHORITY_HOST": AUTHORITY,
        }, name
        assert {"name": "azure-identity-token", "mountPath": "/var/run/secrets/azure/tokens",
                "readOnly": True} in container["volumeMounts"], name
        assert container["volumeMounts"][0]["name"] == "kube-api-access-x7k2p"  # what was there stays
    volumes = {v["name"]: v for v in patched["spec"]["volumes"]}
    assert volumes["azure-identity-token"] == {"name": "azure-identity-token", "projected": {"sources": [
        {"serviceAccountToken": {"path": "azure-identity-token", "expirationSeconds": 3600,
                                 "audience": "api://AzureADTokenExchange"}}]}}
    assert "kube-api-access-x7k2p" in volumes


def test_v1beta1_review_is_answered_in_v1beta1(webhook, namespace):
    """controller-runtime (v0.19, admission/http.go `ServeHTTP`) answers in the request's AdmissionReview version."""
    pod = deployment_pod()
    patched = apply_response(pod, _mutate(webhook, pod, version="v1beta1"))
    assert env_of(patched["spec"]["containers"][0])["AZURE_CLIENT_ID"] == CLIENT_ID


def test_second_review_of_a_mutated_pod_changes_nothing(webhook, namespace):
    """reinvocationPolicy IfNeeded: every helper in webhook.go adds only what is missing (env by name, mount by
    name, the volume by its projected path), so a reinvocation yields no patch (`PatchResponseFromRaw` of equal pods)."""
    pod = deployment_pod()
    once = apply_response(pod, _mutate(webhook, pod))
    response = _mutate(webhook, once)
    assert response == {"uid": response["uid"], "allowed": True}


def test_variables_already_set_are_left_as_they_are(webhook, namespace):
    """webhook.go `addEnvironmentVariables`: a variable is added only when no env entry has its name."""
    pod = deployment_pod()
    app = pod["spec"]["containers"][0]
    app["env"] = [{"name": "AZURE_CLIENT_ID", "value": "chosen-by-the-user"},
                  {"name": "AZURE_AUTHORITY_HOST", "value": ""}]
    patched = apply_response(pod, _mutate(webhook, pod))
    env = patched["spec"]["containers"][0]["env"]
    assert env[:2] == app["env"]  # untouched, in place
    assert [e["name"] for e in env].count("AZURE_CLIENT_ID") == 1
    assert env_of(patched["spec"]["containers"][0]) == {
        "AZURE_CLIENT_ID": "chosen-by-the-user", "AZURE_AUTHORITY_HOST": "",
        "AZURE_TENANT_ID": TENANT, "AZURE_FEDERATED_TOKEN_FILE": TOKEN_FILE}


def test_skip_containers_annotation_is_split_on_semicolons_and_trimmed(webhook, namespace):
    """webhook.go `getSkipContainers` (strings.Split on ';', TrimSpace); `mutateContainers` skips those names,
    init containers included. The volume is still added to the pod."""
    pod = deployment_pod(annotations={"azure.workload.identity/skip-containers": "sidecar ; migrate"})
    patched = apply_response(pod, _mutate(webhook, pod))
    containers = containers_by_name(patched)
    for skipped in ("sidecar", "migrate"):
        assert "env" not in containers[skipped]
        assert [m["name"] for m in containers[skipped]["volumeMounts"]] == ["kube-api-access-x7k2p"]
    assert env_of(containers["app"])["AZURE_CLIENT_ID"] == CLIENT_ID
    assert any(v["name"] == "azure-identity-token" for v in patched["spec"]["volumes"])


def test_pod_expiration_annotation_takes_precedence_over_the_service_account(webhook, kube_api):
    """webhook.go `getServiceAccountTokenExpiration`: pod annotation, else ServiceAccount annotation, else 3600."""
    kube_api.add("team-a", "long-lived", {"azure.workload.identity/client-id": CLIENT_ID,
                                          "azure.workload.identity/service-account-token-expiration": "86400"})

    def expiration(pod):
        patched = apply_response(pod, _mutate(webhook, pod, "team-a"))
        volume = next(v for v in patched["spec"]["volumes"] if v["name"] == "azure-identity-token")
        return volume["projected"]["sources"][0]["serviceAccountToken"]["expirationSeconds"]

    assert expiration(deployment_pod("team-a", "long-lived")) == 86400
    pod = deployment_pod("team-a", "long-lived",
                         annotations={"azure.workload.identity/service-account-token-expiration": "7200"})
    assert expiration(pod) == 7200


@pytest.mark.parametrize("value, message", [
    ("3599", "token expiration 3599 not valid. Expected value to be between 3600 and 86400"),
    ("86401", "token expiration 86401 not valid. Expected value to be between 3600 and 86400"),
    ("-1", "token expiration -1 not valid. Expected value to be between 3600 and 86400"),
    ("1h", 'strconv.ParseInt: parsing "1h": invalid syntax'),
])
def test_expiration_outside_3600_to_86400_is_denied_with_upstreams_message(webhook, namespace, value, message):
    """webhook.go `getServiceAccountTokenExpiration` + `validServiceAccountTokenExpiry` (consts.go
    Min/MaxServiceAccountTokenExpiration), answered as `admission.Errored(http.StatusBadRequest, err)`."""
    pod = deployment_pod(annotations={"azure.workload.identity/service-account-token-expiration": value})
    response = _mutate(webhook, pod)
    assert response["allowed"] is False and "patch" not in response
    assert response["status"] == {"code": 400, "message": message}


def test_service_account_expiration_out_of_range_is_denied_too(webhook, kube_api):
    """Same check (`getServiceAccountTokenExpiration`) when the value comes from the ServiceAccount."""
    kube_api.add("team-b", "too-long", {"azure.workload.identity/service-account-token-expiration": "172800"})
    response = _mutate(webhook, deployment_pod("team-b", "too-long"), "team-b")
    assert response["status"]["message"] == (
        "token expiration 172800 not valid. Expected value to be between 3600 and 86400")


def test_tenant_annotation_wins_and_empty_values_are_not_injected(webhook, kube_api):
    """webhook.go `getTenantID` (annotation if present, else the configured tenant) and `addEnvironmentVariables`
    (only non-empty values: a ServiceAccount without client-id gets no AZURE_CLIENT_ID)."""
    kube_api.add("team-c", "other-tenant", {"azure.workload.identity/client-id": CLIENT_ID,
                                            "azure.workload.identity/tenant-id": "11111111-2222-3333-4444-555555555555"})
    kube_api.add("team-c", "no-client-id", None)
    patched = apply_response(pod := deployment_pod("team-c", "other-tenant"), _mutate(webhook, pod, "team-c"))
    assert env_of(patched["spec"]["containers"][0])["AZURE_TENANT_ID"] == "11111111-2222-3333-4444-555555555555"
    patched = apply_response(pod := deployment_pod("team-c", "no-client-id"), _mutate(webhook, pod, "team-c"))
    env = env_of(patched["spec"]["containers"][0])
    assert "AZURE_CLIENT_ID" not in env and env["AZURE_TENANT_ID"] == TENANT


def test_pod_without_a_service_account_name_uses_default(webhook, kube_api):
    """webhook.go `Handle`: an empty serviceAccountName means `default`; the namespace is the request's."""
    kube_api.add("team-d", "default", {"azure.workload.identity/client-id": CLIENT_ID})
    pod = deployment_pod("team-d")
    del pod["spec"]["serviceAccountName"], pod["spec"]["serviceAccount"]
    patched = apply_response(pod, _mutate(webhook, pod, "team-d"))
    assert env_of(patched["spec"]["containers"][0])["AZURE_CLIENT_ID"] == CLIENT_ID
    assert kube_api.reads_of("team-d", "default") == 1


def test_missing_service_account_is_denied(webhook, namespace):
    """webhook.go `Handle`: a ServiceAccount the API does not have is `admission.Errored(400, err)`, err being
    the API's NotFound status message."""
    response = _mutate(webhook, deployment_pod(sa="nobody-made-me"))
    assert response["allowed"] is False
    assert response["status"] == {"code": 400, "message": 'serviceaccounts "nobody-made-me" not found'}


def test_pods_without_the_label_are_left_alone(webhook, kube_api, namespace):
    """The MutatingWebhookConfiguration's objectSelector (deploy/azure-wi-webhook.yaml) keeps unlabelled pods away;
    Strongroom's handler checks the label as well, so such a pod is allowed unchanged without an API read."""
    before = len(kube_api.requests)
    pod = deployment_pod(labelled=False)
    pod["metadata"]["labels"]["azure.workload.identity/use"] = "True"  # matchLabels compares exactly
    response = _mutate(webhook, pod)
    assert response == {"uid": response["uid"], "allowed": True}
    assert len(kube_api.requests) == before


def test_pods_without_env_mounts_or_volumes_get_whole_lists(webhook, namespace):
    """A bare pod (no env, volumeMounts or volumes fields): the patch adds the lists themselves."""
    pod = {"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": "bare", "labels": {"azure.workload.identity/use": "true"}},
           "spec": {"serviceAccountName": "workload-identity-sa",
                    "containers": [{"name": "c", "image": "busybox"}]}}
    patched = apply_response(pod, _mutate(webhook, pod))
    assert [v["name"] for v in patched["spec"]["volumes"]] == ["azure-identity-token"]
    assert env_of(patched["spec"]["containers"][0])["AZURE_FEDERATED_TOKEN_FILE"] == TOKEN_FILE


def test_rollout_reads_the_service_account_once_while_cached(webhook, kube_api):
    """Every pod creation waits on the ServiceAccount read: replicas of one rollout share one cached read."""
    kube_api.add("team-e", "cached", {"azure.workload.identity/client-id": CLIENT_ID})
    for _ in range(5):
        apply_response(pod := deployment_pod("team-e", "cached"), _mutate(webhook, pod, "team-e"))
    assert kube_api.reads_of("team-e", "cached") == 1
