"""The server's HTTP protocol (`protocol.CoalescingProtocol`) with two TLS fixes, used for every connection of a TLS server.

1. The negotiated TLS version in each request's ASGI scope, for the audit record's
   tlsVersion. uvicorn does not fill ASGI's TLS extension (`scope["extensions"]["tls"]`),
   so this protocol does: the version is read once per connection, after the
   handshake, from the SSL object. Azure records it as "TLS1_2"/"TLS1_3"; the audit
   layer turns the extension's number into that.
2. Idle keep-alive connections do not hold up a shutdown. uvicorn closes idle
   connections on shutdown, but a TLS close waits for the peer's close_notify
   (30 s) and clients idling on a pooled connection never send it. Being the
   protocol class, this reaches every worker process, which a Server subclass
   would not (uvicorn spawns workers and builds their Server itself).
"""

from __future__ import annotations

import asyncio
from typing import Any

from strongroom.server.protocol import CoalescingProtocol

_VERSIONS = {"TLSv1": 0x0301, "TLSv1.1": 0x0302, "TLSv1.2": 0x0303, "TLSv1.3": 0x0304}


class TLSScopeProtocol(CoalescingProtocol):
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

    def shutdown(self) -> None:
        idle = self.cycle is None or self.cycle.response_complete
        if idle and self.transport.get_write_buffer_size() == 0:
            self.transport.abort()  # nothing in flight and nothing unsent: no close_notify wait
        else:
            super().shutdown()  # in-flight requests finish first

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._tls is not None:
            self.scope["extensions"] = {"tls": self._tls}  # type: ignore[dict-item]  # uvicorn types extensions as dict[object, object]
