"""Prepare equivalent state in both systems: the same secret names, versions and value sizes."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable

import httpx

PutRequest = tuple[str, str, dict[str, str], bytes]


def value() -> str:
    return secrets.token_hex(16)  # 32 characters, a generated password's size


async def _put_all(base_url: str, verify, requests: list[PutRequest], concurrency: int) -> None:
    queue: asyncio.Queue[PutRequest] = asyncio.Queue()
    for r in requests:
        queue.put_nowait(r)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base_url, verify=verify, timeout=60, limits=limits) as client:

        async def worker() -> None:
            while not queue.empty():
                method, path, headers, body = queue.get_nowait()
                for attempt in range(5):
                    r = await client.request(method, path, headers=headers, content=body)
                    if r.status_code < 300:
                        break
                    if r.status_code not in (429, 503) or attempt == 4:
                        raise RuntimeError(f"{method} {path}: {r.status_code} {r.text[:300]}")
                    await asyncio.sleep(0.5)

        await asyncio.gather(*(worker() for _ in range(concurrency)))


def put_all(base_url: str, verify, make: Callable[[str, str], PutRequest], names: list[str], versions: int,
            concurrency: int = 32) -> None:
    """Write `versions` versions of each name, version by version (so every secret has them all)."""
    for _ in range(versions):
        requests = [make(name, value()) for name in names]
        asyncio.run(_put_all(base_url, verify, requests, concurrency))
