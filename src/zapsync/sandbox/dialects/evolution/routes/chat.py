"""`/chat/...`: findChats, findMessages, findContacts (as 2.3.6 builds them from its tables)
and markMessageAsRead."""

from __future__ import annotations

import base64
import math
import time
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request, Response

from zapsync.sandbox.dialects.evolution import shapes
from zapsync.sandbox.dialects.evolution.dialect import Dialect
from zapsync.sandbox.dialects.evolution.http import (
    EvoError,
    EvoJSON,
    EvoRoute,
    int_of,
    obj,
    read_body,
)

router = APIRouter(route_class=EvoRoute)


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


def _window(bounds: Any) -> tuple[float, float] | None:
    """A `messageTimestamp` filter as 2.3.6 reads it: applied only when both `gte` and `lte`
    are given; a one-sided filter is silently ignored."""
    if not isinstance(bounds, dict) or not bounds.get("gte") or not bounds.get("lte"):
        return None
    gte, lte = _epoch(bounds["gte"]), _epoch(bounds["lte"])
    return None if gte is None or lte is None else (gte, lte)


@router.post("/chat/findChats/{name}")
async def find_chats(request: Request, name: str, evo: Dialect) -> Response:
    inst, row = evo.instance(request, name)
    body = await read_body(request)
    where = obj(body.get("where"))
    # Built from the Message table: a chat without a stored message does not exist here.
    chats = [c for c in inst.chats.values() if c.messages]
    if isinstance(where.get("remoteJid"), str):
        chats = [c for c in chats if c.jid == where["remoteJid"]]
    window = _window(where.get("messageTimestamp"))
    if window is not None:  # chats with a message in the window (both bounds only)
        gte, lte = window
        chats = [c for c in chats if any(gte <= m.timestamp <= lte for m in c.messages)]
    chats.sort(key=lambda c: (c.last_timestamp, c.jid), reverse=True)
    skip = int_of(body.get("skip"), 0)
    take = int_of(body.get("take"), len(chats), minimum=1) if "take" in body else len(chats)
    now = time.time()
    page = chats[skip : skip + take]
    return EvoJSON([shapes.chat_row(inst, c, row.instance_id, now) for c in page])


@router.post("/chat/findMessages/{name}")
async def find_messages(request: Request, name: str, evo: Dialect) -> Response:
    inst, row = evo.instance(request, name)
    body = await read_body(request)
    where = obj(body.get("where"))
    key = obj(where.get("key"))
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
        msgs = [m for m in msgs if shapes.db_id(row.instance_id, m.id) == where["id"]]
    if where.get("messageType"):
        msgs = [m for m in msgs if shapes.content(m)[0] == where["messageType"]]
    window = _window(where.get("messageTimestamp"))
    if window is not None:
        gte, lte = window
        msgs = [m for m in msgs if gte <= m.timestamp <= lte]
    # Newest first; among equal timestamps the later-stored message comes first.
    msgs = sorted(reversed(msgs), key=lambda m: m.timestamp, reverse=True)
    page = int_of(body.get("page"), 1, minimum=1)
    offset = int_of(body.get("offset"), 50, minimum=1)
    chunk = msgs[(page - 1) * offset : page * offset]
    return EvoJSON(
        {
            "messages": {
                "total": len(msgs),
                "pages": math.ceil(len(msgs) / offset),
                "currentPage": page,
                "records": [shapes.message_record(inst, m, row.instance_id) for m in chunk],
            }
        }
    )


@router.post("/chat/findContacts/{name}")
async def find_contacts(request: Request, name: str, evo: Dialect) -> Response:
    inst, row = evo.instance(request, name)
    body = await read_body(request)
    where = obj(body.get("where"))
    wanted = where.get("remoteJid")
    rows: dict[str, dict[str, Any]] = {}

    def add(jid: str, push_name: str | None, kind: str, ts: float, saved: bool = False) -> None:
        if jid in rows or (isinstance(wanted, str) and jid != wanted):
            return
        rows[jid] = {
            "id": shapes.db_id(row.instance_id, "contact", jid),
            "remoteJid": jid,
            "pushName": push_name,
            "profilePicUrl": None,
            "createdAt": shapes.iso(ts),
            "updatedAt": shapes.iso(ts),
            "instanceId": row.instance_id,
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


@router.post("/chat/markMessageAsRead/{name}")
async def mark_read(request: Request, name: str, evo: Dialect) -> Response:
    """`chat.controller.ts` readMessage: `{readMessages:[{remoteJid, fromMe, id}]}`."""
    inst, _ = evo.instance(request, name)
    body = await read_body(request)
    keys = body.get("readMessages")
    if not isinstance(keys, list) or not keys:
        raise EvoError(400, ['instance requires property "readMessages"'])
    by_chat: dict[str, list[str]] = {}
    for key in keys:
        key = obj(key)
        jid, msg_id = key.get("remoteJid"), key.get("id")
        if not isinstance(jid, str) or not isinstance(msg_id, str):
            raise EvoError(400, ['readMessages[] requires "remoteJid" and "id"'])
        if key.get("fromMe") is not True:
            by_chat.setdefault(jid, []).append(msg_id)
    try:
        for jid, ids in by_chat.items():
            evo.world.read(inst, jid, ids)
    except ConnectionError as exc:
        raise EvoError(500, str(exc) or "Connection Closed") from None
    return EvoJSON({"message": "Read messages", "read": "success"}, status_code=201)


@router.post("/chat/getBase64FromMediaMessage/{name}")
async def media_base64(request: Request, name: str, evo: Dialect) -> Response:
    """`{message:{key:{id}}, convertToMp4?}` -> the file as base64 (2.3.6 finds the message by
    `key.id` in its store; a missing message or file is its BadRequestException, a 400)."""
    inst, _ = evo.instance(request, name)
    body = await read_body(request)
    msg_id = obj(obj(body.get("message")).get("key")).get("id")
    if not isinstance(msg_id, str) or not msg_id:
        raise EvoError(400, ["Error: Message not found"])
    found = evo.world.download_media(inst, msg_id)
    if found is None:
        raise EvoError(400, ["Error: Message not found"])
    msg, data = found
    answer = {
        "mediaType": shapes.content(msg)[0],
        "fileName": msg.file_name,
        "caption": msg.body if msg.type != "text" else None,
        "size": {"fileLength": len(data), "height": None, "width": None},
        "mimetype": msg.mime_type,
        "base64": base64.b64encode(data).decode("ascii"),
        "buffer": None,
    }
    return EvoJSON(answer, status_code=201)
