"""The sandbox world spoken in Evolution API v2's HTTP dialect (shapes of 2.3.6).

It reproduces the traps as well as the happy path: `fetchInstances` reports the stale DB column
(`open` by default) while `connectionState` reports the live socket; `connect` answers errors
with HTTP 200; `findChats` hides chats without messages; sends fail with a 500 "Connection
Closed" on a dropped or zombie socket; logging out a closed instance is a 400.

Like the real server, a started instance keeps reconnecting (a `connecting` and a fresh QR
each round) until it is logged out or deleted; a 400 logout does not stop it. Rounds run on
`POST /_sandbox/evolution/reconnect-tick` (tests) or every N seconds after
`POST /_sandbox/evolution/reconnect {"every_seconds": N}`. `POST /_sandbox/evolution/pace
{"create_wait_seconds": S}` makes `instance/create` hold its answer S seconds, as Evolution
holds it 5 s while its first QR (and that QR's webhook) goes out."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import math
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime
from functools import wraps
from typing import Any, ParamSpec

import httpx
from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from zapsync.sandbox.dialects import DialectFrontEnd
from zapsync.sandbox.dialects import evolution_shapes as shapes
from zapsync.sandbox.dialects.evolution_state import EvoInstance, Registry
from zapsync.sandbox.dialects.evolution_webhooks import EvolutionWebhooks
from zapsync.sandbox.webhook_sender import WebhookSender
from zapsync.sandbox.world import LinkState, SimInstance, SimMessage, World

GLOBAL_API_KEY = "sandbox-global-key"

# sendMedia `mediatype` -> world message type (a round video note is still a video).
_MEDIA_TYPES = {
    "image": "image",
    "video": "video",
    "document": "document",
    "audio": "audio",
    "ptv": "video",
}
_LOGGED_OUT = {"status": "SUCCESS", "error": False, "response": {"message": "Instance logged out"}}
_DELETED = {"status": "SUCCESS", "error": False, "response": {"message": "Instance deleted"}}


class EvoJSON(JSONResponse):
    """Express's `res.json`: compact, UTF-8 kept as is, charset in the content type."""

    media_type = "application/json; charset=utf-8"


class EvoError(Exception):
    """An error Evolution renders as `{status, error, response:{message}}`."""

    _NAMES = {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found"}

    def __init__(self, status: int, message: str | list[Any]) -> None:
        super().__init__(str(message))
        self.status = status
        self.message = message

    def response(self) -> Response:
        name = self._NAMES.get(self.status, "Internal Server Error")
        body = {"status": self.status, "error": name, "response": {"message": self.message}}
        return EvoJSON(body, status_code=self.status)


P = ParamSpec("P")


def _rendered(handler: Callable[P, Awaitable[Response]]) -> Callable[P, Awaitable[Response]]:
    """Routers cannot register exception handlers, so each route renders its own EvoError."""

    @wraps(handler)
    async def route(*args: P.args, **kwargs: P.kwargs) -> Response:
        try:
            return await handler(*args, **kwargs)
        except EvoError as exc:
            return exc.response()

    return route


async def _body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        data = json.loads(raw)
    except ValueError:
        raise EvoError(400, ["Unexpected token in JSON body"]) from None
    if not isinstance(data, dict):
        raise EvoError(400, ["instance requires property body"])
    return data


def _obj(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _valid_url(value: Any) -> bool:
    return isinstance(value, str) and value.startswith(("http://", "https://"))


def _int(value: Any, default: int, minimum: int = 0) -> int:
    try:
        return max(int(value), minimum)
    except (TypeError, ValueError):
        return default


def _epoch(value: Any) -> float | None:
    """A `messageTimestamp` bound: Evolution takes date strings; seconds are accepted too."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        text = value.strip()
        if text.isdigit():
            return float(text)
        try:
            return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
        except ValueError:
            raise EvoError(400, [f"invalid date {value!r}"]) from None
    raise EvoError(400, [f"invalid date {value!r}"])


_IMAGE_MAGIC = (b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"GIF87a", b"GIF89a")
_MAX_MEDIA_BYTES = 5 * 1024 * 1024


def _is_image(data: bytes) -> bool:
    webp = data[:4] == b"RIFF" and data[8:12] == b"WEBP"
    return webp or data.startswith(_IMAGE_MAGIC)


async def _media_bytes(media: str) -> bytes | None:
    """`media` as Baileys reads it: downloaded when a URL, decoded when base64. None when the
    sandbox cannot fetch it (an example host in a test): the image is then taken on trust."""
    if media.startswith(("http://", "https://")):
        try:
            async with (
                httpx.AsyncClient(timeout=5.0, follow_redirects=True) as client,
                client.stream("GET", media) as resp,
            ):
                if resp.status_code >= 400:
                    return None
                data = b""
                async for chunk in resp.aiter_bytes():
                    data += chunk
                    if len(data) > _MAX_MEDIA_BYTES:
                        break
                return data
        except httpx.HTTPError:
            return None
    encoded = media.split(",", 1)[1] if media.startswith("data:") else media
    try:
        return base64.b64decode(encoded, validate=True)
    except ValueError:
        return b""


def _window(bounds: Any) -> tuple[float, float] | None:
    """A `messageTimestamp` filter as 2.3.6 reads it: applied only when both `gte` and `lte`
    are given; a one-sided filter is silently ignored."""
    if not isinstance(bounds, dict) or not bounds.get("gte") or not bounds.get("lte"):
        return None
    gte, lte = _epoch(bounds["gte"]), _epoch(bounds["lte"])
    return None if gte is None or lte is None else (gte, lte)


class EvolutionDialect:
    def __init__(self, world: World, sender: WebhookSender, api_key: str = GLOBAL_API_KEY) -> None:
        self.world = world
        self.api_key = api_key
        self.registry = Registry()
        self.webhooks = EvolutionWebhooks(self.registry, sender)
        self.create_wait = 0.0
        self._looper: asyncio.Task[None] | None = None
        self.router = APIRouter(tags=["evolution dialect"])
        self._routes()
        self._control_routes()

    # --- the reconnect loop ---------------------------------------------------

    def _start(self, inst: SimInstance, evo: EvoInstance) -> None:
        """Open the socket; from now on Evolution keeps reconnecting it by itself."""
        evo.looping = True
        self.world.start(inst)

    def reconnect_round(self) -> list[str]:
        """One round of every instance's reconnect loop: a closed socket opens again (to
        `open` when a phone is paired), an unscanned QR expires and a fresh one shows."""
        names = []
        for evo in self.registry.all():
            inst = evo.inst
            if not evo.looping or self.world.get(inst.name) is not inst:
                continue
            if inst.state is LinkState.QR:
                self.world.drop(inst, silent=True)
            if inst.state is LinkState.STOPPED:
                self.world.start(inst)
                names.append(inst.name)
        return names

    async def _loop(self, every: float) -> None:
        while True:
            await asyncio.sleep(every)
            self.reconnect_round()

    def _control_routes(self) -> None:
        r = self.router

        @r.post("/_sandbox/evolution/reconnect-tick", tags=["sandbox control"])
        async def reconnect_tick() -> dict[str, Any]:
            return {"reconnected": self.reconnect_round()}

        @r.post("/_sandbox/evolution/reconnect", tags=["sandbox control"])
        async def reconnect_every(request: Request) -> dict[str, Any]:
            every = _obj(await _body(request)).get("every_seconds")
            if self._looper is not None:
                self._looper.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._looper
                self._looper = None
            if isinstance(every, int | float) and every > 0:
                self._looper = asyncio.get_running_loop().create_task(self._loop(float(every)))
            return {"every_seconds": every if self._looper else None}

        @r.post("/_sandbox/evolution/pace", tags=["sandbox control"])
        async def pace(request: Request) -> dict[str, Any]:
            wait = _obj(await _body(request)).get("create_wait_seconds")
            if isinstance(wait, int | float) and wait >= 0:
                self.create_wait = float(wait)
            return {"create_wait_seconds": self.create_wait}

    # --- guards -----------------------------------------------------------------

    def _authorize(self, request: Request, name: str | None) -> None:
        """`auth.guard.ts`: the global key always; an instance's own token on its own routes,
        and on fetchInstances (which then lists only that instance)."""
        key = request.headers.get("apikey")
        if key and key == self.api_key:
            return
        if key and name is not None:
            inst = self.world.get(name)
            if inst is not None and inst.token == key:
                return
        if key and name is None and any(i.token == key for i in self.world.instances.values()):
            return
        raise EvoError(401, "Unauthorized")

    def _instance(self, request: Request, name: str) -> tuple[SimInstance, EvoInstance]:
        self._authorize(request, name)
        inst = self.world.get(name)
        if inst is None:
            raise EvoError(404, [f'The "{name}" instance does not exist'])
        return inst, self.registry.of(inst)

    # --- shared answers ---------------------------------------------------------

    @staticmethod
    def _state_body(inst: SimInstance) -> dict[str, Any]:
        return {"instance": {"instanceName": inst.name, "state": shapes.live_state(inst)}}

    def _connect(self, inst: SimInstance, evo: EvoInstance) -> dict[str, Any]:
        """`connectToWhatsapp`: state when open, the bare QR object while connecting, a socket
        start when closed (`{"count":0}` when that made no QR, as when the phone is paired)."""
        state = shapes.live_state(inst)
        if state == "open":
            return self._state_body(inst)
        if state == "close":
            try:
                self._start(inst, evo)
            except Exception as exc:
                # `connectToWhatsapp` catches everything and answers `error.toString()` with 200.
                return {"error": True, "message": f"Error: {exc}"}
            state = shapes.live_state(inst)
        if state in ("connecting", "open"):
            return shapes.qr_object(inst, with_pairing=bool(evo.number))
        return {
            "instance": {"instanceName": inst.name, "status": state},
            "qrcode": shapes.qr_object(inst, with_pairing=bool(evo.number)),
        }

    def _send(self, inst: SimInstance, to: str, body: str | None, **extra: Any) -> SimMessage:
        if inst.state is not LinkState.OPEN or inst.zombie:
            raise EvoError(500, "Connection Closed")
        try:
            return self.world.send(inst, to, body, **extra)
        except ConnectionError as exc:
            raise EvoError(500, str(exc) or "Connection Closed") from None

    # --- routes -----------------------------------------------------------------

    def _routes(self) -> None:
        r = self.router
        world = self.world

        @r.get("/")
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

        @r.post("/instance/create")
        @_rendered
        async def create(request: Request) -> Response:
            self._authorize_global(request)
            body = await _body(request)
            name = body.get("instanceName")
            if not isinstance(name, str) or not name.strip():
                raise EvoError(400, ['instance requires property "instanceName"'])
            if world.get(name) is not None:
                raise EvoError(403, [f'This name "{name}" is already in use.'])
            integration = body.get("integration") or shapes.BAILEYS
            if integration not in shapes.INTEGRATIONS:
                raise EvoError(400, ["Invalid integration"])
            hook = body.get("webhook")
            if hook is not None and not _valid_url(_obj(hook).get("url")):
                raise EvoError(400, ['Invalid "url" property in webhook'])
            token = body.get("token") if isinstance(body.get("token"), str) else None
            inst = world.create(name, token or str(uuid.uuid4()).upper())
            stored = body.get("status")
            evo = self.registry.add(
                inst,
                integration=integration,
                # The #1662 workaround: a `status` in the body is what gets stored.
                stored_status=stored if stored in ("open", "close", "connecting") else "open",
                number=str(body["number"]) if body.get("number") else None,
                server_url=str(request.base_url).rstrip("/"),
            )
            for field, default in evo.settings.items():
                if field in body and isinstance(body[field], type(default)):
                    evo.settings[field] = body[field]
            if isinstance(hook, dict):
                evo.set_webhook(hook)
            self.webhooks.deliver(
                evo, "instance.create", {"instanceName": name, "instanceId": evo.instance_id}
            )
            qrcode = None
            if body.get("qrcode") is True and integration == shapes.BAILEYS:
                self._start(inst, evo)
                qrcode = shapes.qr_object(inst, with_pairing=bool(evo.number))
                # Evolution holds the answer while the first QR's webhooks go out.
                await asyncio.sleep(self.create_wait)
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
                    "instanceId": evo.instance_id,
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
                "settings": dict(evo.settings),
            }
            if qrcode is not None:
                answer["qrcode"] = qrcode
            return EvoJSON(answer, status_code=201)

        @r.get("/instance/connect/{name}")
        @_rendered
        async def connect(request: Request, name: str) -> Response:
            inst, evo = self._instance(request, name)
            number = request.query_params.get("number")
            if number:
                evo.number = number
            return EvoJSON(self._connect(inst, evo))

        @r.get("/instance/connectionState/{name}")
        @_rendered
        async def connection_state(request: Request, name: str) -> Response:
            inst, _ = self._instance(request, name)
            return EvoJSON(self._state_body(inst))

        @r.get("/instance/fetchInstances")
        @_rendered
        async def fetch_instances(request: Request) -> Response:
            self._authorize(request, None)
            key = request.headers.get("apikey")
            q = request.query_params
            rows = []
            for inst in list(world.instances.values()):
                evo = self.registry.of(inst)
                if key != self.api_key and inst.token != key:
                    continue
                if q.get("instanceName") and inst.name != q["instanceName"]:
                    continue
                if q.get("instanceId") and evo.instance_id != q["instanceId"]:
                    continue
                if q.get("number") and evo.number != q["number"]:
                    continue
                rows.append(evo.db_row())
            return EvoJSON(rows)

        @r.post("/instance/restart/{name}")
        @_rendered
        async def restart(request: Request, name: str) -> Response:
            inst, evo = self._instance(request, name)
            if shapes.live_state(inst) == "close":
                # 2.3.6 throws a BadRequestException and answers its toString() with a 200.
                return EvoJSON({"error": True, "message": "[object Object]"})
            world.set_zombie(inst, False)  # a fresh socket is not frozen
            world.drop(inst, silent=True)
            self._start(inst, evo)
            return EvoJSON(self._connect(inst, evo))

        @r.delete("/instance/logout/{name}")
        @_rendered
        async def logout(request: Request, name: str) -> Response:
            inst, _ = self._instance(request, name)
            if shapes.live_state(inst) == "close":
                raise EvoError(400, [f'The "{name}" instance is not connected'])
            world.set_zombie(inst, False)
            world.logout(inst)
            return EvoJSON(_LOGGED_OUT)

        @r.delete("/instance/delete/{name}")
        @_rendered
        async def delete(request: Request, name: str) -> Response:
            inst, evo = self._instance(request, name)
            if shapes.live_state(inst) in ("open", "connecting"):
                world.set_zombie(inst, False)
                world.logout(inst)
            self.webhooks.deliver(
                evo, "instance.delete", {"instanceName": name, "instanceId": evo.instance_id}
            )
            world.delete(name)
            self.registry.forget(name)
            return EvoJSON(_DELETED)

        @r.post("/webhook/set/{name}")
        @_rendered
        async def webhook_set(request: Request, name: str) -> Response:
            _, evo = self._instance(request, name)
            hook = (await _body(request)).get("webhook")
            if not isinstance(hook, dict):
                raise EvoError(400, ['instance requires property "webhook"'])
            if not _valid_url(hook.get("url")):
                raise EvoError(400, ['Invalid "url" property in webhook'])
            if hook.get("headers") is not None and not isinstance(hook["headers"], dict):
                raise EvoError(400, ['Invalid "headers" property in webhook'])
            evo.set_webhook(hook)
            return EvoJSON(evo.webhook_row(), status_code=201)

        @r.get("/webhook/find/{name}")
        @_rendered
        async def webhook_find(request: Request, name: str) -> Response:
            _, evo = self._instance(request, name)
            return EvoJSON(evo.webhook_row())

        @r.post("/chat/findChats/{name}")
        @_rendered
        async def find_chats(request: Request, name: str) -> Response:
            inst, evo = self._instance(request, name)
            body = await _body(request)
            where = _obj(body.get("where"))
            # Built from the Message table: a chat without a stored message does not exist here.
            chats = [c for c in inst.chats.values() if c.messages]
            if isinstance(where.get("remoteJid"), str):
                chats = [c for c in chats if c.jid == where["remoteJid"]]
            window = _window(where.get("messageTimestamp"))
            if window is not None:  # chats with a message in the window (both bounds only)
                gte, lte = window
                chats = [c for c in chats if any(gte <= m.timestamp <= lte for m in c.messages)]
            chats.sort(key=lambda c: (c.last_timestamp, c.jid), reverse=True)
            skip = _int(body.get("skip"), 0)
            take = _int(body.get("take"), len(chats), minimum=1) if "take" in body else len(chats)
            now = time.time()
            page = chats[skip : skip + take]
            return EvoJSON([shapes.chat_row(inst, c, evo.instance_id, now) for c in page])

        @r.post("/chat/findMessages/{name}")
        @_rendered
        async def find_messages(request: Request, name: str) -> Response:
            inst, evo = self._instance(request, name)
            body = await _body(request)
            where = _obj(body.get("where"))
            key = _obj(where.get("key"))
            jid = key.get("remoteJid")
            if isinstance(jid, str):
                chat = inst.chats.get(jid)
                msgs = list(chat.messages) if chat else []
            else:
                msgs = [m for c in inst.chats.values() for m in c.messages]
            if key.get("id"):
                msgs = [m for m in msgs if m.id == key["id"]]
            if key.get("fromMe"):  # only a truthy fromMe filters, as in `fetchMessages`
                msgs = [m for m in msgs if m.from_me]
            if where.get("id"):
                msgs = [m for m in msgs if shapes.db_id(evo.instance_id, m.id) == where["id"]]
            if where.get("messageType"):
                msgs = [m for m in msgs if shapes.content(m)[0] == where["messageType"]]
            window = _window(where.get("messageTimestamp"))
            if window is not None:
                gte, lte = window
                msgs = [m for m in msgs if gte <= m.timestamp <= lte]
            # Newest first; among equal timestamps the later-stored message comes first.
            msgs = sorted(reversed(msgs), key=lambda m: m.timestamp, reverse=True)
            page = _int(body.get("page"), 1, minimum=1)
            offset = _int(body.get("offset"), 50, minimum=1)
            chunk = msgs[(page - 1) * offset : page * offset]
            return EvoJSON(
                {
                    "messages": {
                        "total": len(msgs),
                        "pages": math.ceil(len(msgs) / offset),
                        "currentPage": page,
                        "records": [shapes.message_record(inst, m, evo.instance_id) for m in chunk],
                    }
                }
            )

        @r.post("/chat/findContacts/{name}")
        @_rendered
        async def find_contacts(request: Request, name: str) -> Response:
            inst, evo = self._instance(request, name)
            body = await _body(request)
            where = _obj(body.get("where"))
            wanted = where.get("remoteJid")
            rows: dict[str, dict[str, Any]] = {}

            def add(
                jid: str, push_name: str | None, kind: str, ts: float, saved: bool = False
            ) -> None:
                if jid in rows or (isinstance(wanted, str) and jid != wanted):
                    return
                rows[jid] = {
                    "id": shapes.db_id(evo.instance_id, "contact", jid),
                    "remoteJid": jid,
                    "pushName": push_name,
                    "profilePicUrl": None,
                    "createdAt": shapes.iso(ts),
                    "updatedAt": shapes.iso(ts),
                    "instanceId": evo.instance_id,
                    "isGroup": kind == "group",
                    "isSaved": saved,
                    "type": kind,
                }

            # The Contact rows hold the address book's names (Baileys `contacts.upsert`), which
            # `findChats` does not show: its `pushName` is the Chat row's name.
            for jid, saved in inst.contacts.items():
                add(jid, saved, "contact", inst.created_at, saved=True)
            for chat in inst.chats.values():
                first = chat.messages[0].timestamp if chat.messages else inst.created_at
                add(chat.jid, chat.name, "group" if chat.is_group else "contact", first)
                for m in chat.messages:
                    if chat.is_group and m.sender_jid:
                        add(m.sender_jid, m.push_name, "group_member", m.timestamp)
            return EvoJSON(list(rows.values()))

        @r.post("/chat/markMessageAsRead/{name}")
        @_rendered
        async def mark_read(request: Request, name: str) -> Response:
            """`chat.controller.ts` readMessage: `{readMessages:[{remoteJid, fromMe, id}]}`."""
            inst, _ = self._instance(request, name)
            body = await _body(request)
            keys = body.get("readMessages")
            if not isinstance(keys, list) or not keys:
                raise EvoError(400, ['instance requires property "readMessages"'])
            by_chat: dict[str, list[str]] = {}
            for key in keys:
                key = _obj(key)
                jid, msg_id = key.get("remoteJid"), key.get("id")
                if not isinstance(jid, str) or not isinstance(msg_id, str):
                    raise EvoError(400, ['readMessages[] requires "remoteJid" and "id"'])
                if key.get("fromMe") is not True:
                    by_chat.setdefault(jid, []).append(msg_id)
            try:
                for jid, ids in by_chat.items():
                    self.world.read(inst, jid, ids)
            except ConnectionError as exc:
                raise EvoError(500, str(exc) or "Connection Closed") from None
            return EvoJSON({"message": "Read messages", "read": "success"}, status_code=201)

        @r.post("/message/sendText/{name}")
        @_rendered
        async def send_text(request: Request, name: str) -> Response:
            inst, evo = self._instance(request, name)
            body = await _body(request)
            number, text = body.get("number"), body.get("text")
            if not isinstance(number, str | int) or not str(number).strip():
                raise EvoError(400, ['instance requires property "number"'])
            if not isinstance(text, str) or not text:
                raise EvoError(400, ['instance requires property "text"'])
            msg = self._send(inst, shapes.create_jid(str(number)), text)
            return EvoJSON(
                shapes.message_raw(inst, msg, evo.instance_id, status="PENDING"), status_code=201
            )

        @r.post("/message/sendMedia/{name}")
        @_rendered
        async def send_media(request: Request, name: str) -> Response:
            inst, evo = self._instance(request, name)
            body = await _body(request)
            number, media = body.get("number"), body.get("media")
            kind = _MEDIA_TYPES.get(str(body.get("mediatype")))
            if not isinstance(number, str | int) or not str(number).strip():
                raise EvoError(400, ['instance requires property "number"'])
            if kind is None:
                raise EvoError(400, ["mediatype must be one of image, video, document, audio, ptv"])
            if not isinstance(media, str) or not media:
                raise EvoError(400, ['instance requires property "media"'])
            if kind == "image":
                image = await _media_bytes(media)
                if image is not None and not _is_image(image):
                    # sharp's error, thrown while Baileys makes the thumbnail: a 500 like all.
                    raise EvoError(500, "Input buffer contains unsupported image format")
            msg = self._send(
                inst,
                shapes.create_jid(str(number)),
                body.get("caption") if isinstance(body.get("caption"), str) else None,
                type=kind,
                media_url=media if media.startswith(("http://", "https://")) else None,
                mime_type=body.get("mimetype") if isinstance(body.get("mimetype"), str) else None,
                file_name=body.get("fileName") if isinstance(body.get("fileName"), str) else None,
            )
            return EvoJSON(
                shapes.message_raw(inst, msg, evo.instance_id, status="PENDING"), status_code=201
            )

    def _authorize_global(self, request: Request) -> None:
        if request.headers.get("apikey") != self.api_key:
            raise EvoError(401, "Unauthorized")


def build(world: World, sender: WebhookSender, api_key: str = GLOBAL_API_KEY) -> DialectFrontEnd:
    dialect = EvolutionDialect(world, sender, api_key)
    return DialectFrontEnd("evolution", dialect.router, dialect.webhooks.on_event)
