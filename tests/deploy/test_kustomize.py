"""deploy/: each overlay rendered by `kubectl kustomize` and every object validated against Kubernetes 1.37's schema.

kubernetes-validate carries the OpenAPI schemas of each release; 1.37 is the newest it
ships (a current release). Beyond the schema, the properties docs/kubernetes.md promises
are asserted: upstream azure-workload-identity's webhook registration (deploy/azure-wi-webhook.yaml
at v1.5.1), RBAC that lets the webhook read serviceaccounts and nothing else, restricted
security contexts everywhere but the provider's socket, NetworkPolicies, probes, and what
makes an overlay single (SQLite, one replica, a volume) or ha (PostgreSQL DSN from a
Secret, 2+ replicas, PodDisruptionBudgets).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
K8S_VERSION = "1.37.0"
OVERLAYS = ["single", "ha"]
WORKLOADS = {"Deployment", "StatefulSet", "DaemonSet"}
PUBLIC_URL = "https://strongroom.strongroom.svc.cluster.local"


def kubectl() -> str:
    """kubectl with Kustomize v5 (kubectl >= 1.27): on PATH or in the venv. Missing is a failure, not a skip."""
    found = shutil.which("kubectl") or shutil.which("kubectl", path=str(Path(sys.executable).parent))
    if not found:
        pytest.fail("kubectl is not installed: the deploy/ tests render the overlays with `kubectl kustomize`. "
                    "Install kubectl >= 1.27 (Kustomize v5; Debian's kubernetes-client is too old).")
    version = json.loads(subprocess.run([found, "version", "--client", "-o", "json"], capture_output=True,
                                        text=True, check=True, timeout=60).stdout)
    if not version.get("kustomizeVersion", "v0").startswith("v5"):
        pytest.fail(f"{found} bundles Kustomize {version.get('kustomizeVersion')}; deploy/ needs Kustomize v5")
    return found


def render(overlay: str) -> list[dict[str, Any]]:
    proc = subprocess.run([kubectl(), "kustomize", str(ROOT / "deploy" / "overlays" / overlay)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return [doc for doc in yaml.safe_load_all(proc.stdout) if doc]


@pytest.fixture(scope="module", params=OVERLAYS)
def rendered(request) -> tuple[str, list[dict[str, Any]]]:
    return request.param, render(request.param)


def one(objects, kind: str, name: str) -> dict[str, Any]:
    found = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind}/{name}: {len(found)} found"
    return found[0]


def pod_specs(objects):
    for o in objects:
        if o["kind"] in WORKLOADS:
            yield o, o["spec"]["template"]["spec"]


def containers(spec):
    return spec.get("initContainers", []) + spec["containers"]


def selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


def test_every_object_validates_against_the_kubernetes_schema(rendered):
    overlay, objects = rendered
    assert len(objects) >= 18
    for obj in objects:
        try:
            kubernetes_validate.validate(obj, K8S_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(f"{overlay}: {obj['kind']}/{obj['metadata']['name']}: {exc.message} at {list(exc.path)}")
    names = [(o["kind"], o["metadata"].get("namespace"), o["metadata"]["name"]) for o in objects]
    assert len(names) == len(set(names)), "an object is defined twice"


def test_webhook_is_registered_as_upstream_registers_it(rendered):
    """Azure/azure-workload-identity v1.5.1 deploy/azure-wi-webhook.yaml (and the kubebuilder marker in
    pkg/webhook/webhook.go): objectSelector on the pod label, Fail, None, [v1, v1beta1], IfNeeded, CREATE pods."""
    _, objects = rendered
    config = one(objects, "MutatingWebhookConfiguration", "strongroom-workload-identity")
    (hook,) = config["webhooks"]
    assert hook["objectSelector"] == {"matchLabels": {"azure.workload.identity/use": "true"}}
    assert hook["failurePolicy"] == "Fail" and hook["sideEffects"] == "None"
    assert hook["admissionReviewVersions"] == ["v1", "v1beta1"]
    assert hook["reinvocationPolicy"] == "IfNeeded" and hook["matchPolicy"] == "Equivalent"
    assert hook["rules"] == [{"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE"],
                              "resources": ["pods"], "scope": "Namespaced"}]
    ref = hook["clientConfig"]["service"]
    assert ref["path"] == "/mutate-v1-pod"
    service = one(objects, "Service", ref["name"])
    assert service["metadata"]["namespace"] == ref["namespace"]
    (port,) = [p for p in service["spec"]["ports"] if p["port"] == ref["port"]]
    deployment = one(objects, "Deployment", "strongroom-webhook")
    pod = deployment["spec"]["template"]
    assert selects(service["spec"]["selector"], pod["metadata"]["labels"])
    (webhook,) = pod["spec"]["containers"]
    assert port["targetPort"] in [p["name"] for p in webhook["ports"]]
    assert webhook["args"][:2] == ["webhook", "serve"]
    assert "--tls-cert-file=/certs/tls.crt" in webhook["args"]
    assert "azure.workload.identity/use" not in pod["metadata"]["labels"]  # it must never wait on itself
    assert deployment["spec"]["replicas"] >= 2  # failurePolicy Fail: one replica down must not block pods


def test_webhook_reads_serviceaccounts_and_nothing_else(rendered):
    _, objects = rendered
    roles = {(o["kind"], o["metadata"]["name"]): o for o in objects if o["kind"] in ("ClusterRole", "Role")}
    granted = []
    for binding in (o for o in objects if o["kind"] in ("ClusterRoleBinding", "RoleBinding")):
        subjects = [(s["kind"], s.get("namespace"), s["name"]) for s in binding["subjects"]]
        if ("ServiceAccount", "strongroom", "strongroom-webhook") in subjects:
            role = roles[(binding["roleRef"]["kind"], binding["roleRef"]["name"])]
            granted += role["rules"]
    assert granted == [{"apiGroups": [""], "resources": ["serviceaccounts"], "verbs": ["get"]}]
    # No other identity in these manifests is given any permission.
    assert len([o for o in objects if o["kind"].endswith("RoleBinding")]) == 1
    for name in ("strongroom",):
        assert one(objects, "ServiceAccount", name)["automountServiceAccountToken"] is False
    assert one(objects, "ServiceAccount", "strongroom-csi-provider")["automountServiceAccountToken"] is False


def test_restricted_security_contexts_except_the_providers_socket(rendered):
    """The strongroom namespace enforces the restricted Pod Security Standard; the provider (kube-system) is the
    one exception, for root on its hostPath socket directory, and is locked down otherwise."""
    _, objects = rendered
    namespace = one(objects, "Namespace", "strongroom")
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    seen = set()
    for workload, spec in pod_specs(objects):
        seen.add(workload["metadata"]["name"])
        for c in containers(spec):
            sc = c["securityContext"]
            assert sc["allowPrivilegeEscalation"] is False and sc["readOnlyRootFilesystem"] is True, c["name"]
            assert sc["capabilities"] == {"drop": ["ALL"]} and sc.get("privileged", False) is False, c["name"]
            assert sc["seccompProfile"] == {"type": "RuntimeDefault"}, c["name"]
        host_paths = [v["hostPath"]["path"] for v in spec.get("volumes", []) if "hostPath" in v]
        if workload["metadata"]["name"] == "strongroom-csi-provider":
            assert workload["metadata"]["namespace"] == "kube-system"
            assert host_paths == ["/var/run/secrets-store-csi-providers"]
            continue
        assert workload["metadata"]["namespace"] == "strongroom"
        assert host_paths == [] and not spec.get("hostNetwork") and not spec.get("hostPID")
        assert spec["securityContext"]["runAsNonRoot"] is True and spec["securityContext"]["runAsUser"] != 0
        assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        for c in containers(spec):
            assert c["securityContext"]["runAsNonRoot"] is True
    assert seen == {"strongroom", "strongroom-webhook", "strongroom-csi-provider"}


def test_provider_serves_its_socket_where_the_driver_looks(rendered):
    _, objects = rendered
    provider = one(objects, "DaemonSet", "strongroom-csi-provider")
    spec = provider["spec"]["template"]["spec"]
    (container,) = spec["containers"]
    mount = next(m for m in container["volumeMounts"] if m["mountPath"] == "/provider")
    volume = next(v for v in spec["volumes"] if v["name"] == mount["name"])
    assert volume["hostPath"] == {"path": "/var/run/secrets-store-csi-providers", "type": "DirectoryOrCreate"}
    assert "--socket=/provider/strongroom.sock" in container["args"]


def test_one_public_address_everywhere(rendered):
    """The server's --public-url is the authority the webhook injects and the provider asks, and the base of the
    vault host names the provider builds."""
    _, objects = rendered
    server = one(objects, "StatefulSet", "strongroom")["spec"]["template"]["spec"]["containers"][0]
    assert f"--public-url={PUBLIC_URL}" in server["args"]
    assert one(objects, "ConfigMap", "strongroom-webhook-config")["data"]["AZURE_AUTHORITY_HOST"] == PUBLIC_URL
    provider = one(objects, "DaemonSet", "strongroom-csi-provider")["spec"]["template"]["spec"]["containers"][0]
    assert f"--authority-host={PUBLIC_URL}" in provider["args"]
    assert "--vault-dns-suffix=vault.strongroom.strongroom.svc.cluster.local" in provider["args"]
    service = one(objects, "Service", "strongroom")
    assert service["spec"]["ports"][0]["port"] == 443  # the URL has no port
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert server[probe]["httpGet"] == {"path": "/healthz", "port": "https", "scheme": "HTTPS"}
    assert "--issuer-ca-file=/etc/strongroom/cluster-ca/ca.crt" in server["args"]


def test_every_service_reaches_a_named_container_port(rendered):
    _, objects = rendered
    for service in (o for o in objects if o["kind"] == "Service"):
        pods = [(w, s) for w, s in pod_specs(objects)
                if w["metadata"]["namespace"] == service["metadata"]["namespace"]
                and selects(service["spec"]["selector"], w["spec"]["template"]["metadata"]["labels"])]
        assert pods, service["metadata"]["name"]
        for port in service["spec"]["ports"]:
            for _, spec in pods:
                assert port["targetPort"] in [p["name"] for c in spec["containers"] for p in c.get("ports", [])]


def test_network_policies_deny_by_default_and_open_only_the_served_ports(rendered):
    overlay, objects = rendered
    policies = [o for o in objects if o["kind"] == "NetworkPolicy"]
    deny = one(objects, "NetworkPolicy", "default-deny")
    assert deny["spec"] == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
    for workload, spec in pod_specs(objects):
        labels = workload["spec"]["template"]["metadata"]["labels"]
        mine = [p for p in policies if p["metadata"]["namespace"] == workload["metadata"]["namespace"]
                and p["spec"]["podSelector"] and selects(p["spec"]["podSelector"]["matchLabels"], labels)]
        assert len(mine) == 1, workload["metadata"]["name"]
        allowed = {p["port"] for rule in mine[0]["spec"]["ingress"] for p in rule["ports"]}
        served = {p["containerPort"] for c in spec["containers"] for p in c.get("ports", [])}
        assert allowed == served, workload["metadata"]["name"]
    server_egress = {p["port"] for rule in one(objects, "NetworkPolicy", "strongroom-server")["spec"]["egress"]
                     for p in rule["ports"]}
    assert (5432 in server_egress) == (overlay == "ha")


def test_single_is_one_sqlite_replica_on_a_volume():
    objects = render("single")
    server = one(objects, "StatefulSet", "strongroom")
    assert server["spec"]["replicas"] == 1
    args = server["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "--storage=sqlite:////var/lib/strongroom/strongroom.db" in args
    (claim,) = server["spec"]["volumeClaimTemplates"]
    mounts = {m["name"]: m["mountPath"] for m in server["spec"]["template"]["spec"]["containers"][0]["volumeMounts"]}
    assert mounts[claim["metadata"]["name"]] == "/var/lib/strongroom"
    assert claim["spec"]["accessModes"] == ["ReadWriteOnce"]
    assert not [o for o in objects if o["kind"] == "PodDisruptionBudget"]


def test_ha_is_two_or_more_postgresql_replicas_with_disruption_budgets():
    objects = render("ha")
    server = one(objects, "StatefulSet", "strongroom")
    assert server["spec"]["replicas"] >= 2
    spec = server["spec"]["template"]["spec"]
    container = spec["containers"][0]
    assert not any(a.startswith("--storage") for a in container["args"])  # from the environment, not argv
    env = {e["name"]: e for e in container["env"]}
    assert env["STRONGROOM_STORAGE"]["valueFrom"] == {"secretKeyRef": {"name": "strongroom-postgresql", "key": "dsn"}}
    seed = next(v for v in spec["volumes"] if v["name"] == "seed")
    assert seed["secret"]["secretName"] == "strongroom-state"
    assert [c["name"] for c in spec["initContainers"]] == ["seed-state"]
    anti = spec["affinity"]["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][0]
    assert anti["topologyKey"] == "kubernetes.io/hostname"
    budgets = [o for o in objects if o["kind"] == "PodDisruptionBudget"]
    for name in ("strongroom", "strongroom-webhook"):
        workload = next(w for w, _ in pod_specs(objects) if w["metadata"]["name"] == name)
        (pdb,) = [b for b in budgets if selects(b["spec"]["selector"]["matchLabels"],
                                                workload["spec"]["template"]["metadata"]["labels"])]
        assert pdb["spec"]["minAvailable"] == 1 < workload["spec"]["replicas"]


def test_kubectl_missing_is_a_loud_failure(monkeypatch):
    """Without kubectl the suite must fail, not skip: CI would otherwise pass with the overlays unchecked."""
    monkeypatch.setattr(shutil, "which", lambda *a, **k: None)
    with pytest.raises(pytest.fail.Exception, match="kubectl is not installed"):
        kubectl()


def test_server_takes_its_storage_url_from_the_environment(tmp_path):
    """The ha overlay passes the PostgreSQL DSN as STRONGROOM_STORAGE (from a Secret), never on the command line."""
    import os

    env = {**os.environ, "STRONGROOM_STORAGE": "mysql://db.example/strongroom"}
    proc = subprocess.run([sys.executable, "-m", "strongroom.cli.main", "up", "--state-dir", str(tmp_path / "s"),
                           "--port", "1"], capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode != 0
    assert "unsupported storage URL 'mysql://db.example/strongroom'" in proc.stdout + proc.stderr
