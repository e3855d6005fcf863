"""What one connection or request may cost the server, read once per worker process.

The HTTP protocol (server/protocol.py) enforces the connection and body limits before
the application sees a request; the event loop (server/loop.py) bounds the TLS
handshake. The values come from `Settings` (flags of `strongroom up`, see
docs/security.md "Resource limits"); without STRONGROOM_SETTINGS in the
environment (a server started by other means) the defaults apply.

Bodies are capped per plane: Key Vault's data plane carries small documents (a
secret value is at most 25 KiB, JSON-escaped up to six times that; a certificate
import's base64 PFX is larger), the control plane (token form posts, ARM, Graph)
somewhat larger ones (a vault with many access policies).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass

from strongroom.settings import Settings

DATA_PLANE_PREFIXES = (
    b"/secrets", b"/deletedsecrets", b"/keys", b"/deletedkeys", b"/rng", b"/certificates", b"/deletedcertificates",
)

# Set in a request's ASGI scope (to the cap) when the protocol cut its chunked body off, for the audit record.
BODY_TOO_LARGE = "strongroom.body_too_large"


@dataclass(frozen=True)
class Limits:
    max_body_control: int
    max_body_data: int
    tls_handshake_timeout: float
    request_read_timeout: float
    keep_alive_timeout: float
    max_connections: int
    vault_suffix: bytes  # b".vault.<dns suffix>": a Host ending so is a vault's data plane
    default_vault: bool  # localhost also serves the data plane's paths

    @classmethod
    def from_settings(cls, settings: Settings) -> Limits:
        return cls(
            max_body_control=settings.max_body_control,
            max_body_data=settings.max_body_data,
            tls_handshake_timeout=settings.tls_handshake_timeout,
            request_read_timeout=settings.request_read_timeout,
            keep_alive_timeout=settings.keep_alive_timeout,
            max_connections=settings.max_connections,
            vault_suffix=f".vault.{settings.dns_suffix}".lower().encode(),
            default_vault=bool(settings.default_vault),
        )

    def is_data_plane(self, host: bytes, target: bytes) -> bool:
        """Whether a request goes to a vault (mirrors app.HostRouter.vault_name, on raw bytes)."""
        if host.startswith(b"["):
            hostname = host[: host.find(b"]") + 1]
        else:
            hostname = host.rsplit(b":", 1)[0]
        hostname = hostname.lower().rstrip(b".")
        if hostname.endswith(self.vault_suffix):
            return True
        return self.default_vault and hostname in (b"localhost", b"127.0.0.1") and target.startswith(DATA_PLANE_PREFIXES)

    def max_body(self, host: bytes, target: bytes) -> int:
        return self.max_body_data if self.is_data_plane(host, target) else self.max_body_control


_current: Limits | None = None


def current() -> Limits:
    """This process's limits (cached: settings do not change while a worker runs)."""
    global _current
    if _current is None:
        raw = os.environ.get("STRONGROOM_SETTINGS")
        settings = Settings.from_env() if raw and json.loads(raw) else Settings()
        _current = Limits.from_settings(settings)
    return _current
