"""The pytest plugin as users meet it: an example project run with `pytest` in a subprocess.

The example project (example_project/) uses the unmodified Azure SDKs, sync and
async, with only `strongroom.vault(...)` and `strongroom.credential()`; it also
runs the unittest-style `with StrongroomServer()` helper.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from strongroom.testing.process_patch import ProcessPatch, _Resolver

EXAMPLE = Path(__file__).parent / "example_project"


def test_example_project_passes_with_the_plugin() -> None:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("STRONGROOM_", "AZURE_")) and k not in ("REQUESTS_CA_BUNDLE", "SSL_CERT_FILE")}
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q"], cwd=EXAMPLE, env=env, capture_output=True,
                          text=True, timeout=240)
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-2000:]
    assert "8 passed" in proc.stdout, proc.stdout[-2000:]


def test_plugin_is_loaded_and_inert_until_requested(request: pytest.FixtureRequest) -> None:
    """Loaded by its pytest11 entry point in this very suite, it has patched nothing (conftest's resolver is in place)."""
    import tests.conftest as project_conftest

    plugin = request.config.pluginmanager.get_plugin("strongroom")
    assert plugin is not None and plugin.__name__ == "strongroom.testing" and hasattr(plugin, "strongroom")
    assert socket.getaddrinfo is project_conftest._localhost_getaddrinfo
    assert "REQUESTS_CA_BUNDLE" not in os.environ or "strongroom" not in os.environ["REQUESTS_CA_BUNDLE"]


def test_resolver_maps_only_the_vault_domain() -> None:
    seen: list[object] = []
    resolver = _Resolver("vault.localhost", "127.0.0.1", lambda host, *a, **k: seen.append(host))
    for host in ("kv1.vault.localhost", "KV1.Vault.LocalHost.", b"kv1.vault.localhost"):
        resolver(host, 443)
    for host in ("vault.localhost.evil.example", "xvault.localhost", "vault.localhost", "login.microsoftonline.com", None):
        resolver(host, 443)
    assert seen == ["127.0.0.1"] * 3 + ["vault.localhost.evil.example", "xvault.localhost", "vault.localhost",
                                         "login.microsoftonline.com", None]


def test_undo_restores_the_process_even_when_wrapped_after_us(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
    before_resolver, before_env = socket.getaddrinfo, os.environ.get("SSL_CERT_FILE")
    patch = ProcessPatch("vault.example.test", "127.0.0.1", ca, tmp_path / "bundle.pem")
    patch.apply()
    try:
        assert os.environ["SSL_CERT_FILE"] == str(tmp_path / "bundle.pem")
        bundle = (tmp_path / "bundle.pem").read_text()
        assert bundle.endswith(ca.read_text()) and bundle.count("BEGIN CERTIFICATE") > 1  # public CAs kept
        ours = socket.getaddrinfo
        socket.getaddrinfo = lambda *a, **k: ours(*a, **k)  # someone else patches after us
    finally:
        patch.undo()
    try:
        assert os.environ.get("SSL_CERT_FILE") == before_env
        assert not ours.active  # left in a chain it cannot be unlinked from: it passes every name through
    finally:
        socket.getaddrinfo = before_resolver
