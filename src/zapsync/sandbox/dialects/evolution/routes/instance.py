"""`/instance/...` (and the welcome at `/`): create, connect, state, list, restart, log out,
delete."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from fastapi import APIRouter, Request, Response

from zapsync.sandbox.dialects.evolution import shapes
from zapsync.sandbox.dialects.evolution.dialect import Dialect
from zapsync.sandbox.dialects.evolution.http import (
    EvoError,
    EvoJSON,
    EvoRoute,
    obj,
    read_body,
    valid_url,
)

_LOGGED_OUT = {"status": "SUCCESS", "error": False, "response": {"message": "Instance logged out"}}
_DELETED = {"status": "SUCCESS", "error": False, "response": {"message": "Instance deleted"}}

router = APIRouter(route_class=EvoRoute)


@router.get("/")
async def root() -> Response:
    return EvoJSON(
        {
            "status": 200,
            "message": "Welcome to the Evolution API, it is working!",
            "version": "2.3.6",
            "clientName": "evolution",
            "documentation": "https://doc.evolution-api.com",
        }
    )


@router.post("/instance/create")
async def create(request: Request, evo: Dialect) -> Response:
    evo.authorize_global(request)
    world = evo.world
    body = await read_body(request)
    name = body.get("instanceName")
    if not isinstance(name, str) or not name.strip():
        raise EvoError(400, ['instance requires property "instanceName"'])
    if world.get(name) is not None:
        raise EvoError(403, [f'This name "{name}" is already in use.'])
    integration = body.get("integration") or shapes.BAILEYS
    if integration not in shapes.INTEGRATIONS:
        raise EvoError(400, ["Invalid integration"])
    hook = body.get("webhook")
    if hook is not None and not valid_url(obj(hook).get("url")):
        raise EvoError(400, ['Invalid "url" property in webhook'])
    token = body.get("token") if isinstance(body.get("token"), str) else None
    inst = world.create(name, token or str(uuid.uuid4()).upper())
    stored = body.get("status")
    row = evo.registry.add(
        inst,
        integration=integration,
        # The #1662 workaround: a `status` in the body is what gets stored.
        stored_status=stored if stored in ("open", "close", "connecting") else "open",
        number=str(body["number"]) if body.get("number") else None,
        server_url=str(request.base_url).rstrip("/"),
    )
    for field, default in row.settings.items():
        if field in body and isinstance(body[field], type(default)):
            row.settings[field] = body[field]
    if isinstance(hook, dict):
        row.set_webhook(hook)
    evo.webhooks.deliver(
        row, "instance.create", {"instanceName": name, "instanceId": row.instance_id}
    )
    qrcode = None
    if body.get("qrcode") is True and integration == shapes.BAILEYS:
        evo.start(inst, row)
        qrcode = shapes.qr_object(inst, with_pairing=bool(row.number))
        # Evolution holds the answer while the first QR's webhooks go out.
        await asyncio.sleep(evo.create_wait)
    webhook: dict[str, Any] = {}
    if isinstance(hook, dict):
        webhook = {
            "webhookUrl": hook["url"],
            "webhookByEvents": bool(hook.get("byEvents", False)),
            "webhookBase64": bool(hook.get("base64", False)),
        }
    answer: dict[str, Any] = {
        "instance": {
            "instanceName": name,
            "instanceId": row.instance_id,
            "integration": integration,
            "webhookWaBusiness": None,
            "accessTokenWaBusiness": "",
            "status": shapes.live_state(inst),
        },
        "hash": inst.token,
        "webhook": webhook,
        "websocket": {},
        "rabbitmq": {},
        "nats": {},
        "sqs": {},
        "settings": dict(row.settings),
    }
    if qrcode is not None:
        answer["qrcode"] = qrcode
    return EvoJSON(answer, status_code=201)


@router.get("/instance/connect/{name}")
async def connect(request: Request, name: str, evo: Dialect) -> Response:
    inst, row = evo.instance(request, name)
    number = request.query_params.get("number")
    if number:
        row.number = number
    return EvoJSON(evo.connect(inst, row))


@router.get("/instance/connectionState/{name}")
async def connection_state(request: Request, name: str, evo: Dialect) -> Response:
    inst, _ = evo.instance(request, name)
    return EvoJSON(evo.state_body(inst))


@router.get("/instance/fetchInstances")
async def fetch_instances(request: Request, evo: Dialect) -> Response:
    evo.authorize(request, None)
    key = request.headers.get("apikey")
    q = request.query_params
    rows = []
    for inst in list(evo.world.instances.values()):
        row = evo.registry.of(inst)
        if key != evo.api_key and inst.token != key:
            continue
        if q.get("instanceName") and inst.name != q["instanceName"]:
            continue
        if q.get("instanceId") and row.instance_id != q["instanceId"]:
            continue
        if q.get("number") and row.number != q["number"]:
            continue
        rows.append(row.db_row())
    return EvoJSON(rows)


@router.post("/instance/restart/{name}")
async def restart(request: Request, name: str, evo: Dialect) -> Response:
    inst, row = evo.instance(request, name)
    if shapes.live_state(inst) == "close":
        # 2.3.6 throws a BadRequestException and answers its toString() with a 200.
        return EvoJSON({"error": True, "message": "[object Object]"})
    evo.world.set_zombie(inst, False)  # a fresh socket is not frozen
    evo.world.drop(inst, silent=True)
    evo.start(inst, row)
    return EvoJSON(evo.connect(inst, row))


@router.delete("/instance/logout/{name}")
async def logout(request: Request, name: str, evo: Dialect) -> Response:
    inst, _ = evo.instance(request, name)
    if shapes.live_state(inst) == "close":
        raise EvoError(400, [f'The "{name}" instance is not connected'])
    evo.world.set_zombie(inst, False)
    evo.world.logout(inst)
    return EvoJSON(_LOGGED_OUT)


@router.delete("/instance/delete/{name}")
async def delete(request: Request, name: str, evo: Dialect) -> Response:
    inst, row = evo.instance(request, name)
    if shapes.live_state(inst) in ("open", "connecting"):
        evo.world.set_zombie(inst, False)
        evo.world.logout(inst)
    evo.webhooks.deliver(
        row, "instance.delete", {"instanceName": name, "instanceId": row.instance_id}
    )
    evo.world.delete(name)
    evo.registry.forget(name)
    return EvoJSON(_DELETED)
