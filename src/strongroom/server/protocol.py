"""uvicorn's HTTP protocol, sending each response in one write.

uvicorn writes a response's status line and headers as soon as the app sends
`http.response.start`, and the body in a second write. With TCP_NODELAY each
write is its own send() and its own TCP segment (and, over TLS, its own record):
two packets for every small Key Vault answer, twice the kernel's work on both
ends. `CoalescingTransport` holds the writes made during one pass of the event
loop and hands them to the real transport together at the end of that pass, so
a complete answer leaves in one piece and a streamed one (the change feed's
server-sent events) leaves without waiting for anything but the loop.

The protocol also enforces what a connection may cost (server/limits.py), before
the application sees anything, at the cost of a few attribute checks per request:

- a cap on open connections per worker: past it a new connection is closed at once;
- an idle connection (no request yet, or between requests) is closed after the
  keep-alive timeout: uvicorn arms that timer only after a first response;
- a request must arrive whole (headers and body) within the request-read timeout
  from its first byte: uvicorn has no header timeout, so a client sending one
  header line a second (slowloris) would hold its connection for ever;
- a body larger than its plane's cap is answered 413 in that plane's error shape
  and the connection closed, without reading the rest: a Content-Length over the
  cap before any body byte is read, a chunked body as soon as the count passes it.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from strongroom.server import limits as limits_module
from strongroom.server.limits import BODY_TOO_LARGE


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


def _too_large_response(data_plane: bool, url: bytes, limit: int) -> bytes:
    """413 in the error shape of the plane the request was for (routing has not run: the vault host or the path says)."""
    from strongroom.errors import Plane, TooLarge, render
    from strongroom.server.errors import path_plane

    plane = Plane.KEYVAULT if data_plane else path_plane(url.split(b"?", 1)[0].decode("latin-1"))
    body = render(TooLarge(None, f"The request body is larger than the limit of {limit} bytes."), plane).body
    payload = json.dumps(body, separators=(",", ":")).encode()
    return (
        b"HTTP/1.1 413 Request Entity Too Large\r\n"
        b"content-type: application/json; charset=utf-8\r\n"
        b"content-length: " + str(len(payload)).encode() + b"\r\n"
        b"connection: close\r\n\r\n" + payload
    )


class CoalescingProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with coalesced writes and the connection and body limits."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.limits = limits_module.current()
        self._read_timer: asyncio.TimerHandle | None = None
        self._read_started: float | None = None  # loop time the request being read began; None between requests
        self._body_left = 0  # bytes the current request's body may still have
        self._refused = False  # a 413 was sent or the connection dropped: the rest of the input is ignored

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        # Flow control keeps the real transport (pause/resume reading); responses go through the coalescer.
        self.transport = CoalescingTransport(transport, self.loop)  # type: ignore[assignment]
        if len(self.connections) > self.limits.max_connections:
            self._refused = True
            transport.abort()  # no answer: an answer is work, and a flood is what this stops
            return
        # Idle before the first request counts as keep-alive idle, as it does between requests.
        self.timeout_keep_alive_task = self.loop.call_later(self.timeout_keep_alive, self.timeout_keep_alive_handler)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._read_timer is not None:
            self._read_timer.cancel()
            self._read_timer = None
        super().connection_lost(exc)

    # -- request-read deadline: one timer per connection, re-armed lazily ------------------

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._read_started = self.loop.time()
        if self._read_timer is None:
            self._read_timer = self.loop.call_later(self.limits.request_read_timeout, self._read_deadline)

    def _read_deadline(self) -> None:
        self._read_timer = None
        if self._read_started is None or self.transport.is_closing():
            return  # no request is being read: the keep-alive timer watches idle connections
        overdue = self.loop.time() - self._read_started - self.limits.request_read_timeout
        if overdue >= 0:
            self._refused = True
            self.transport.abort()  # a client this slow gets no answer, and no TLS close_notify wait
        else:  # the request being read began after the timer was armed
            self._read_timer = self.loop.call_later(-overdue, self._read_deadline)

    # -- body caps --------------------------------------------------------------------------

    def on_headers_complete(self) -> None:
        if self._refused:
            return
        length = host = None
        chunked = False
        for name, value in self.headers:
            if name == b"content-length":
                length = value
            elif name == b"host":
                host = value
            elif name == b"transfer-encoding":
                chunked = True
        if length is None and not chunked:  # no body (every GET): nothing to count
            super().on_headers_complete()
            return
        limit = self.limits.max_body(host or b"", self.url)
        self._body_left = limit
        if length is not None and length.isdigit() and int(length) > limit:
            self._refuse_body(host or b"", limit)
            return
        super().on_headers_complete()

    def on_body(self, body: bytes) -> None:
        if self._refused:
            return
        self._body_left -= len(body)
        if self._body_left < 0:
            host = next((v for k, v in self.headers if k == b"host"), b"")
            self._refuse_body(host, self.limits.max_body(host, self.url))
            return
        super().on_body(body)

    def on_message_complete(self) -> None:
        self._read_started = None
        if self._refused:
            return
        super().on_message_complete()

    def _refuse_body(self, host: bytes, limit: int) -> None:
        """Answer 413 now (unless the application already answered) and close; the rest is never read."""
        self._refused = True
        self._read_started = None
        cycle = self.cycle
        answering = False  # whether another answer is (or may be) on the wire already
        if cycle is not None and not cycle.response_complete:
            if cycle.scope is self.scope:  # a chunked body cut off while the application reads it
                answering = cycle.response_started
                cycle.scope[BODY_TOO_LARGE] = limit  # type: ignore[literal-required]
                cycle.disconnected = True  # the application's receive() sees the client gone; its sends are dropped
                cycle.message_event.set()
            else:  # a pipelined request behind one still being answered: a 413 now would cut into that answer
                answering = True
        if not answering:
            self.transport.write(_too_large_response(self.limits.is_data_plane(host, self.url), self.url, limit))
        self.transport.close()
        # A TLS close waits for the peer's close_notify, reading (and dropping) what it still sends: not for long.
        self.loop.call_later(1.0, self.transport.abort)

    def timeout_keep_alive_handler(self) -> None:
        """Close an idle connection; abort it when nothing is unsent, so an idle TLS peer cannot hold it 30 s more."""
        if self.transport.is_closing():
            return
        if self.transport.get_write_buffer_size() == 0:
            self.transport.abort()
        else:
            self.transport.close()
