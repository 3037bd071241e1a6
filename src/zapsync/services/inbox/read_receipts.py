"""Read receipts: a conversation read in zapsync is read on WhatsApp too, so the customer sees
the blue ticks and the phone's unread badge clears, as when the phone itself opens the chat.

Best effort, after the commit: zapsync's own read state is already stored, and a gateway that
is down, or has no such call, leaves the messages unread on the phone and logs why."""

from __future__ import annotations

import structlog

from zapsync.bus.events import Event
from zapsync.providers.base import GatewayError
from zapsync.runtime.context import AppContext
from zapsync.services.sessions.gateway import gateway_for
from zapsync.store import conversations as conversation_store
from zapsync.store import messages as message_store

log = structlog.get_logger(__name__)

# Receipts for the newest unread messages only: WhatsApp reads everything before the newest.
MAX_RECEIPTS = 50


def watch_reads(ctx: AppContext) -> None:
    """Send receipts each time someone reads a conversation that had unread messages."""
    if not ctx.settings.read_receipts:
        return

    async def on_event(event: Event) -> None:
        count = int(event.data.get("marked_read") or 0)
        if count <= 0:
            return
        conversation_id = int(event.data["conversation_id"])
        ctx.tasks.spawn(
            send_read_receipts(ctx, conversation_id, count),
            name=f"read-receipts-{conversation_id}",
        )

    ctx.bus.subscribe(on_event, names={"messages_read"})


async def send_read_receipts(ctx: AppContext, conversation_id: int, count: int) -> bool:
    """Mark the conversation's `count` newest incoming messages read at its gateway; True when
    the gateway took them."""
    async with ctx.db.session() as db:
        found = await conversation_store.chat_and_session_of(db, conversation_id)
        if found is None:
            return False
        chat_jid, session = found
        where = {"conversation_id": conversation_id, "session_id": session.id}
        if session.archived_at is not None or session.status != "connected":
            log.info("read receipts not sent", **where, reason=f"session is {session.status}")
            return False
        rows = await message_store.newest_incoming(db, conversation_id, min(count, MAX_RECEIPTS))
        # Named by the JID the gateway stored each message under: a LID chat's messages are
        # unknown to it under the phone JID the conversation is kept by.
        by_jid: dict[str, list[str]] = {}
        for row in rows:
            by_jid.setdefault(row.gateway_chat_jid or chat_jid, []).append(row.provider_message_id)
        if not by_jid:
            return False
        gw = gateway_for(ctx, session)
    sent = True
    try:
        for jid, ids in by_jid.items():
            sent = await gw.mark_read(jid, ids) and sent
    except GatewayError as exc:
        log.warning("read receipts not sent", **where, reason=exc.reason)
        return False
    finally:
        await gw.aclose()
    if sent:
        log.info("read receipts sent", **where, messages=sum(map(len, by_jid.values())))
    else:
        log.info("read receipts not sent", **where, reason=f"{session.provider} has none")
    return sent
