"""The negotiated TLS version in each request's ASGI scope, for the audit record's tlsVersion.

uvicorn does not fill ASGI's TLS extension (`scope["extensions"]["tls"]`), so this
protocol does: the version is read once per connection, after the handshake,
from the SSL object. Azure records it as "TLS1_2"/"TLS1_3"; the audit layer turns
the extension's number into that.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

_VERSIONS = {"TLSv1": 0x0301, "TLSv1.1": 0x0302, "TLSv1.2": 0x0303, "TLSv1.3": 0x0304}


class TLSScopeProtocol(HttpToolsProtocol):
    _tls: dict[str, Any] | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        ssl_object = transport.get_extra_info("ssl_object")
        version = _VERSIONS.get(ssl_object.version() or "") if ssl_object is not None else None
        if version is not None:
            self._tls = {
                "server_cert": None,
                "client_cert_chain": [],
                "client_cert_name": None,
                "client_cert_error": None,
                "tls_version": version,
                "cipher_suite": None,
            }

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._tls is not None:
            self.scope["extensions"] = {"tls": self._tls}  # type: ignore[typeddict-unknown-key]
