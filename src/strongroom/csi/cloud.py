"""Azure cloud environments: where a SecretProviderClass's vault and authority live.

The Azure provider resolves `cloudName` with go-autorest's environment table and,
for `AzureStackCloud`, reads the JSON environment file named by `cloudEnvFileName`
(go-autorest's `Environment` JSON: `name`, `activeDirectoryEndpoint`,
`keyVaultDNSSuffix`, `keyVaultEndpoint`, `resourceManagerEndpoint`, ...).

The provider's flags (`--vault-dns-suffix`, `--authority-host`) replace the
endpoints of the *default* cloud, so a SecretProviderClass written for AKS (no
`cloudName`, or `cloudName: AzurePublicCloud`) reaches the configured server
without an edit. The other named clouds keep their real endpoints.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path


class CloudError(ValueError):
    """The cloud name or environment file is not usable; the message says why."""


@dataclass(frozen=True)
class CloudEnvironment:
    name: str
    active_directory_endpoint: str  # the authority host, e.g. https://login.microsoftonline.com/
    key_vault_dns_suffix: str  # vault URL is https://<name>.<suffix>/
    key_vault_endpoint: str  # the token resource when the vault sends no challenge

    @property
    def authority_host(self) -> str:
        return self.active_directory_endpoint.rstrip("/")

    def vault_url(self, vault_name: str) -> str:
        return f"https://{vault_name}.{self.key_vault_dns_suffix.strip('.')}/"


PUBLIC = CloudEnvironment(
    "AzurePublicCloud", "https://login.microsoftonline.com/", "vault.azure.net", "https://vault.azure.net/"
)
US_GOVERNMENT = CloudEnvironment(
    "AzureUSGovernmentCloud", "https://login.microsoftonline.us/", "vault.usgovcloudapi.net", "https://vault.usgovcloudapi.net/"
)
CHINA = CloudEnvironment(
    "AzureChinaCloud", "https://login.chinacloudapi.cn/", "vault.azure.cn", "https://vault.azure.cn/"
)
GERMAN = CloudEnvironment(
    "AzureGermanCloud", "https://login.microsoftonline.de/", "vault.microsoftazure.de", "https://vault.microsoftazure.de/"
)
STACK = "AZURESTACKCLOUD"

KNOWN: dict[str, CloudEnvironment] = {env.name.upper(): env for env in (PUBLIC, US_GOVERNMENT, CHINA, GERMAN)}


def default_cloud(vault_dns_suffix: str | None = None, authority_host: str | None = None) -> CloudEnvironment:
    """The public cloud with the provider flags' endpoints in place of Azure's."""
    env = PUBLIC
    if vault_dns_suffix:
        suffix = vault_dns_suffix.strip().strip(".")
        env = replace(env, key_vault_dns_suffix=suffix, key_vault_endpoint=f"https://{suffix}/")
    if authority_host:
        env = replace(env, active_directory_endpoint=authority_host.strip().rstrip("/") + "/")
    return env


def load_environment_file(path: str) -> CloudEnvironment:
    """Read go-autorest's Environment JSON (what AZURE_ENVIRONMENT_FILEPATH points at).

    Errors never quote the file's content: the path comes from a SecretProviderClass.
    """
    try:
        raw = Path(path).read_text()
    except OSError as exc:
        raise CloudError(f"cannot read cloud environment file {path!r}: {exc.strerror}") from None
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise CloudError(f"cloud environment file {path!r} is not JSON (line {exc.lineno}, column {exc.colno})") from None
    if not isinstance(data, dict):
        raise CloudError(f"cloud environment file {path!r} must hold a JSON object")
    missing = [k for k in ("activeDirectoryEndpoint", "keyVaultDNSSuffix") if not isinstance(data.get(k), str) or not data[k]]
    if missing:
        raise CloudError(f"cloud environment file {path!r} lacks {', '.join(missing)}")
    suffix = data["keyVaultDNSSuffix"].strip(".")
    return CloudEnvironment(
        name=str(data.get("name") or "AzureStackCloud"),
        active_directory_endpoint=data["activeDirectoryEndpoint"],
        key_vault_dns_suffix=suffix,
        key_vault_endpoint=str(data.get("keyVaultEndpoint") or f"https://{suffix}/"),
    )


def resolve(cloud_name: str, env_file: str, default: CloudEnvironment) -> CloudEnvironment:
    """`cloudName` (+ `cloudEnvFileName`) -> endpoints, as the Azure provider resolves them."""
    if not cloud_name:
        return default
    key = cloud_name.upper()
    if key == STACK:
        if not env_file:
            raise CloudError(
                "cloudName AzureStackCloud needs cloudEnvFileName: the path of the Azure environment JSON file on the node"
            )
        return load_environment_file(env_file)
    if key == default.name.upper():
        return default
    if key in KNOWN:
        return KNOWN[key]
    names = ", ".join([e.name for e in KNOWN.values()] + ["AzureStackCloud"])
    raise CloudError(f"cloudName {cloud_name!r} is not valid; use one of {names}")
