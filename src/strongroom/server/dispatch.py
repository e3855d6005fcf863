"""The data plane's dispatcher: Starlette routes matched by path segments, without Starlette's stack.

Every Key Vault call goes through here, so its cost is paid on every hot read.
Starlette's router tries each route's regex in order and wraps the handler in
three ASGI layers (server errors, exceptions, request/response); on a hot read
that was about a sixth of the application's CPU. This table keeps the routes
as the API modules declare them (`starlette.routing.Route`, handlers taking a
`Request`) and Starlette's matching rules, and does the work directly:

- a route template is split into segments; `{param}` matches one non-empty
  segment (Starlette's default `[^/]+`), anything else matches literally;
- routes are tried in declaration order among those with the same segment count
  and first segment; the first whose path and method match wins; a path that
  matches only with another method answers 405, no match at all 404;
- an exception becomes a response through the same handler table the control
  plane uses (most specific class first), and an unexpected one is logged by type
  only and answered 500, never with a traceback.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from starlette.datastructures import QueryParams, State
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Message

from strongroom.errors import Plane, internal_error
from strongroom.server.errors import error_response

log = logging.getLogger("strongroom.server")

Handler = Callable[[Request], Awaitable[Response]]
ExceptionHandler = Callable[[Request, Exception], Awaitable[Response]]


@functools.lru_cache(maxsize=256)
def _parsed_query(raw: bytes) -> QueryParams:
    return QueryParams(raw)  # immutable, so one object can serve every request with this query


class _Compiled:
    __slots__ = ("segments", "params", "methods", "endpoint")

    def __init__(self, route: Route) -> None:
        template = route.path.split("/")[1:]
        is_param = [s.startswith("{") and s.endswith("}") for s in template]
        self.segments: tuple[str | None, ...] = tuple(None if p else s for s, p in zip(template, is_param, strict=True))
        self.params = tuple((i, s[1:-1]) for i, (s, p) in enumerate(zip(template, is_param, strict=True)) if p)
        for _, name in self.params:
            if ":" in name:
                raise ValueError(f"{route.path}: path converters are not supported here")
        self.methods = frozenset(route.methods or ())
        self.endpoint: Handler = route.endpoint

    def match(self, parts: list[str]) -> dict[str, str] | None:
        for want, got in zip(self.segments, parts, strict=True):  # the bucket holds routes of len(parts) segments
            if want is None:
                if not got:
                    return None
            elif want != got:
                return None
        return {name: parts[i] for i, name in self.params}


class RouteTable:
    """An ASGI app serving `routes`; `state` is what handlers see as `request.app.state`."""

    def __init__(self, routes: Sequence[Route], exception_handlers: dict[Any, ExceptionHandler]) -> None:
        self.state = State()
        self.exception_handlers = exception_handlers
        self.routes = list(routes)  # as declared, for whoever walks the table (tests/server/test_route_guards.py)
        self._buckets: dict[tuple[int, str], list[_Compiled]] = {}
        for route in routes:
            compiled = _Compiled(route)
            first = compiled.segments[0]
            if first is None:
                raise ValueError(f"{route.path}: the first segment must be literal")
            self._buckets.setdefault((len(compiled.segments), first), []).append(compiled)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":  # Key Vault speaks no WebSocket: refuse the upgrade (403), as Starlette did
            await send({"type": "websocket.close", "code": 1000})
            return
        scope["app"] = self
        request = Request(scope, receive)
        # Starlette parses the query on first use and keeps it in this attribute; most calls repeat one query string.
        request._query_params = _parsed_query(scope["query_string"])
        started = False

        async def tracked_send(message: Message) -> None:
            nonlocal started
            started = True
            await send(message)

        try:
            endpoint = self._resolve(scope)
            response = await endpoint(request)
            await response(scope, receive, tracked_send)
        except Exception as exc:
            if started:  # the answer is half sent (a stream): nothing sensible can follow it
                log.error("%s after the response started on %s %s", type(exc).__name__, scope["method"], scope["path"])
                return
            response = await self._handle(request, exc)
            await response(scope, receive, send)

    def _resolve(self, scope: dict[str, Any]) -> Handler:
        parts = scope["path"].split("/")[1:]
        method = scope["method"]
        candidates = self._buckets.get((len(parts), parts[0]), ())
        for route in candidates:
            if method in route.methods:  # Starlette adds HEAD wherever GET is
                params = route.match(parts)
                if params is not None:
                    scope["path_params"] = params
                    return route.endpoint
        wrong_method = any(route.match(parts) is not None for route in candidates)
        raise HTTPException(405 if wrong_method else 404)

    async def _handle(self, request: Request, exc: Exception) -> Response:
        for cls in type(exc).__mro__:
            handler = self.exception_handlers.get(cls)
            if handler is not None:
                try:
                    return await handler(request, exc)
                except Exception as inner:  # a handler that fails must not leave the client without an answer
                    exc = inner
                    break
        log.error("unhandled %s on %s %s", type(exc).__name__, request.method, request.url.path)
        return error_response(internal_error(), request.scope, Plane.KEYVAULT)
