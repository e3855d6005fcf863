"""HTTP plumbing shared by the API modules: JSON bodies, responses, request ids."""

from __future__ import annotations

import json
import uuid
from urllib.parse import parse_qsl
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from strongroom.keyvault.errors import KeyVaultError, bad_parameter
from strongroom.util import jsonbytes


class JSON(Response):
    """Compact JSON, as Azure sends it."""

    media_type = "application/json; charset=utf-8"

    def render(self, content: Any) -> bytes:
        return jsonbytes.dumps(content)


def error_response(err: KeyVaultError, headers: dict[str, str] | None = None) -> JSON:
    return JSON(err.body(), status_code=err.status, headers=headers)


# No Azure document nests deeper than a handful of levels; 64 leaves room and bounds the work.
MAX_JSON_DEPTH = 64
# An OAuth2 form has about ten fields.
MAX_FORM_FIELDS = 64


def _too_deep(doc: Any) -> bool:
    """Whether `doc` nests containers deeper than MAX_JSON_DEPTH (iterative: no recursion to exhaust)."""
    stack = [(doc, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_JSON_DEPTH:
            return True
        children = node.values() if isinstance(node, dict) else node
        stack.extend((c, depth + 1) for c in children if isinstance(c, (dict, list)))
    return False


def _too_deep_error() -> KeyVaultError:
    return bad_parameter(f"The request body nests deeper than {MAX_JSON_DEPTH} levels.")


async def json_body(request: Request) -> Any:
    # The protocol (server/protocol.py) has capped the body's size before it was read.
    raw = await request.body()
    if not raw:
        raise bad_parameter("The request body is required.")
    try:
        doc = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise bad_parameter("The request body is not valid JSON.") from None
    except RecursionError:  # the C parser's own limit, far above ours
        raise _too_deep_error() from None
    # Counting brackets is C-speed; only a body with many of them is walked.
    if raw.count(b"[") + raw.count(b"{") > MAX_JSON_DEPTH and isinstance(doc, (dict, list)) and _too_deep(doc):
        raise _too_deep_error()
    return doc


async def form_fields(request: Request) -> dict[str, str]:
    """An application/x-www-form-urlencoded body (OAuth2's only encoding); the last value of a field wins.

    A body that is not UTF-8 or has more than MAX_FORM_FIELDS fields reads as no fields
    (the token endpoint then names the first missing parameter).
    """
    raw = await request.body()
    try:
        return dict(parse_qsl(raw.decode("utf-8"), keep_blank_values=True, max_num_fields=MAX_FORM_FIELDS))
    except (UnicodeDecodeError, ValueError):
        return {}


def int_param(request: Request, name: str) -> int | None:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return None
    try:
        return int(raw)
    except ValueError:
        raise bad_parameter(f"Query parameter '{name}' must be an integer.") from None


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
