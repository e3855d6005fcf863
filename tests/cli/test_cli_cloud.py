"""`strongroom cloud show`: the az setup for the running instance, without its secret."""

from __future__ import annotations

import json

from tests.conftest import Server


def test_cloud_show_prints_the_az_setup_and_never_the_secret(server: Server):
    out = server.cli("cloud", "show").stdout
    lines = out.strip().splitlines()
    assert f"az cloud register --name Strongroom --endpoint-resource-manager {server.url}/" in lines
    assert "az config set core.instance_discovery=false" in lines
    assert f"export REQUESTS_CA_BUNDLE={server.ca}" in lines
    login = next(line for line in lines if line.startswith("az login --service-principal"))
    assert server.admin["clientId"] in login and server.admin["tenantId"] in login
    assert server.admin["clientSecret"] not in out  # read from admin.json when the line runs

    config = json.loads(server.cli("cloud", "show", "--cloud-config").stdout)
    assert config["endpoints"]["resourceManager"] == server.url + "/"
    assert config["endpoints"]["activeDirectory"] == server.url
    assert config["suffixes"]["keyvaultDns"] == f".vault.localhost:{server.port}"
    assert server.cli("cloud", "show", "-o", "tsv", "--query", "name").stdout.strip() == "Strongroom"
