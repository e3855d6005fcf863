"""`strongroom webhook serve` as a process: certificate rotation, start-up errors, the API read's cache."""

from __future__ import annotations

import asyncio
import os
import socket
import ssl
import subprocess
import time

import pytest
from cryptography import x509

from strongroom.webhook.kube import ServiceAccounts, from_kubeconfig
from strongroom.webhook.mutation import Denied
from tests.conftest import STRONGROOM
from tests.webhook.conftest import API_TOKEN, make_ca, start_webhook


def _served_certificate(url: str, ca: str) -> x509.Certificate:
    host, port = url.removeprefix("https://").rsplit(":", 1)
    ctx = ssl.create_default_context(cafile=ca)
    with socket.create_connection(("127.0.0.1", int(port)), timeout=5) as raw:
        with ctx.wrap_socket(raw, server_hostname=host) as tls:
            return x509.load_der_x509_certificate(tls.getpeercert(binary_form=True))


def test_certificate_is_reloaded_when_its_files_change(pki, kube_api, tmp_path):
    """cert-manager (or a Secret update) replaces tls.crt/tls.key in place: new connections get the new pair
    without a restart; a half-written pair keeps the old one in service."""
    hook = start_webhook(tmp_path, pki, kube_api)
    try:
        first = _served_certificate(hook.url, hook.ca)
        # Half-way through an update: a new certificate next to the old key. Still serving the old pair.
        new_dir = tmp_path / "next"
        new_cert, new_key = pki.issue(new_dir, ["localhost", "127.0.0.1"], cn="rotated")
        hook.cert_file.write_bytes(new_cert.read_bytes())
        time.sleep(1.2)
        assert _served_certificate(hook.url, hook.ca).serial_number == first.serial_number
        assert hook.get("/healthz").status_code == 200
        # The key arrives: the next handshakes get the new certificate.
        hook.key_file.write_bytes(new_key.read_bytes())
        deadline = time.monotonic() + 10
        while _served_certificate(hook.url, hook.ca).serial_number == first.serial_number:
            assert time.monotonic() < deadline, "certificate not reloaded within 10 s"
            time.sleep(0.2)
        assert _served_certificate(hook.url, hook.ca).subject.rfc4514_string() == "CN=rotated"
        assert "not reloaded" in hook.log.read_text()  # the half-way state was noticed and logged
    finally:
        hook.stop()


def test_rotated_ca_signed_certificate_is_trusted_by_new_clients_only_after_reload(pki, kube_api, tmp_path):
    """The new certificate may come from a new CA (caBundle rotation): clients that trust only the new CA
    connect once the files are replaced."""
    hook = start_webhook(tmp_path, pki, kube_api)
    try:
        other = make_ca(tmp_path / "other-ca", "next CA")
        with pytest.raises(ssl.SSLCertVerificationError):
            _served_certificate(hook.url, str(other.path))
        cert, key = other.issue(tmp_path / "next", ["localhost", "127.0.0.1"])
        tmp_cert, tmp_key = hook.cert_file.with_name("tls.crt.new"), hook.key_file.with_name("tls.key.new")
        tmp_cert.write_bytes(cert.read_bytes())
        tmp_key.write_bytes(key.read_bytes())
        os.replace(tmp_key, hook.key_file)
        os.replace(tmp_cert, hook.cert_file)
        deadline = time.monotonic() + 10
        while True:
            try:
                _served_certificate(hook.url, str(other.path))
                break
            except ssl.SSLCertVerificationError:
                assert time.monotonic() < deadline
                time.sleep(0.2)
    finally:
        hook.stop()


def _serve(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*STRONGROOM, "webhook", "serve", *args], capture_output=True, text=True, timeout=60)


def test_start_up_errors_are_one_line_without_traceback(pki, kube_api, tmp_path):
    cert, key = pki.issue(tmp_path / "certs", ["localhost"])
    kubeconfig = kube_api.kubeconfig(tmp_path / "kubeconfig")
    missing = _serve("--tls-cert-file", str(tmp_path / "nope.crt"), "--tls-private-key-file", str(key),
                     "--kubeconfig", str(kubeconfig))
    assert missing.returncode != 0 and "--tls-cert-file" in missing.stderr and "Traceback" not in missing.stderr
    mismatched_key = pki.issue(tmp_path / "other", ["localhost"])[1]
    mismatch = _serve("--tls-cert-file", str(cert), "--tls-private-key-file", str(mismatched_key),
                      "--kubeconfig", str(kubeconfig))
    assert mismatch.returncode != 0 and "Traceback" not in mismatch.stderr
    bad_config = tmp_path / "bad-kubeconfig"
    bad_config.write_text("current-context: nowhere\ncontexts: []\n")
    no_api = _serve("--tls-cert-file", str(cert), "--tls-private-key-file", str(key), "--kubeconfig", str(bad_config))
    assert no_api.returncode != 0 and "nowhere" in no_api.stderr and "Traceback" not in no_api.stderr
    http_authority = _serve("--tls-cert-file", str(cert), "--tls-private-key-file", str(key),
                            "--kubeconfig", str(kubeconfig), "--authority-host", "http://strongroom")
    assert http_authority.returncode != 0 and "--authority-host" in http_authority.stderr
    no_flags = _serve()
    assert no_flags.returncode == 2 and "--tls-cert-file" in no_flags.stderr


def test_cached_read_expires_and_misses_are_not_cached(kube_api, tmp_path):
    """A ServiceAccount's annotation changed after a pod was admitted is seen once the short TTL has passed;
    a ServiceAccount created right after a denial is found at once (upstream reads the API on a cache miss)."""
    kube_api.add("ttl", "changing", {"azure.workload.identity/client-id": "old"})
    accounts = ServiceAccounts(from_kubeconfig(kube_api.kubeconfig(tmp_path / "kubeconfig")), ttl=0.3)

    async def scenario():
        try:
            first = await accounts.get("ttl", "changing")
            kube_api.add("ttl", "changing", {"azure.workload.identity/client-id": "new"})
            cached = await accounts.get("ttl", "changing")
            await asyncio.sleep(0.4)
            fresh = await accounts.get("ttl", "changing")
            with pytest.raises(Denied):
                await accounts.get("ttl", "late")
            kube_api.add("ttl", "late", {})
            late = await accounts.get("ttl", "late")
            together = await asyncio.gather(*(accounts.get("ttl", "burst") for _ in range(3)), return_exceptions=True)
            return first, cached, fresh, late, together
        finally:
            await accounts.aclose()

    first, cached, fresh, late, together = asyncio.run(scenario())
    ann = "azure.workload.identity/client-id"
    assert (first["metadata"]["annotations"][ann], cached["metadata"]["annotations"][ann]) == ("old", "old")
    assert fresh["metadata"]["annotations"][ann] == "new"
    assert late["metadata"]["name"] == "late"
    assert all(isinstance(e, Denied) for e in together) and kube_api.reads_of("ttl", "burst") == 1


def test_kubeconfig_token_file_and_bad_token(kube_api, tmp_path):
    """A kubeconfig user with tokenFile (relative to the kubeconfig) works; a wrong token is the API's 401, denied."""
    import json

    path = kube_api.kubeconfig(tmp_path / "kubeconfig")
    doc = json.loads(path.read_text())
    doc["users"][0]["user"] = {"tokenFile": "token"}
    path.write_text(json.dumps(doc))
    (tmp_path / "token").write_text(API_TOKEN + "\n")
    kube_api.add("tf", "sa", {})

    async def read(conn):
        accounts = ServiceAccounts(conn)
        try:
            return await accounts.get("tf", "sa")
        finally:
            await accounts.aclose()

    assert asyncio.run(read(from_kubeconfig(path)))["kind"] == "ServiceAccount"
    (tmp_path / "token").write_text("wrong")
    with pytest.raises(Denied, match="Unauthorized"):
        asyncio.run(read(from_kubeconfig(path)))


def test_kubeconfig_client_certificate_as_kind_writes_it(kube_api, pki, tmp_path):
    """A kubeconfig user with client-certificate-data / client-key-data (what `kind get kubeconfig` prints): the
    pair is loaded from a private temporary directory that is gone afterwards."""
    import base64
    import glob
    import json
    import tempfile

    cert, key = pki.issue(tmp_path / "client", ["webhook"], cn="system:serviceaccount:strongroom:strongroom-webhook")
    path = kube_api.kubeconfig(tmp_path / "kubeconfig")
    doc = json.loads(path.read_text())
    doc["users"][0]["user"] = {"client-certificate-data": base64.b64encode(cert.read_bytes()).decode(),
                               "client-key-data": base64.b64encode(key.read_bytes()).decode()}
    path.write_text(json.dumps(doc))
    kube_api.add("mtls", "sa", {})
    before = set(glob.glob(f"{tempfile.gettempdir()}/strongroom-kube-*"))
    conn = from_kubeconfig(path)
    assert set(glob.glob(f"{tempfile.gettempdir()}/strongroom-kube-*")) == before

    async def read():
        accounts = ServiceAccounts(conn)
        try:
            return await accounts.get("mtls", "sa")
        finally:
            await accounts.aclose()

    assert asyncio.run(read())["metadata"]["name"] == "sa"
