"""`strongroom provider serve` as a process: socket naming, stale sockets, metrics labels, clean shutdown."""

from __future__ import annotations

import json
import os
import signal
import socket
import stat
import subprocess
import time

import grpc
import httpx
import pytest

from strongroom.csi.proto.v1alpha1 import service_pb2 as pb
from strongroom.csi.proto.v1alpha1 import service_pb2_grpc as pb_grpc
from tests.conftest import STRONGROOM, free_port


def _start(*args: str) -> subprocess.Popen:
    return subprocess.Popen([*STRONGROOM, "provider", "serve", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for_socket(proc: subprocess.Popen, path, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"provider exited early: {proc.stderr.read()}")
        try:
            with grpc.insecure_channel(f"unix:{path}") as ch:
                pb_grpc.CSIDriverProviderStub(ch).Version(pb.VersionRequest(version="v1alpha1"), timeout=1)
            return
        except grpc.RpcError:
            time.sleep(0.05)
    raise AssertionError("provider socket never answered")


def _stale_socket(path) -> None:
    """What a killed provider leaves behind: a socket file nobody listens on."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(str(path))
    s.close()


def test_serve_named_azure_replaces_a_stale_socket_and_stops_cleanly(server, tmp_path):
    path = tmp_path / "azure.sock"
    _stale_socket(path)
    metrics_port = free_port()
    proc = _start(
        "--socket", str(path),
        "--vault-dns-suffix", f"vault.localhost:{server.port}",
        "--authority-host", server.url,
        "--ca-file", server.ca,
        "--metrics-addr", f"127.0.0.1:{metrics_port}",
    )
    try:
        _wait_for_socket(proc, path)
        assert stat.S_IMODE(path.stat().st_mode) & 0o077 == 0
        with grpc.insecure_channel(f"unix:{path}") as ch:
            stub = pb_grpc.CSIDriverProviderStub(ch)
            assert stub.Version(pb.VersionRequest(version="v1alpha1"), timeout=5).runtime_name == "strongroom"
            # A Mount the driver would send without podInfoOnMount: refused, as a gRPC status.
            with pytest.raises(grpc.RpcError) as info:
                stub.Mount(pb.MountRequest(attributes=json.dumps({"keyvaultName": "kv1"}), secrets="{}", permission="420"), timeout=5)
            assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert "podInfoOnMount" in info.value.details()
        metrics = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5).text
        assert 'service_name="csi-secrets-store-provider-azure"' in metrics
        assert 'provider="azure"' in metrics and 'grpc_method="/v1alpha1.CSIDriverProvider/Version"' in metrics
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=15)
    assert proc.returncode == 0, proc.stderr.read()
    assert not path.exists()


def test_serve_refuses_to_replace_a_file_that_is_not_a_socket(tmp_path):
    path = tmp_path / "strongroom.sock"
    path.write_text("not a socket")
    proc = _start("--socket", str(path))
    _, err = proc.communicate(timeout=30)
    assert proc.returncode != 0
    assert "is not a socket" in err
    assert path.read_text() == "not a socket"


def test_serve_refuses_a_second_provider_on_a_live_socket(tmp_path):
    path = tmp_path / "strongroom.sock"
    first = _start("--socket", str(path))
    try:
        _wait_for_socket(first, path)
        second = _start("--socket", str(path))
        _, err = second.communicate(timeout=30)
        assert second.returncode != 0 and "another process is serving" in err
    finally:
        first.send_signal(signal.SIGTERM)
        first.wait(timeout=15)


def test_provider_name_must_be_one_the_driver_accepts(tmp_path):
    proc = _start("--name", "no/slashes", "--socket", str(tmp_path / "x.sock"))
    _, err = proc.communicate(timeout=30)
    assert proc.returncode != 0 and "--name" in err
    assert not os.path.exists(tmp_path / "x.sock")


def test_the_daemonset_manifest_runs_as_written(server, tmp_path):
    """deploy/base/provider.yaml: the socket directory the driver reads, and flags `serve` accepts."""
    import yaml

    from tests.conftest import ROOT

    docs = list(yaml.safe_load_all((ROOT / "deploy" / "base" / "provider.yaml").read_text()))
    [ds] = [d for d in docs if d["kind"] == "DaemonSet"]
    pod = ds["spec"]["template"]["spec"]
    [container] = pod["containers"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    assert volumes["provider-vol"]["hostPath"]["path"] == "/var/run/secrets-store-csi-providers"
    args = container["args"]
    assert args[:2] == ["provider", "serve"]
    flags = dict(a.split("=", 1) for a in args[2:])
    assert flags["--socket"] == f"{mounts['provider-vol']}/strongroom.sock"
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"

    # The same flags, with this machine's paths and server, start a provider that answers.
    port = free_port()
    flags.update(
        {
            "--socket": str(tmp_path / "strongroom.sock"),
            "--ca-file": server.ca,
            "--metrics-addr": f"127.0.0.1:{port}",
        }
    )
    proc = _start(*(f"{k}={v}" for k, v in flags.items()))
    try:
        _wait_for_socket(proc, tmp_path / "strongroom.sock")
        assert httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5).text == "ok\n"
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=15)
    assert proc.returncode == 0
