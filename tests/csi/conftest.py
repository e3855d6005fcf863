"""Fixtures for the CSI provider: a provider on a real unix socket, pointed at the session's real server."""

from __future__ import annotations

import pytest

from tests.csi.csi_support import ProviderUnderTest, provider_config, start_provider


@pytest.fixture(scope="session")
def provider(server, tmp_path_factory) -> ProviderUnderTest:
    """The provider over a real unix socket, configured with flags only (no SPC edits)."""
    sock = tmp_path_factory.mktemp("provider") / "strongroom.sock"
    p = start_provider(sock, provider_config(server), metrics_addr="127.0.0.1:0")
    yield p
    p.close()


@pytest.fixture(scope="session")
def sp_secrets(server) -> dict[str, str]:
    """The nodePublishSecretRef Secret's data for the admin service principal."""
    admin = server.admin
    return {"clientid": admin["clientId"], "clientsecret": admin["clientSecret"]}


@pytest.fixture(scope="session")
def spc_base(server, vault) -> dict[str, str]:
    """SPC parameters as written for AKS: vault name and tenant, nothing Strongroom-specific."""
    return {"keyvaultName": vault, "tenantId": server.admin["tenantId"], "usePodIdentity": "false"}
