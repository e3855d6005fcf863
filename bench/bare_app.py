"""The Python ceiling: a bare Starlette endpoint on Strongroom's server stack (uvicorn with
httptools and uvloop, the same worker count) answering a secret-sized JSON body.

No authentication, authorization, storage, decryption or audit: the table shows how
much of this ceiling the real read path keeps. The body is the very bytes Strongroom
answered for the hot secret (BENCH_BARE_BODY), so both send the same size.
"""

from __future__ import annotations

import os

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

BODY = os.environ.get("BENCH_BARE_BODY", '{"value":"0123456789abcdef0123456789abcdef"}').encode()


async def secret(request: Request) -> Response:
    return Response(BODY, media_type="application/json; charset=utf-8")


app = Starlette(routes=[Route("/secrets/{name}", secret, methods=["GET"])])
