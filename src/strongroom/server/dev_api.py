"""Dev-mode endpoints (`strongroom up --dev`): move a vault's clock forward, as Lowkey Vault's time shift does.

    GET    /strongroom/dev/time-shift                      the shifts in force
    POST   /strongroom/dev/time-shift {"seconds": N, "vault": "kv1"}   add N seconds (vault omitted: all vaults)
    DELETE /strongroom/dev/time-shift                      back to real time

Only the instance administrator may call them, and only in dev mode: without
`--dev` they answer 404, so a production server cannot be time-travelled.
Shifting wakes the lifecycle scheduler at once, so due renewals happen within
about a second.
"""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from strongroom.errors import BadRequest, NotFound
from strongroom.keyvault import timeshift
from strongroom.server.guards import admin, route, runtime
from strongroom.server.http import JSON, json_body
from strongroom.util.clock import now, vault_now

ACTION = "Strongroom/timeShift/action"


def _check(request: Request) -> None:
    """The route's guard admitted the instance administrator; the server must also run with --dev."""
    if not getattr(runtime(request).settings, "dev", False):
        raise NotFound(
            "NotFound", "Time shifting is available only on a server started with `strongroom up --dev`."
        )


def _state(request: Request, all_vaults: int, per_vault: dict[str, int]) -> dict[str, Any]:
    rt = runtime(request)
    vaults = {v.key: {"shiftSeconds": all_vaults + per_vault.get(v.key, 0), "now": vault_now(v.key)} for v in rt.vaults.list()}
    return {"allVaultsSeconds": all_vaults, "vaultSeconds": per_vault, "realNow": now(), "vaults": vaults}


def _wake(request: Request) -> None:
    scheduler = getattr(request.app.state, "scheduler", None)
    if scheduler is not None:
        scheduler.wake()


async def get_shift(request: Request) -> Response:
    _check(request)
    return JSON(_state(request, *timeshift.load(runtime(request).store)))


async def add_shift(request: Request) -> Response:
    _check(request)
    body = await json_body(request)
    if not isinstance(body, dict):
        raise BadRequest("BadParameter", "The request body must be {\"seconds\": N, \"vault\": name or null}.")
    vault = body.get("vault")
    if vault is not None:
        if not isinstance(vault, str) or runtime(request).vaults.get(vault) is None:
            raise NotFound("VaultNotFound", f"There is no vault named '{vault}'.")
    seconds = body.get("seconds")
    if seconds is None and body.get("days") is not None:
        days = body["days"]
        if isinstance(days, bool) or not isinstance(days, int):
            raise BadRequest("BadParameter", "'days' must be a whole number.")
        seconds = days * 86400
    state = await run_in_threadpool(timeshift.shift, runtime(request).store, seconds, vault)
    _wake(request)
    return JSON(_state(request, *state))


async def reset_shift(request: Request) -> Response:
    _check(request)
    await run_in_threadpool(timeshift.reset, runtime(request).store)
    return JSON(_state(request, 0, {}))


routes = [
    route("/strongroom/dev/time-shift", get_shift, ["GET"], admin("TimeShiftGet")),
    route("/strongroom/dev/time-shift", add_shift, ["POST"], admin("TimeShift")),
    route("/strongroom/dev/time-shift", reset_shift, ["DELETE"], admin("TimeShiftReset")),
]
