"""The change feed over HTTP: `GET https://<vault>.vault.<suffix>:<port>/strongroom/events` (Server-Sent Events).

Authenticated like the data plane (a Bearer token for the vault resource; no
token gets the same 401 challenge). Each SSE message is one Event Grid event
(see events/schema.py) with `id:` = its sequence number in the vault's feed;
only events of objects the caller may read the metadata of are sent (see
events/visibility.py). Where the stream starts:

- `Last-Event-ID: N` (what EventSource sends when it reconnects): after N;
- otherwise `?from=N`: at N (N >= 1; `from=1` replays the whole feed);
- otherwise: after the newest event, i.e. only what happens from now on.

The `Strongroom-Event-Sequence` response header says after which sequence
number the stream starts, so a client can subscribe, then read the current
state, and miss nothing in between. Optional filters: `eventType` and `subject`
(both repeatable; subject matches the object name, case-insensitively).

A comment line is sent every 15 s so idle connections stay open and dead ones
are noticed; the stream ends when the caller's token expires (the client
reconnects with a fresh one and `Last-Event-ID`). Subscribing is audited as
operation `EventSubscribe`.
"""

from __future__ import annotations

import asyncio
import signal
import threading
import time
from collections.abc import AsyncIterator

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from strongroom.audit import facts as audit
from strongroom.authz import Caller
from strongroom.errors import BadRequest
from strongroom.events.feed import decode, last_sequence, stream_name
from strongroom.events.schema import all_event_types, event_type, to_event_grid
from strongroom.events.visibility import Visibility
from strongroom.events.watch import close_all
from strongroom.keyvault.vaults import Vault
from strongroom.server import guards
from strongroom.server.guards import route, vault
from strongroom.util import jsonbytes
from strongroom.util.sse import EVENTS_PATH, HEARTBEAT, MEDIA_TYPE, SEQUENCE_HEADER

BATCH = 256
RETRY_MS = 1000  # EventSource's reconnect delay


def _sequence(raw: str, what: str, minimum: int) -> int:
    try:
        value = int(raw.strip())
    except ValueError:
        raise BadRequest("BadParameter", f"{what} must be a whole number, got '{raw[:40]}'.") from None
    if value < minimum:
        raise BadRequest("BadParameter", f"{what} must be at least {minimum}.")
    return value


def start_after(request: Request, newest: int) -> int:
    """The sequence number after which this subscription starts (see the module docstring)."""
    last_id = request.headers.get("last-event-id")
    if last_id is not None and last_id.strip():
        return _sequence(last_id, "Last-Event-ID", 0)
    start = request.query_params.get("from")
    if start is not None:
        return max(_sequence(start, "Query parameter 'from'", 0) - 1, 0)
    return newest


def _filters(request: Request) -> tuple[set[str], set[str]]:
    types = set(request.query_params.getlist("eventType"))
    unknown = sorted(types - set(all_event_types()))
    if unknown:
        raise BadRequest("BadParameter", f"Unknown eventType '{unknown[0]}'. Known types: {', '.join(all_event_types())}.")
    return types, {s.lower() for s in request.query_params.getlist("subject")}


def _message(seq: int, event: dict) -> bytes:
    return b"id: %d\ndata: %s\n\n" % (seq, jsonbytes.dumps(event))


async def subscribe(request: Request) -> Response:
    rt = guards.runtime(request)
    vault: Vault = request.scope["strongroom.vault"]
    host = request.headers.get("host", request.url.netloc)
    vault_url = f"{request.url.scheme}://{host}"
    audit.refine(request.scope, object_url=vault_url + EVENTS_PATH)  # the guard recorded the operation and the caller
    claims = guards.claims(request)
    types, subjects = _filters(request)
    stream = stream_name(vault)
    position = start_after(request, last_sequence(rt.store, vault))
    visibility = Visibility(rt.authorizer, Caller.from_claims(claims))
    watcher = rt.feed_watcher
    assert watcher is not None  # built by the runtime of every serving process
    expires = float(claims.get("exp") or 0)

    async def events() -> AsyncIterator[bytes]:
        nonlocal position
        yield f"retry: {RETRY_MS}\n\n".encode()
        while time.time() < expires and not watcher.closing:  # closing: the server is shutting down
            rows = rt.store.read_stream(stream, position, BATCH)
            if rows:
                current = rt.vaults.get(vault.name)  # access policies and deletion, fresh for each batch
                if current is None:
                    return
                visibility.new_batch()
                out = []
                for seq, raw in rows:
                    position = seq
                    entry = decode(seq, raw)
                    if types and event_type(entry.object_type, entry.change) not in types:
                        continue
                    if subjects and entry.name.lower() not in subjects:
                        continue
                    if visibility.may_see(current, entry):
                        out.append(_message(seq, to_event_grid(entry, vault_url)))
                if out:
                    yield b"".join(out)
                if len(rows) == BATCH:
                    continue
            wait = min(HEARTBEAT, expires - time.time())
            if wait > 0 and not await watcher.wait_beyond(stream, position, wait):
                yield b": keepalive\n\n"

    return StreamingResponse(
        events(),
        media_type=f"{MEDIA_TYPE}; charset=utf-8",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no", SEQUENCE_HEADER: str(position)},
    )


def end_streams_on_exit_signals() -> None:
    """On SIGTERM/SIGINT, end the open event streams at once, then let the server's own handler run.

    uvicorn waits for in-flight responses before it stops, and an event stream
    never completes by itself, so without this a connected agent would hold
    every shutdown to its 30 s timeout. Call from the app's startup, on the
    event loop: uvicorn has installed its handlers by then (in every worker),
    and restores them itself when it stops.
    """
    if threading.current_thread() is not threading.main_thread():
        return
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        previous = signal.getsignal(sig)

        def handler(signum: int, frame: object, previous: object = previous) -> None:
            loop.call_soon_threadsafe(close_all)
            if callable(previous):
                previous(signum, frame)

        signal.signal(sig, handler)


routes = [route(EVENTS_PATH, subscribe, ["GET"], vault("EventSubscribe"))]
