"""Storing what gateways report about messages: new messages (live or imported), acks, edits,
deletions, chats and the identity links between a lid and a phone.

Gateways deliver at least once, in any order: the same message many times, an ack before
its message. Every function here is idempotent and converges to the state of one clean
delivery in order: each message once (`(session_id, provider_message_id)`), with its latest
ack; an ack for a message not stored yet waits in `pending_acks`.

The caller owns the transaction and commits; events go out after that commit.
"""

from __future__ import annotations

import contextlib
from collections.abc import Container, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncSession

from zapsync.bus.after_commit import publish_on_commit
from zapsync.bus.events import (
    EventName,
    conversation_updated,
    message_event,
    message_merged,
    message_updated,
)
from zapsync.bus.memory import EventBus
from zapsync.domain import gateway
from zapsync.domain.gateway import ACK_RANK, Ack, MessageType
from zapsync.services.ingest.chats import (
    ChatTarget,
    ResolvedChat,
    resolve_chats,
    stored_target,
    target_of,
)
from zapsync.services.ingest.contacts import link_identity
from zapsync.store import conversations as conversation_store
from zapsync.store import messages as message_store
from zapsync.store.external_refs import move_external_refs
from zapsync.store.messages import ACK, CONVERSATION, PMID, RANK_BY_VALUE, ROW_COLUMNS, SENT_AT
from zapsync.store.text import clip
from zapsync.store.types import utcnow

__all__ = [
    "StoreResult",
    "apply_ack",
    "apply_delete",
    "apply_edit",
    "apply_parked_ack",
    "confirm_sent",
    "link_identity",
    "record_chats",
    "store_history",
    "store_messages",
]


def _ack_of(value: str | None) -> Ack | None:
    try:
        return Ack(value) if value else None
    except ValueError:
        return None


@dataclass
class StoreResult:
    created: int = 0
    skipped: int = 0  # already stored, nothing to change
    updated: int = 0  # already stored, its ack moved forward
    ignored: int = 0  # the Status pseudo-chat or an address that is not one
    message_ids: list[int] = field(default_factory=list)  # of the created messages
    conversation_ids: set[int] = field(default_factory=set)  # every conversation touched
    conversations_created: set[int] = field(default_factory=set)


_LABELS = {
    MessageType.IMAGE: "image",
    MessageType.VIDEO: "video",
    MessageType.AUDIO: "audio",
    MessageType.DOCUMENT: "document",
    MessageType.STICKER: "sticker",
    MessageType.LOCATION: "location",
    MessageType.CONTACT: "contact card",
    MessageType.REACTION: "reaction",
}


def preview_of(message: gateway.Message) -> str:
    """What a chat list shows for its last message."""
    text = message.body or message.caption
    if message.type is MessageType.TEXT:
        return (text or "")[:200]
    if message.type is MessageType.AUDIO and message.is_voice_note:
        label = "voice note"
    else:
        label = _LABELS.get(message.type, message.raw_type or "message")
    detail = text or message.file_name
    return (f"[{label}] {detail}" if detail else f"[{label}]")[:200]


def _row(
    message: gateway.Message, organization_id: int, session_id: int, conversation_id: int
) -> dict[str, Any]:
    values = message_store.row_values(message, organization_id, session_id, conversation_id)
    return dict(zip(ROW_COLUMNS, values, strict=True))


def _target_for(message: gateway.Message, chat: gateway.Chat | None) -> ChatTarget | None:
    alt = message.chat_alt_jid or (chat.alt_jid if chat else None)
    name = chat.name if chat else None
    target = target_of(
        message.chat_jid, alt, name=name, unread_count=chat.unread_count if chat else 0
    )
    if target is not None and not target.name and not target.is_group and not message.from_me:
        # In a one-to-one chat the sender's push name is the person's name.
        target = replace(target, name=clip(message.sender_name, 200))
    return target


async def _place_messages(
    db: AsyncSession,
    bus: EventBus,
    organization_id: int,
    session_id: int,
    pages: Sequence[Sequence[gateway.Message]],
    chats: Mapping[str, gateway.Chat],
    results: Sequence[StoreResult],
    skip_groups: bool,
) -> list[tuple[int, gateway.Message, int]]:
    """Each storable message with its page's index and its conversation (created when new),
    all pages' chats resolved together; the Status pseudo-chat, garbage addresses, groups
    (with `skip_groups`) and messages without an id count as `ignored` in their page's result."""
    keyed: list[tuple[int, gateway.Message, str]] = []
    page_keys: list[set[str]] = [set() for _ in pages]
    # Each distinct target once (by identity: the memo hands out one object per key).
    targets: dict[int, ChatTarget] = {}
    # Reading a phone number is slow; a page is mostly one chat, read it once.
    memo: dict[tuple[str, str | None, bool, str | None], ChatTarget | None] = {}
    for index, messages in enumerate(pages):
        for message in messages:
            memo_key = (
                message.chat_jid,
                message.chat_alt_jid,
                message.from_me,
                None if message.from_me else message.sender_name,
            )
            if memo_key not in memo:
                memo[memo_key] = stored_target(
                    _target_for(message, chats.get(message.chat_jid)), skip_groups=skip_groups
                )
            target = memo[memo_key]
            if target is None or not message.provider_message_id:
                results[index].ignored += 1
                continue
            targets.setdefault(id(target), target)
            keyed.append((index, message, target.chat_key))
            page_keys[index].add(target.chat_key)
    if not keyed:
        return []

    resolved = await resolve_chats(
        db,
        organization_id=organization_id,
        session_id=session_id,
        targets=list(targets.values()),
        bus=bus,
    )
    for result, keys in zip(results, page_keys, strict=True):
        result.conversations_created = {
            resolved[key].conversation_id for key in keys if resolved[key].created
        }
    return [(index, message, resolved[key].conversation_id) for index, message, key in keyed]


async def store_messages(
    db: AsyncSession,
    bus: EventBus,
    *,
    organization_id: int,
    session_id: int,
    messages: Sequence[gateway.Message],
    chats: Mapping[str, gateway.Chat] | None = None,
    live: bool,
    skip_groups: bool = False,
) -> StoreResult:
    """Store a page of messages idempotently and bring their conversations up to date.

    `chats` (by JID) adds what a chat listing knows: names, a lid's phone, unread counts.
    `live` messages (webhooks) count as unread and publish `new_message` and
    `conversation_updated`; imported ones publish nothing (the import reports one run).
    `skip_groups` (the `ZAPSYNC_SKIP_GROUPS` setting) leaves group chats out.
    """
    result = StoreResult()
    placed = await _place_messages(
        db, bus, organization_id, session_id, [messages], chats or {}, [result], skip_groups
    )
    if not placed:
        return result

    by_id: dict[str, tuple[gateway.Message, dict[str, Any]]] = {}
    for _, message, conversation_id in placed:
        row = _row(message, organization_id, session_id, conversation_id)
        if row["provider_message_id"] in by_id:
            result.skipped += 1  # the same message twice in one page
            continue
        by_id[row["provider_message_id"]] = (message, row)

    # One statement inserts the new messages and moves repeats' acks forward (never back);
    # `created_at` tells the two apart in what it returns: only new rows carry this call's.
    marker = utcnow()
    for _, row in by_id.values():
        row["created_at"] = marker
    # Whole rows: the events are built from them, not selected back.
    written = await message_store.upsert_live_messages(db, [row for _, row in by_id.values()])
    created = {r.provider_message_id: r.id for r in written if r.created_at == marker}
    acked = {r.id: r.conversation_id for r in written if r.created_at != marker}
    moved, parked = await _apply_pending_acks(db, session_id, list(by_id), created)
    acked.update(moved)
    result.created = len(created)
    result.message_ids = sorted(created.values())
    result.updated = len(acked)
    result.skipped += len(by_id) - len(created) - len(acked)

    new_rows = [by_id[pmid] for pmid in created]
    touched = await _touch_conversations(db, new_rows, live=live)
    result.conversation_ids = touched | set(acked.values())
    result.conversation_ids |= result.conversations_created

    if live:
        # A parked ack changed some rows after they were written: those are read again.
        current = [r for r in written if r.provider_message_id not in parked]
        stale = [*moved, *(r.id for r in written if r.provider_message_id in parked)]
        await _publish(db, bus, organization_id, result, current, stale)
    return result


async def store_history(
    db: AsyncSession,
    bus: EventBus,
    *,
    organization_id: int,
    session_id: int,
    pages: Sequence[Sequence[gateway.Message]],
    chats: Mapping[str, gateway.Chat] | None = None,
    skip_groups: bool = False,
) -> list[StoreResult]:
    """Store imported messages with the outcome of `store_messages(live=False)` on each page,
    all pages together in a few cheap statements: an import writes tens of thousands of
    messages, nearly all new. A page is any group the caller counts apart (the import: one
    chat's messages); a message repeated in a later page counts as skipped there.

    The messages go in with a plain `INSERT … ON CONFLICT DO NOTHING` (`insert_missing`); only
    when some were already stored does a lookup find those repeats, to move their acks forward.
    `message_ids` stays empty: nothing returns the new rows' ids (the live path needs them for
    its events, and pays for RETURNING).
    """
    results = [StoreResult() for _ in pages]
    placed = await _place_messages(
        db, bus, organization_id, session_id, pages, chats or {}, results, skip_groups
    )
    if not placed:
        return results
    by_id: dict[str, tuple[int, gateway.Message, tuple[Any, ...]]] = {}
    for index, message, conversation_id in placed:
        values = message_store.row_values(message, organization_id, session_id, conversation_id)
        if values[PMID] in by_id:
            results[index].skipped += 1  # the same message twice in one batch
            continue
        by_id[values[PMID]] = (index, message, values)

    # Stamped with this call's time: rows stored before carry an older one.
    marker = utcnow()
    rows = [values for _, _, values in by_id.values()]
    inserted = await message_store.insert_history_messages(db, rows, marker)
    repeats: dict[str, message_store.Stored] = {}
    if inserted < len(by_id):
        repeats = await message_store.stored_before(db, session_id, list(by_id), marker)
    moved = await _move_repeat_acks(db, session_id, by_id, repeats)
    new = by_id.keys() - repeats.keys()
    pending: Container[int] = ()
    # Parked acks are rare: one cheap probe spares the lookup of every id of the batch.
    if await message_store.any_parked_ack(db, session_id):
        pending, _ = await _apply_pending_acks(db, session_id, list(by_id), new)

    new_rows: list[tuple[gateway.Message, dict[str, Any]]] = []
    for pmid, (index, message, values) in by_id.items():
        result = results[index]
        if pmid in new:
            result.created += 1
            result.conversation_ids.add(values[CONVERSATION])
            row = {"conversation_id": values[CONVERSATION], "sent_at": values[SENT_AT]}
            new_rows.append((message, row))
        elif pmid in moved or repeats[pmid].id in pending:
            result.updated += 1
            result.conversation_ids.add(repeats[pmid].conversation_id)
        else:
            result.skipped += 1
    await _touch_conversations(db, new_rows, live=False)
    for result in results:
        result.conversation_ids |= result.conversations_created
    return results


async def _move_repeat_acks(
    db: AsyncSession,
    session_id: int,
    by_id: Mapping[str, tuple[int, gateway.Message, tuple[Any, ...]]],
    repeats: Mapping[str, message_store.Stored],
) -> set[str]:
    """Move the stored messages' acks forward to the incoming ones where those are later;
    returns their provider message ids. (The statement itself never moves an ack back.)"""
    later = {}
    for pmid, stored in repeats.items():
        ack = by_id[pmid][2][ACK]
        if RANK_BY_VALUE.get(stored.ack, -1) < RANK_BY_VALUE[ack]:
            later[pmid] = ack
    await message_store.advance_acks(db, session_id, later)
    return set(later)


async def _apply_pending_acks(
    db: AsyncSession, session_id: int, pmids: Sequence[str], created: Container[str]
) -> tuple[dict[int, int], set[str]]:
    """Apply the acks that arrived before their messages, then forget them.

    Returns {message id: conversation id} of already-stored messages whose ack moved (an ack
    parked while a concurrent delivery was storing its message), and the provider ids of
    every message that had a parked ack.
    """
    found = await message_store.parked_acks(db, session_id, pmids)
    pending = {pmid: _ack_of(ack) for pmid, ack in found.items()}
    if not pending:
        return {}, set()
    changes = {pmid: ack.value for pmid, ack in pending.items() if ack is not None}
    await message_store.advance_acks(db, session_id, changes)
    await message_store.forget_parked_acks(db, session_id, pending)
    repeats = [pmid for pmid in pending if pmid not in created]
    if not repeats:
        return {}, set(pending)
    moved = await message_store.conversations_of_messages(db, session_id, repeats)
    return moved, set(pending)


async def _touch_conversations(
    db: AsyncSession,
    new_rows: Sequence[tuple[gateway.Message, dict[str, Any]]],
    *,
    live: bool,
) -> set[int]:
    """Move each conversation's last message forward (never back) and count live unread."""
    latest: dict[int, tuple[datetime, str]] = {}
    unread: dict[int, int] = {}
    for message, row in new_rows:
        conversation_id = row["conversation_id"]
        when = row["sent_at"]
        if conversation_id not in latest or when >= latest[conversation_id][0]:
            latest[conversation_id] = (when, preview_of(message))
        counts = live and not message.from_me and message.type is not MessageType.REACTION
        if counts:
            unread[conversation_id] = unread.get(conversation_id, 0) + 1
    changes = [
        (cid, when, preview, unread.get(cid, 0))
        for cid, (when, preview) in sorted(latest.items())  # one lock order for every writer
    ]
    await conversation_store.touch_last_messages(db, changes)
    return set(latest)


async def _publish(
    db: AsyncSession,
    bus: EventBus,
    organization_id: int,
    result: StoreResult,
    rows: Sequence[Row[Any]],
    stale_ids: Sequence[int],
) -> None:
    """`new_message` or `message_updated` for each row (whole message rows, as written), and
    for the messages `stale_ids` names, read again; then `conversation_updated`."""
    messages = list(rows)
    if stale_ids:
        messages.extend(await message_store.message_rows(db, stale_ids))
    if messages:
        created = set(result.message_ids)
        for message in sorted(messages, key=lambda m: (m.sent_at, m.id)):
            name: EventName = "new_message" if message.id in created else "message_updated"
            publish_on_commit(db, message_event(name, message))
    await publish_conversations(db, bus, organization_id, result.conversation_ids)


async def publish_conversations(
    db: AsyncSession, bus: EventBus, organization_id: int, conversation_ids: set[int]
) -> None:
    """`conversation_updated` with each conversation's current row and contact."""
    if not conversation_ids:
        return
    for conversation, contact in await conversation_store.conversations_with_contacts(
        db, conversation_ids
    ):
        publish_on_commit(db, conversation_updated(conversation, contact))


async def record_chats(
    db: AsyncSession,
    bus: EventBus,
    *,
    organization_id: int,
    session_id: int,
    chats: Sequence[gateway.Chat],
    live: bool,
    skip_groups: bool = False,
) -> dict[str, ResolvedChat]:
    """Store chats that may have no message yet (chat listings, `chats.upsert` events).

    Returns each stored chat's conversation by the chat's JID; the Status pseudo-chat,
    garbage and (with `skip_groups`) groups are left out. Live calls publish
    `conversation_updated` for new conversations.
    """
    by_jid: dict[str, ChatTarget] = {}
    for chat in chats:
        # Live, every message counts itself as unread when it arrives; a chat event's own
        # count (Evolution's `unreadMessages`) would count the first message twice.
        unread = 0 if live else chat.unread_count
        target = stored_target(
            target_of(chat.jid, chat.alt_jid, name=chat.name, unread_count=unread),
            skip_groups=skip_groups,
        )
        if target is not None:
            by_jid[chat.jid] = target
    if not by_jid:
        return {}
    resolved = await resolve_chats(
        db,
        organization_id=organization_id,
        session_id=session_id,
        targets=list(by_jid.values()),
        bus=bus,
    )
    out = {jid: resolved[target.chat_key] for jid, target in by_jid.items()}
    if live:
        created = {r.conversation_id for r in out.values() if r.created}
        await publish_conversations(db, bus, organization_id, created)
    return out


async def _publish_message(
    db: AsyncSession, message_id: int, extra: Mapping[str, Any] | None = None
) -> None:
    message = await message_store.load_message(db, message_id)
    if message is not None:
        publish_on_commit(db, message_updated(message, extra))


async def apply_ack(
    db: AsyncSession, bus: EventBus, *, session_id: int, provider_message_id: str, ack: Ack
) -> bool:
    """Record a delivery state; the later one wins whatever the arrival order.

    An ack for a message not stored yet waits in `pending_acks` (keeping the latest) and is
    applied when the message arrives. True when a stored message changed (then
    `message_updated` is published).
    """
    provider_message_id = provider_message_id[:200]
    changed = await message_store.advance_ack(db, session_id, provider_message_id, ack)
    if changed is None:
        if await message_store.message_id_of(db, session_id, provider_message_id) is not None:
            return False  # already at this ack or a later one
        await message_store.park_ack(db, session_id, provider_message_id, ack)
        # The message may have been committed by another delivery in the meantime.
        changed = await message_store.advance_ack(db, session_id, provider_message_id, ack)
        if changed is None:
            return False
        await message_store.forget_parked_acks(db, session_id, [provider_message_id])
    await _publish_message(db, changed.id)
    return True


async def apply_edit(
    db: AsyncSession,
    bus: EventBus,
    *,
    session_id: int,
    provider_message_id: str,
    body: str,
    edited_at: datetime | None = None,
) -> bool:
    """Replace a message's text. Unknown messages and repeats of the same edit change nothing."""
    at = message_store.utc(edited_at) if edited_at else utcnow()
    row = await message_store.edit_body(db, session_id, provider_message_id[:200], body, at)
    if row is None:
        return False
    # The chat list shows the edited text when this is the conversation's last message.
    await conversation_store.set_preview_if_last(db, row.conversation_id, row.sent_at, body[:200])
    await _publish_message(db, row.id)
    return True


async def apply_delete(
    db: AsyncSession,
    bus: EventBus,
    *,
    session_id: int,
    provider_message_id: str,
    deleted_at: datetime | None = None,
) -> bool:
    """Mark a message deleted for everyone (revoked). The body is kept for the record;
    views decide what to show. Unknown messages and repeats change nothing."""
    at = message_store.utc(deleted_at) if deleted_at else utcnow()
    row = await message_store.mark_deleted(db, session_id, provider_message_id[:200], at)
    if row is None:
        return False
    await _publish_message(db, row.id)
    return True


def _latest(*acks: str | None) -> Ack:
    """The furthest delivery state among those known; a sent message is at least `sent`."""
    known = [Ack.SENT]
    for value in acks:
        with contextlib.suppress(ValueError):
            if value:
                known.append(Ack(value))
    return max(known, key=ACK_RANK.__getitem__)


async def confirm_sent(db: AsyncSession, *, message_id: int, gateway_id: str, ack: Ack) -> None:
    """The gateway took our message (`local-…`) as `gateway_id`: the row takes that id and
    the furthest ack known (the gateway's answer, an echo's, a parked one).

    When the gateway's echo of it won the race and was stored as its own row, the echo folds
    into ours: its external references move over, it is deleted, and `message_merged` tells
    clients to drop it; then `message_updated` (with `replaces_message_id`) carries our row.
    A unique clash (an echo committed meanwhile) raises: the caller tries again."""
    message = await message_store.load_message(db, message_id)
    if message is None or message.session_id is None:
        return  # a helpdesk channel's message never went to a gateway
    echo = await message_store.find_echo(db, message, gateway_id)
    parked = await message_store.parked_ack(db, message.session_id, gateway_id)
    best = _latest(ack.value, message.ack, echo.ack if echo else None, parked)
    extra: dict[str, Any] = {"error": None}
    if echo is not None:
        # Our row is the one clients saw first (the API answered with it): it stays.
        await move_external_refs(db, message.organization_id, "message", echo.id, message.id)
        await message_store.delete_message(db, echo.id)
        extra["replaces_message_id"] = echo.id
        publish_on_commit(db, message_merged(message, echo))
    if parked is not None:
        await message_store.forget_parked_acks(db, message.session_id, [gateway_id])
    await message_store.take_gateway_id(db, message.id, gateway_id, best)
    await db.refresh(message)
    publish_on_commit(db, message_updated(message, extra))


async def apply_parked_ack(
    db: AsyncSession, bus: EventBus, *, session_id: int, gateway_id: str
) -> None:
    """An ack that arrived while the gateway's id was being written was parked for a message
    that did not exist yet; apply it now and forget it."""
    parked = await message_store.parked_ack(db, session_id, gateway_id)
    if parked is None:
        return
    with contextlib.suppress(ValueError):
        await apply_ack(
            db, bus, session_id=session_id, provider_message_id=gateway_id, ack=Ack(parked)
        )
    await message_store.forget_parked_acks(db, session_id, [gateway_id])
