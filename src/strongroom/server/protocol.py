"""uvicorn's HTTP protocol, sending each response in one write.

uvicorn writes a response's status line and headers as soon as the app sends
`http.response.start`, and the body in a second write. With TCP_NODELAY each
write is its own send() and its own TCP segment (and, over TLS, its own record):
two packets for every small Key Vault answer, twice the kernel's work on both
ends. `CoalescingTransport` holds the writes made during one pass of the event
loop and hands them to the real transport together at the end of that pass, so
a complete answer leaves in one piece and a streamed one (the change feed's
server-sent events) leaves without waiting for anything but the loop.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


class CoalescingTransport:
    """A transport whose writes within one loop pass become one write; everything else passes through."""

    __slots__ = ("_transport", "_loop", "_pending")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._pending: list[bytes] = []

    def write(self, data: bytes) -> None:
        if not data:
            return
        if not self._pending:
            self._loop.call_soon(self._flush)
        self._pending.append(bytes(data))

    def writelines(self, chunks: Any) -> None:
        for chunk in chunks:
            self.write(chunk)

    def _flush(self) -> None:
        if not self._pending:
            return
        data = self._pending[0] if len(self._pending) == 1 else b"".join(self._pending)
        self._pending = []
        if not self._transport.is_closing():
            self._transport.write(data)

    def close(self) -> None:
        self._flush()  # what was written is sent before the FIN (or TLS close_notify)
        self._transport.close()

    def write_eof(self) -> None:
        self._flush()
        self._transport.write_eof()

    def abort(self) -> None:
        self._pending = []
        self._transport.abort()

    def get_write_buffer_size(self) -> int:
        return self._transport.get_write_buffer_size() + sum(len(p) for p in self._pending)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class CoalescingProtocol(HttpToolsProtocol):
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        # Flow control keeps the real transport (pause/resume reading); responses go through the coalescer.
        self.transport = CoalescingTransport(transport, self.loop)  # type: ignore[assignment]
