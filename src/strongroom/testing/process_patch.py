"""Make this process reach a test instance as clients reach Azure: vault host names resolve, the CA is trusted.

Nothing here runs at import. `ProcessPatch.apply()` changes, for this process only:
- `socket.getaddrinfo`: names ending in `.vault.<suffix>` resolve to the server's
  address (what an /etc/hosts line would do); every other name goes to the resolver
  that was in place before, so other patches (a project's own conftest) keep working;
- `REQUESTS_CA_BUNDLE` and `SSL_CERT_FILE`: a bundle of the usual public CAs (certifi's,
  else the system's) plus the instance's CA. requests (the sync Azure SDK transport)
  reads the first on every request; OpenSSL reads the second whenever an SSL context
  loads its default certificates;
- aiohttp (the async SDK transport) builds one verified SSL context when it is first
  imported; if it already was, that context is swapped for one built from the bundle.
`undo()` puts every one of them back.
"""

from __future__ import annotations

import os
import socket
import ssl
from collections.abc import Callable
from pathlib import Path
from typing import Any

from strongroom.util.cabundle import write_combined_bundle

CA_ENV_VARS = ("REQUESTS_CA_BUNDLE", "SSL_CERT_FILE")


class _Resolver:
    """A getaddrinfo that maps `*.<domain>` to one address and hands every other name to `fallback`."""

    def __init__(self, domain: str, address: str, fallback: Callable[..., Any]) -> None:
        self.domain = domain.lower().strip(".")
        self.address = address
        self.fallback = fallback
        self.active = True

    def matches(self, host: object) -> bool:
        if isinstance(host, bytes):
            host = host.decode("ascii", "replace")
        if not isinstance(host, str):
            return False
        return host.lower().rstrip(".").endswith("." + self.domain)

    def __call__(self, host: Any, *args: Any, **kwargs: Any) -> Any:
        if self.active and self.matches(host):
            host = self.address
        return self.fallback(host, *args, **kwargs)


class ProcessPatch:
    def __init__(self, vault_domain: str, address: str, ca_file: Path, bundle_path: Path) -> None:
        self.vault_domain = vault_domain
        self.address = address
        self.ca_file = ca_file
        self.bundle_path = bundle_path
        self._resolver: _Resolver | None = None
        self._saved_env: dict[str, str | None] = {}
        self._saved_aiohttp_context: Any = None

    def apply(self) -> None:
        if self._resolver is not None:
            return
        self._resolver = _Resolver(self.vault_domain, self.address, socket.getaddrinfo)
        socket.getaddrinfo = self._resolver
        bundle = str(write_combined_bundle(self.ca_file, self.bundle_path))
        for var in CA_ENV_VARS:
            self._saved_env[var] = os.environ.get(var)
            os.environ[var] = bundle
        self._swap_aiohttp_context()

    def _swap_aiohttp_context(self) -> None:
        import sys

        connector: Any = sys.modules.get("aiohttp.connector")  # a private attribute of it, hence Any
        if connector is None or not hasattr(connector, "_SSL_CONTEXT_VERIFIED"):
            return  # not imported yet: when it is, its context reads SSL_CERT_FILE
        self._saved_aiohttp_context = connector._SSL_CONTEXT_VERIFIED
        connector._SSL_CONTEXT_VERIFIED = ssl.create_default_context(cafile=str(self.bundle_path))

    def undo(self) -> None:
        import sys

        if self._resolver is None:
            return
        self._resolver.active = False  # inert even if someone wrapped it after us
        if socket.getaddrinfo is self._resolver:
            socket.getaddrinfo = self._resolver.fallback
        self._resolver = None
        for var, value in self._saved_env.items():
            if value is None:
                os.environ.pop(var, None)
            else:
                os.environ[var] = value
        self._saved_env = {}
        if self._saved_aiohttp_context is not None:
            connector: Any = sys.modules.get("aiohttp.connector")
            if connector is not None:
                connector._SSL_CONTEXT_VERIFIED = self._saved_aiohttp_context
            self._saved_aiohttp_context = None
