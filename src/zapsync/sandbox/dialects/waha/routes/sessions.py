"""`/api/sessions...`: create, configure, start, stop, restart, log out and delete a session."""

from __future__ import annotations

import secrets
from typing import Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse

from zapsync.sandbox.dialects.waha.dialect import Dialect
from zapsync.sandbox.dialects.waha.http import WahaRoute, json_body, nest_error
from zapsync.sandbox.dialects.waha.shapes import me_of
from zapsync.sandbox.world import LinkState

router = APIRouter(route_class=WahaRoute)


@router.get("/sessions")
async def list_sessions(
    waha: Dialect, show_all: bool = Query(False, alias="all")
) -> list[dict[str, Any]]:
    return [
        waha.render(inst)
        for inst in waha.world.instances.values()
        if show_all or inst.state is not LinkState.STOPPED
    ]


@router.post("/sessions", status_code=201)
async def create_session(request: Request, waha: Dialect) -> dict[str, Any]:
    body = await json_body(request)
    name = body.get("name") or f"session_{secrets.token_hex(4)}"
    if not isinstance(name, str):
        raise nest_error(400, "name must be a string")
    if waha.world.get(name) is not None:
        raise nest_error(422, f"Session '{name}' already exists. Use PUT to update it.")
    inst = waha.world.create(name)
    waha.sessions.add(inst, body.get("config"))
    if body.get("start", True):
        waha.start(inst)
    return waha.render(inst)


@router.get("/sessions/{name}")
async def get_session(name: str, waha: Dialect) -> dict[str, Any]:
    return waha.render(waha.session(name))


@router.get("/sessions/{name}/me")
async def get_me(name: str, waha: Dialect) -> Response:
    me = me_of(waha.session(name))
    return JSONResponse(me) if me else Response(status_code=200)


@router.put("/sessions/{name}")
async def update_session(name: str, request: Request, waha: Dialect) -> dict[str, Any]:
    inst = waha.session(name)
    body = await json_body(request)
    waha.sessions.set_config(inst, body.get("config"))
    if inst.state is not LinkState.STOPPED:  # WAHA restarts a running session on PUT
        waha.stop(inst)
        waha.start(inst)
    return waha.render(inst)


@router.post("/sessions/{name}/start", status_code=201)
async def start_session(name: str, waha: Dialect) -> dict[str, Any]:
    inst = waha.session(name)
    if inst.state is not LinkState.STOPPED:
        raise nest_error(422, f"Session '{name}' is already started.")
    waha.start(inst)
    return waha.render(inst)


@router.post("/sessions/{name}/stop", status_code=201)
async def stop_session(name: str, waha: Dialect) -> dict[str, Any]:
    inst = waha.session(name)
    waha.stop(inst)
    return waha.render(inst)


@router.post("/sessions/{name}/restart", status_code=201)
async def restart_session(name: str, waha: Dialect) -> dict[str, Any]:
    inst = waha.session(name)
    waha.stop(inst)
    waha.start(inst)
    return waha.render(inst)


@router.post("/sessions/{name}/logout", status_code=201)
async def logout_session(name: str, waha: Dialect) -> dict[str, Any]:
    inst = waha.session(name)
    was_running = inst.state is not LinkState.STOPPED
    waha.world.logout(inst)
    if was_running:  # WAHA logs out and starts again, on to a fresh QR
        waha.start(inst)
    return waha.render(inst)


@router.delete("/sessions/{name}")
async def delete_session(name: str, waha: Dialect) -> Response:
    inst = waha.session(name)
    if inst.state is not LinkState.STOPPED:
        waha.stop(inst)
    waha.world.delete(name)
    waha.sessions.forget(name)
    return Response(status_code=200)
