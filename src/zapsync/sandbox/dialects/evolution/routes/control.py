"""`/_sandbox/evolution/...`: the sandbox's controls of the dialect (reconnect rounds, the
pace of `instance/create`). Outside fault injection, like every `/_sandbox` route."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from zapsync.sandbox.dialects.evolution.dialect import Dialect
from zapsync.sandbox.dialects.evolution.http import obj, read_body

router = APIRouter(tags=["sandbox control"])


@router.post("/_sandbox/evolution/reconnect-tick")
async def reconnect_tick(evo: Dialect) -> dict[str, Any]:
    return {"reconnected": evo.reconnect_round()}


@router.post("/_sandbox/evolution/reconnect")
async def reconnect_every(request: Request, evo: Dialect) -> dict[str, Any]:
    every = obj(await read_body(request)).get("every_seconds")
    running = await evo.reconnect_every(every)
    return {"every_seconds": every if running else None}


@router.post("/_sandbox/evolution/pace")
async def pace(request: Request, evo: Dialect) -> dict[str, Any]:
    wait = obj(await read_body(request)).get("create_wait_seconds")
    if isinstance(wait, int | float) and wait >= 0:
        evo.create_wait = float(wait)
    return {"create_wait_seconds": evo.create_wait}
