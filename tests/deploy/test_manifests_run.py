"""The containers in deploy/ start with the arguments and environment written there."""

from __future__ import annotations

import os
import re
import subprocess

from tests.conftest import STRONGROOM, free_port
from tests.deploy.test_kustomize import one, render
from tests.webhook.conftest import (
    FakeKubeAPI,
    Webhook,
    admission_review,
    apply_response,
    deployment_pod,
    env_of,
    make_ca,
    wait_healthy,
)


def _flags(help_text: str) -> set[str]:
    return set(re.findall(r"--[a-z][a-z0-9-]+", help_text))


def test_server_arguments_are_flags_of_strongroom_up():
    known = _flags(subprocess.run([*STRONGROOM, "up", "--help"], capture_output=True, text=True, timeout=60,
                                  env={**os.environ, "COLUMNS": "250"}).stdout)
    assert "--issuer-ca-file" in known  # the help was read whole
    for overlay in ("single", "ha"):
        args = one(render(overlay), "StatefulSet", "strongroom")["spec"]["template"]["spec"]["containers"][0]["args"]
        assert args[0] == "up"
        used = {a.split("=", 1)[0] for a in args[1:]}
        assert used <= known, (overlay, used - known)


def test_webhook_runs_as_the_deployment_and_configmap_say(tmp_path):
    """The Deployment's args (certificate paths mapped to local files) and the ConfigMap as environment: the
    injected AZURE_AUTHORITY_HOST is the one the ConfigMap names."""
    objects = render("single")
    container = one(objects, "Deployment", "strongroom-webhook")["spec"]["template"]["spec"]["containers"][0]
    assert container["envFrom"] == [{"configMapRef": {"name": "strongroom-webhook-config"}}]
    config = one(objects, "ConfigMap", "strongroom-webhook-config")["data"]
    ca = make_ca(tmp_path / "ca", "cluster")
    api = FakeKubeAPI(ca, tmp_path / "api")
    api.add("default", "workload-identity-sa", {"azure.workload.identity/client-id": "c1"})
    cert, key = ca.issue(tmp_path / "certs", ["localhost", "127.0.0.1"])
    port = free_port()
    args = [a.replace("/certs/tls.crt", str(cert)).replace("/certs/tls.key", str(key)) for a in container["args"]]
    args = [f"--port={port}" if a.startswith("--port=") else a for a in args]
    env = {**os.environ, **config, "AZURE_TENANT_ID": "t1", "KUBECONFIG": str(api.kubeconfig(tmp_path / "kc"))}
    log = tmp_path / "log"
    with open(log, "wb") as out:  # the webhook keeps its own descriptor
        proc = subprocess.Popen([*STRONGROOM, *args, "--bind", "127.0.0.1"], env=env, stdout=out,
                                stderr=subprocess.STDOUT)
    hook = Webhook(f"https://localhost:{port}", str(ca.path), proc, log, cert, key)
    try:
        wait_healthy(hook)
        pod = deployment_pod()
        patched = apply_response(pod, hook.review(admission_review(pod))["response"])
        injected = env_of(patched["spec"]["containers"][0])
        assert injected["AZURE_AUTHORITY_HOST"] == config["AZURE_AUTHORITY_HOST"]
        assert injected["AZURE_TENANT_ID"] == "t1" and injected["AZURE_CLIENT_ID"] == "c1"
    finally:
        hook.stop()
        api.close()
