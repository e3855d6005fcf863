"""ARM's cloud metadata document: `GET /metadata/endpoints?api-version=…`.

`az cloud register --name Strongroom --endpoint-resource-manager https://localhost:8443`
reads it (api-version 2022-09-01, at `//metadata/endpoints` when the URL ends in
`/`) and takes from it every endpoint az needs: the login endpoint (this
instance is its own authority), the ARM token audience, Microsoft Graph (this
instance again) and the Key Vault DNS suffix with its port. It is public, as
Azure's is: it holds nothing but addresses clients already know, and, like
OIDC discovery, it is not audited (no caller, no change).
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from strongroom.errors import BadRequest
from strongroom.server.guards import public, route, runtime
from strongroom.server.http import JSON
from strongroom.settings import Settings

CLOUD_NAME = "Strongroom"
# ARM answers 2022-09-01 and later with one cloud object, 2019-05-01 and 2020-06-01 with a list of clouds.
SINGLE_CLOUD_VERSIONS = ("2022-09-01",)
LIST_VERSIONS = ("2019-05-01", "2020-06-01")
# The ARM token audience az asks for; Strongroom's management endpoints accept it (server/runtime.py).
MANAGEMENT_AUDIENCE = "https://management.core.windows.net/"


def graph_resource(settings: Settings) -> str:
    """Microsoft Graph's resource id on this instance: the instance itself (its Graph slice lives at /v1.0)."""
    return settings.authority + "/"


def keyvault_dns_suffix(settings: Settings) -> str:
    """`vault.localhost:8443`: az appends it to a vault name, so it carries the port."""
    return settings.vault_url("x").split("://", 1)[1][len("x."):]


def cloud_metadata(settings: Settings) -> dict[str, Any]:
    authority = settings.authority
    return {
        "name": CLOUD_NAME,
        "portal": authority,
        "resourceManager": authority + "/",
        "microsoftGraphResourceId": graph_resource(settings),
        "authentication": {
            "loginEndpoint": authority,
            "audiences": [MANAGEMENT_AUDIENCE, "https://management.azure.com/"],
            "tenant": "common",
            "identityProvider": "AAD",
        },
        "suffixes": {"keyVaultDns": keyvault_dns_suffix(settings)},
    }


async def metadata_endpoints(request: Request) -> Response:
    version = request.query_params.get("api-version")
    if not version:
        raise BadRequest(
            "MissingApiVersionParameter", "The api-version query parameter (?api-version=) is required for all requests."
        )
    doc = cloud_metadata(runtime(request).settings)
    if version in SINGLE_CLOUD_VERSIONS:
        return JSON(doc)
    if version in LIST_VERSIONS:
        return JSON([doc])
    raise BadRequest(
        "InvalidApiVersionParameter",
        f"The api-version '{version[:64]}' is invalid. The supported versions are "
        f"'{','.join(LIST_VERSIONS + SINGLE_CLOUD_VERSIONS)}'.",
    )


routes = [
    route("/metadata/endpoints", metadata_endpoints, ["GET"], public()),
    route("//metadata/endpoints", metadata_endpoints, ["GET"], public()),
]
