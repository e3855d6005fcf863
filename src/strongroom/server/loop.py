"""The worker's event loop: uvicorn's choice (uvloop when installed), with a TLS handshake deadline.

uvicorn passes no `ssl_handshake_timeout` to `create_server`, so a connection that
never completes its handshake is held for the loop's default of 60 s. This loop
fills in the configured deadline (server/limits.py) for every server it creates.
`uvicorn.Config(loop="strongroom.server.loop:new_event_loop")` names it (a custom
loop is a zero-argument factory to uvicorn).
"""

from __future__ import annotations

import asyncio
from typing import Any

from strongroom.server import limits


def _with_handshake_deadline(base: type) -> type:
    class Loop(base):
        async def create_server(self, *args: Any, **kwargs: Any) -> Any:
            if kwargs.get("ssl") is not None and kwargs.get("ssl_handshake_timeout") is None:
                kwargs["ssl_handshake_timeout"] = limits.current().tls_handshake_timeout
            return await super().create_server(*args, **kwargs)

    return Loop


def _loop_class() -> type:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop comes with uvicorn[standard]
        return _with_handshake_deadline(asyncio.SelectorEventLoop)
    return _with_handshake_deadline(uvloop.Loop)


def new_event_loop() -> asyncio.AbstractEventLoop:
    return _loop_class()()
