"""Instance settings shared by the server, its workers and the CLI."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

DEFAULT_PORT = 8443


@dataclass
class Settings:
    state_dir: Path = Path(".strongroom")
    bind: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    storage_url: str | None = None
    workers: int = 1
    dns_suffix: str = "localhost"
    insecure_http: bool = False
    default_vault: str | None = None
    log_level: str = "info"
    # Per-vault request limits (server/throttle.py); off only for benchmarks.
    throttle: bool = True
    # Dev mode (`up --dev`): the time-shift endpoints and a lifecycle pass every second.
    dev: bool = False
    # CA files trusted (besides the system CAs and this instance's own CA) when fetching the
    # OIDC metadata of federated issuers, e.g. an on-prem cluster's private CA.
    issuer_ca_files: list[str] = field(default_factory=list)
    # Resource limits (server/limits.py, docs/security.md "Resource limits"): what one
    # connection or request may cost before it is refused.
    max_body_control: int = 1024 * 1024
    max_body_data: int = 256 * 1024
    tls_handshake_timeout: float = 10.0
    request_read_timeout: float = 10.0
    keep_alive_timeout: float = 5.0
    max_connections: int = 1000
    unauthenticated_per_10s: int = 300  # failed authentications per source address (server/throttle.py)
    # Domains the private CA (the `Strongroom` certificate issuer) may issue for (keyvault/ca_names.py);
    # empty: it signs no names. `up --ca-allowed-domains`.
    ca_allowed_domains: list[str] = field(default_factory=list)

    @property
    def scheme(self) -> str:
        return "http" if self.insecure_http else "https"

    def _port_suffix(self) -> str:
        default = 80 if self.insecure_http else 443
        return "" if self.port == default else f":{self.port}"

    @property
    def authority(self) -> str:
        """The authority host clients put in AZURE_AUTHORITY_HOST."""
        return f"{self.scheme}://localhost{self._port_suffix()}"

    @property
    def vault_resource(self) -> str:
        """The token audience of this instance's vaults.

        It carries the port when the port is not 443: the SDK accepts a challenge
        only when the request's host:port ends with "." + the resource's host:port.
        """
        return f"https://vault.{self.dns_suffix}{self._port_suffix()}"

    def vault_url(self, name: str) -> str:
        return f"{self.scheme}://{name.lower()}.vault.{self.dns_suffix}{self._port_suffix()}"

    @property
    def storage(self) -> str:
        return self.storage_url or f"sqlite:///{(self.state_dir / 'strongroom.db').resolve()}"

    def to_env(self) -> str:
        data = asdict(self)
        data["state_dir"] = str(self.state_dir.resolve())
        return json.dumps(data)

    @classmethod
    def from_env(cls) -> "Settings":
        data = json.loads(os.environ["STRONGROOM_SETTINGS"])
        data["state_dir"] = Path(data["state_dir"])
        return cls(**data)
