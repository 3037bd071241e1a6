"""`/api/{session}/chats...`: chats, a chat's messages (newest first), read receipts."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from zapsync.sandbox.dialects.waha.dialect import Dialect
from zapsync.sandbox.dialects.waha.http import WahaRoute, int_param, nest_error, page
from zapsync.sandbox.dialects.waha.shapes import serialized_id, wa_message, waha_jid, world_jid

router = APIRouter(route_class=WahaRoute)


@router.get("/{name}/chats")
async def list_chats(name: str, request: Request, waha: Dialect) -> list[dict[str, Any]]:
    inst = waha.running(name, "WORKING")
    chats = list(inst.chats.values())
    sort_by = request.query_params.get("sortBy", "messageTimestamp")
    descending = request.query_params.get("sortOrder", "desc") != "asc"
    if sort_by == "id":
        chats.sort(key=lambda c: waha_jid(c.jid), reverse=descending)
    elif sort_by == "name":
        chats.sort(key=lambda c: (c.name or "", c.jid), reverse=descending)
    else:
        chats.sort(key=lambda c: (c.last_timestamp, c.jid), reverse=descending)
    out = []
    for chat in page(chats, request):
        item: dict[str, Any] = {"id": waha_jid(chat.jid), "name": chat.name}
        if chat.messages:
            item["conversationTimestamp"] = chat.last_timestamp
        item["unreadCount"] = chat.unread
        out.append(item)
    return out


@router.get("/{name}/chats/{chat_id}/messages")
async def list_messages(
    name: str, chat_id: str, request: Request, waha: Dialect
) -> list[dict[str, Any]]:
    inst = waha.running(name, "WORKING")
    chat = inst.chats.get(world_jid(chat_id))
    if chat is None:
        return []
    gte = int_param(request, "filter.timestamp.gte")
    lte = int_param(request, "filter.timestamp.lte")
    from_me = request.query_params.get("filter.fromMe")
    msgs = [
        m
        for m in reversed(chat.messages)
        if (gte is None or m.timestamp >= gte)
        and (lte is None or m.timestamp <= lte)
        and (from_me is None or m.from_me == (from_me == "true"))
    ]
    if int_param(request, "limit") is None:
        msgs = msgs[:100]  # WAHA's default page
    return [wa_message(inst, m) for m in page(msgs, request)]


@router.post("/{name}/chats/{chat_id}/messages/read")
async def read_messages(name: str, chat_id: str, waha: Dialect) -> dict[str, Any]:
    """Every unread message of the chat is read (the receipts go to the sender)."""
    inst = waha.running(name, "WORKING")
    try:
        read = waha.world.read(inst, world_jid(chat_id))
    except ConnectionError as exc:
        raise nest_error(500, str(exc) or "Connection Closed") from None
    return {"ids": [serialized_id(inst, m) for m in read]}
