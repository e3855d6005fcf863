"""A TCP forwarder standing in for a load balancer in TCP mode (TLS passes through untouched).

Each accepted connection goes to the next live backend in turn (round robin), as
HAProxy's `mode tcp` + `balance roundrobin` would; a backend that refuses the
connection is skipped. It listens on 127.0.0.1 only and runs in daemon threads.
"""

from __future__ import annotations

import itertools
import socket
import threading


class TCPForwarder:
    def __init__(self, backends: list[int], port: int = 0) -> None:
        self.backends = list(backends)
        self._turn = itertools.count()
        self._sock = socket.create_server(("127.0.0.1", port))
        self.port = self._sock.getsockname()[1]
        self.connections: list[int] = []  # the backend port of each connection, in order
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        for _ in range(len(self.backends)):
            port = self.backends[next(self._turn) % len(self.backends)]
            try:
                upstream = socket.create_connection(("127.0.0.1", port), timeout=5)
            except OSError:
                continue
            upstream.settimeout(None)
            self.connections.append(port)
            threading.Thread(target=_pump, args=(upstream, client), daemon=True).start()
            _pump(client, upstream)
            return
        client.close()

    def close(self) -> None:
        self._closed = True
        self._sock.close()


def _pump(src: socket.socket, dst: socket.socket) -> None:
    try:
        while data := src.recv(65536):
            dst.sendall(data)
    except OSError:
        pass
    finally:
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()
