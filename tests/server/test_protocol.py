"""One write per response: CoalescingTransport's contract, and a real answer arriving whole."""

from __future__ import annotations

import asyncio
import socket
import ssl

from strongroom.server.protocol import CoalescingTransport
from tests.conftest import Server


class RecordingTransport(asyncio.Transport):
    """Stands in for the socket transport: records what reaches it, in order."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[str, bytes]] = []
        self.closing = False

    def write(self, data) -> None:
        self.calls.append(("write", bytes(data)))

    def close(self) -> None:
        self.calls.append(("close", b""))
        self.closing = True

    def abort(self) -> None:
        self.calls.append(("abort", b""))
        self.closing = True

    def is_closing(self) -> bool:
        return self.closing

    def get_write_buffer_size(self) -> int:
        return 0


def test_writes_of_one_loop_pass_leave_together_and_close_sends_them_first():
    async def scenario() -> list[tuple[str, bytes]]:
        inner = RecordingTransport()
        t = CoalescingTransport(inner, asyncio.get_running_loop())
        t.write(b"HTTP/1.1 200 OK\r\n\r\n")
        t.write(b"")
        t.write(b'{"value":"x"}')
        assert inner.calls == [] and t.get_write_buffer_size() == 32
        await asyncio.sleep(0)  # the end of the pass
        t.write(b"late")
        t.close()  # flushes before closing
        t.write(b"after close")
        await asyncio.sleep(0)
        return inner.calls

    assert asyncio.run(scenario()) == [
        ("write", b'HTTP/1.1 200 OK\r\n\r\n{"value":"x"}'), ("write", b"late"), ("close", b""),
    ]


def test_abort_drops_what_was_not_sent():
    async def scenario() -> list[tuple[str, bytes]]:
        inner = RecordingTransport()
        t = CoalescingTransport(inner, asyncio.get_running_loop())
        t.write(b"unsent")
        t.abort()
        await asyncio.sleep(0)
        return inner.calls

    assert asyncio.run(scenario()) == [("abort", b"")]


def test_a_whole_answer_arrives_in_one_read(server: Server):
    ctx = ssl.create_default_context(cafile=server.ca)
    with socket.create_connection(("127.0.0.1", server.port)) as raw, ctx.wrap_socket(raw, server_hostname="localhost") as s:
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
        first = s.recv(65536)  # one TLS record: status line, headers and body together
    assert first.startswith(b"HTTP/1.1 200") and first.endswith(b'{"status":"ok"}')
