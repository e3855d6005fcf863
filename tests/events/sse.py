"""A small Server-Sent Events reader for the tests: a subscription on its own thread, messages with arrival times."""

from __future__ import annotations

import json
import ssl
import threading
import time
from dataclasses import dataclass, field

import httpx


@dataclass
class Message:
    id: int
    event: dict
    received: float  # time.monotonic()


@dataclass
class Subscription:
    url: str
    token: str
    ca: str
    params: list[tuple[str, str]] = field(default_factory=list)
    last_event_id: int | None = None
    messages: list[Message] = field(default_factory=list)
    raw: bytearray = field(default_factory=bytearray)
    status: int | None = None
    headers: dict[str, str] = field(default_factory=dict)
    _ready: threading.Event = field(default_factory=threading.Event)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> Subscription:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        assert self._ready.wait(10), "the subscription did not connect"
        return self

    def _run(self) -> None:
        headers = {"Authorization": f"Bearer {self.token}", "Accept": "text/event-stream"}
        if self.last_event_id is not None:
            headers["Last-Event-ID"] = str(self.last_event_id)
        with httpx.Client(verify=ssl.create_default_context(cafile=self.ca), timeout=httpx.Timeout(10, read=60)) as c:
            with c.stream("GET", self.url, params=self.params, headers=headers) as r:
                self.status, self.headers = r.status_code, dict(r.headers)
                self._ready.set()
                data, ident = [], None
                for line in r.iter_lines():
                    self.raw += line.encode() + b"\n"
                    if self._stop.is_set():
                        return
                    if line == "":
                        if data:
                            self.messages.append(Message(int(ident), json.loads("\n".join(data)), time.monotonic()))
                        data, ident = [], None
                    elif line.startswith("data: "):
                        data.append(line[6:])
                    elif line.startswith("id: "):
                        ident = line[4:]

    def wait_for(self, count: int, timeout: float = 10.0) -> list[Message]:
        deadline = time.monotonic() + timeout
        while len(self.messages) < count and time.monotonic() < deadline:
            time.sleep(0.005)
        return list(self.messages)

    def close(self) -> None:
        self._stop.set()
