"""Instance settings shared by the server, its workers and the CLI."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

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
    # The address clients use, https://HOST[:PORT] (a load balancer's, for replicas); None: this
    # process's own, https://localhost:<port>. `port` stays where the process listens.
    public_url: str | None = None
    # A certificate (and its key) from the user's own CA, served instead of the state dir's.
    tls_cert_file: str | None = None
    tls_key_file: str | None = None

    @property
    def scheme(self) -> str:
        return "http" if self.insecure_http else "https"

    @property
    def public_host(self) -> str:
        return urlsplit(self.public_url).hostname or "localhost" if self.public_url else "localhost"

    @property
    def public_port(self) -> int:
        if not self.public_url:
            return self.port
        return urlsplit(self.public_url).port or (80 if self.insecure_http else 443)

    def _port_suffix(self) -> str:
        default = 80 if self.insecure_http else 443
        return "" if self.public_port == default else f":{self.public_port}"

    @property
    def authority(self) -> str:
        """The authority host clients put in AZURE_AUTHORITY_HOST."""
        return f"{self.scheme}://{self.public_host}{self._port_suffix()}"

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

    @staticmethod
    def check_public_url(url: str, insecure_http: bool = False) -> str:
        """`url` as https://HOST[:PORT] (lower-case, no slash); ValueError saying what is wrong otherwise."""
        scheme = "http" if insecure_http else "https"
        parts = urlsplit(url.strip())
        try:
            port = parts.port
        except ValueError:
            raise ValueError(f"{url!r} has an invalid port") from None
        if parts.scheme != scheme or not parts.hostname or parts.path.strip("/") or parts.query or parts.fragment \
                or parts.username or parts.password:
            raise ValueError(f"expected {scheme}://HOST[:PORT] with nothing after it, got {url!r}")
        host = parts.hostname.lower().rstrip(".")
        return f"{scheme}://{host}" + (f":{port}" if port else "")

    @classmethod
    def from_env(cls) -> Settings:
        data = json.loads(os.environ["STRONGROOM_SETTINGS"])
        data["state_dir"] = Path(data["state_dir"])
        return cls(**data)
