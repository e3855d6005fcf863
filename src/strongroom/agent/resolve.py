"""`*.localhost` names are loopback (RFC 6761 section 6.3), in the agent's own process.

Vaults of a local server are `https://kv1.vault.localhost:8443`. curl, browsers and
systemd-resolved answer such names with the loopback address by themselves, but
glibc reading a plain /etc/hosts does not, and /etc/hosts has no wildcards. The
RFC asks resolver libraries to treat these names as loopback, so the agent
commands (`mount`, `run`) do that for their own lookups: a name ending in
`.localhost` is looked up as `localhost`. Nothing else changes.
"""

from __future__ import annotations

import socket

_original = socket.getaddrinfo


def _getaddrinfo(host, *args, **kwargs):
    if isinstance(host, (str, bytes)):
        name = host.decode() if isinstance(host, bytes) else host
        if name.lower().rstrip(".").endswith(".localhost"):
            host = "localhost"
    return _original(host, *args, **kwargs)


def resolve_localhost_names() -> None:
    """Install the RFC 6761 rule for this process (idempotent)."""
    if socket.getaddrinfo is not _getaddrinfo:
        socket.getaddrinfo = _getaddrinfo
