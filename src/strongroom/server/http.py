"""HTTP plumbing shared by the API modules: JSON bodies, responses, request ids."""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import Response

from strongroom.errors import BadRequest, TooLarge
from strongroom.identity.errors import EntraError
from strongroom.server.bodies import InvalidBody, decode_json
from strongroom.util import jsonbytes


class JSON(Response):
    """Compact JSON, as Azure sends it."""

    media_type = "application/json; charset=utf-8"

    def render(self, content: Any) -> bytes:
        return jsonbytes.dumps(content)


# An OAuth2 form has about ten fields.
MAX_FORM_FIELDS = 64


async def json_body(request: Request, *, max_bytes: int | None = None, optional: bool = False) -> Any:
    """The request's JSON body, strictly decoded (bodies.decode_json); a bad one is InvalidBody, a 400.

    `max_bytes`: a route's own cap, below the protocol's per-plane one (`limits.py`): a body past it
    is a 413, refused as soon as its Content-Length or its bytes say so. `optional`: an empty body
    is None rather than a 400.
    """
    raw = await request.body() if max_bytes is None else await _bounded(request, max_bytes)
    if optional and not raw.strip():
        return None
    return decode_json(raw)


async def json_object(request: Request, *, max_bytes: int | None = None, optional: bool = False) -> dict[str, Any]:
    """`json_body` that must be a JSON object (an empty optional body is `{}`)."""
    body = await json_body(request, max_bytes=max_bytes, optional=optional)
    if body is None:
        return {}
    if not isinstance(body, dict):
        raise InvalidBody("The request body must be a JSON object.")
    return body


def _too_large(limit: int) -> TooLarge:
    return TooLarge(None, f"The request body is larger than the limit of {limit} bytes.")


async def _bounded(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > limit):
        raise _too_large(limit)
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _too_large(limit)
        chunks.append(chunk)
    return b"".join(chunks)


async def form_fields(request: Request) -> dict[str, str]:
    """An application/x-www-form-urlencoded body (OAuth2's only encoding); the last value of a field wins.

    Strict, as the JSON reader is: bytes or percent-escapes that are not UTF-8 are OAuth's invalid_request.
    """
    raw = await request.body()
    try:
        return dict(parse_qsl(raw.decode("utf-8"), keep_blank_values=True, errors="strict", max_num_fields=MAX_FORM_FIELDS))
    except (UnicodeDecodeError, ValueError):
        raise EntraError(400, "invalid_request", 900144, "The request body must be a UTF-8 form.") from None


def int_param(request: Request, name: str) -> int | None:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return None
    try:
        return int(raw)
    except ValueError:
        raise BadRequest(None, f"Query parameter '{name}' must be an integer.") from None


class RequestIdMiddleware:
    """Gives every response `x-ms-request-id` and echoes `x-ms-client-request-id`."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = str(uuid.uuid4())
        scope["strongroom.request_id"] = request_id
        client_request_id = None
        for k, v in scope["headers"]:
            if k == b"x-ms-client-request-id":
                client_request_id = v
                break

        async def send_with_ids(message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers.append((b"x-ms-request-id", request_id.encode()))
                if client_request_id is not None:
                    headers.append((b"x-ms-client-request-id", client_request_id))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_ids)
