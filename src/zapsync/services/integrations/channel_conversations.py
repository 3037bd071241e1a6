"""A helpdesk's conversations of its other channels (Chatwoot's e-mail, web widget, another
inbox than the bridged one), kept in zapsync so the inbox shows a customer's whole history.

Such a conversation belongs to the integration, not to a WhatsApp session: zapsync reads it and
never answers it (replies are the helpdesk's: `sending.reply_elsewhere`), and the bridge never
mirrors its messages (its refs are of kinds of their own, `channel_conversation` and
`channel_message`, which the bridge's message queue does not read).

One code path for the pull and the webhooks (`apply`). The pull gives a conversation's
fingerprint (status, labels, last activity, contact, channel) and all its messages: the same
fingerprint as the ref's means nothing to do (skipped, nothing fetched; only the record's
`updated_at` is held, when it moved). A webhook gives what
it carries and clears the fingerprint, so the next pull reconciles the whole thread (a webhook
Chatwoot never retried may have been lost before it). A message not stored yet is stored with
its ref; one stored already takes Chatwoot's changes where the pull or a `message_updated`
webhook brings them (`updates`): its new text (edited), or its deletion (Chatwoot's
`content_attributes.deleted`: marked deleted, the text kept for the record as a revoked
WhatsApp message's is), each published as `message_updated`; a change already applied writes
nothing. A `message_created` delivered again never takes a message back to its first text.

Out of order: Chatwoot's records carry their `updated_at`, and the conversation ref holds the
one last applied (`upstream_updated_at`). A record older than it (a webhook delivered late, or
a pulled page a webhook overtook) is stale: the conversation keeps its state (status, labels,
contact, name), only messages not held yet (or their edits) are stored, and with none nothing
is written. An equal one is the same record again; a newer one, or one without a time, is
applied and its time kept.

The status goes both ways, as a bridged conversation's does (`bridge_mirror.py`). The
conversation ref's `pushed_fingerprint` holds the status Chatwoot was last told or known to
hold. A pull or a webhook whose status is that one says nothing new (a status zapsync told
coming back, or a stale state): the conversation keeps its own, so a change made here and not
yet told is not undone. Another status is Chatwoot's own change (an agent's): taken, and
remembered as what Chatwoot holds, so it is not told back. A status set here (the
conversation API) differs from the ref's: the bridge's outbox pass (`push_statuses`) tells
Chatwoot (`toggle_status`), marking it told first, so Chatwoot's webhook of it reads as the
echo it is, and an outage only delays it."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from zapsync.bus.after_commit import publish_on_commit
from zapsync.bus.events import message_event, message_updated
from zapsync.connectors.chatwoot import ChatwootError, ChatwootRateLimited, ChatwootUnavailable
from zapsync.connectors.chatwoot.client import ChatwootClient
from zapsync.connectors.chatwoot.mapping import (
    PROVIDER,
    ChatwootConversation,
    ChatwootMessage,
    UnmappableRecord,
    map_contact,
    map_message,
)
from zapsync.connectors.chatwoot.paginators import BeforeIdPaginator
from zapsync.connectors.fingerprints import content_fingerprint
from zapsync.runtime.context import AppContext
from zapsync.services.ingest.messages import publish_conversations
from zapsync.services.integrations.contact_fields import CONTACT
from zapsync.services.integrations.contacts_pull import write_contacts
from zapsync.services.integrations.sync_runs import Counts
from zapsync.services.outbox.delivery import OutboxReport
from zapsync.store import channel_conversations as store
from zapsync.store import external_refs
from zapsync.store.conversations import set_preview_if_last
from zapsync.store.models import Integration
from zapsync.store.types import AnyRow, utcnow

log = structlog.get_logger(__name__)

CHANNEL_CONVERSATION = "channel_conversation"
CHANNEL_MESSAGE = "channel_message"
KEY_PREFIX = "chatwoot:"  # chat_key of a channel conversation; provider id of its messages
_PREVIEW = 200


def is_bridged(inbox_id: int | None, conversation: ChatwootConversation) -> bool:
    """Of the API inbox WhatsApp is mirrored into: the bridge's, not a channel's."""
    return inbox_id is not None and conversation.inbox_id == inbox_id


def channel_name(channel: str | None) -> str:
    """Chatwoot's `Channel::WebWidget` as `web_widget`; `other` when it names none."""
    if not channel:
        return "other"
    bare = channel.removeprefix("Channel::")
    return re.sub(r"(?<!^)(?=[A-Z])", "_", bare).lower()[:30] or "other"


def fingerprint_of(conversation: ChatwootConversation) -> str:
    """What a pull compares: a new message moves the last activity and the last message, so
    it counts."""
    return content_fingerprint(
        {
            "status": conversation.chatwoot_status,
            "labels": conversation.labels,
            "last_activity_at": conversation.last_activity_at,
            "last_message": conversation.last_message_id,
            "contact": conversation.contact_external_id,
            "channel": conversation.channel,
            "inbox_id": conversation.inbox_id,
        }
    )


@dataclass(frozen=True, slots=True)
class Applied:
    conversation_id: int
    created: bool
    messages: int  # stored now
    changed: int = 0  # stored before, updated now (edited, deleted)
    updated: bool = False  # the stored conversation's state changed (status, labels, ...)
    # The record's `updated_at` against the one applied last: OLDER is stale (kept as it was).
    freshness: external_refs.Freshness = external_refs.Freshness.UNKNOWN
    status_told: bool = False  # its status is the one Chatwoot was last told: not taken

    @property
    def stale(self) -> bool:
        return self.freshness is external_refs.Freshness.OLDER


async def known_ref(
    ctx: AppContext, integration: Integration, conversation: ChatwootConversation
) -> tuple[external_refs.Ref | None, datetime | None]:
    """The conversation's ref, if zapsync holds it (the fingerprint it was last pulled with,
    and the status Chatwoot was last told or known to hold), and the `updated_at` of the
    record it last applied."""
    org = integration.organization_id
    async with ctx.db.reads() as db:
        refs = await external_refs.refs_by_external(
            db, org, PROVIDER, CHANNEL_CONVERSATION, [conversation.external_id]
        )
        times = await external_refs.upstream_times(
            db, org, PROVIDER, CHANNEL_CONVERSATION, [conversation.external_id]
        )
    return refs.get(conversation.external_id), times.get(conversation.external_id)


async def pull_one(
    ctx: AppContext,
    integration: Integration,
    client: ChatwootClient,
    conversation: ChatwootConversation,
    raw: Mapping[str, Any],
    counts: Counts,
) -> None:
    """A pulled conversation of another channel: skipped when its fingerprint is the ref's,
    else stored with every page of its messages (created or updated)."""
    fingerprint = fingerprint_of(conversation)
    ref, held = await known_ref(ctx, integration, conversation)
    if ref is not None and ref.fingerprint == fingerprint:
        # A ref written before zapsync kept what Chatwoot holds: unchanged since the last
        # pull, so the status read now is Chatwoot's (a change made here since is told).
        adopt = ref.pushed_fingerprint is None
        moved = conversation.updated_at is not None and (
            held is None or conversation.updated_at > held
        )
        if adopt or moved:
            await _adopt(ctx, integration, conversation, status=adopt)
        counts.skipped += 1
        counts.count("other_channels")
        return
    messages: list[ChatwootMessage] = []
    async for page in client.message_pages(conversation.display_id, BeforeIdPaginator()):
        for item in page:
            try:
                messages.append(map_message(item))
            except (UnmappableRecord, TypeError, ValueError) as exc:
                counts.error(f"message {_id_of(item)}: {exc}")
    applied = await apply(
        ctx, integration, conversation, sender_of(raw), messages, fingerprint=fingerprint,
        updates=True,
    )  # fmt: skip
    if applied.created:
        counts.created += 1
    elif applied.stale:  # a webhook applied a newer record since this page was read
        counts.skipped += 1
        counts.count("stale")
    else:
        counts.updated += 1
    counts.count("other_channels")
    counts.count("channel_messages", applied.messages)
    if applied.changed:
        counts.count("channel_messages_changed", applied.changed)


async def _adopt(
    ctx: AppContext, integration: Integration, conversation: ChatwootConversation, *, status: bool
) -> None:
    """An unchanged record: its time held when newer than the ref's (nothing written when it
    is not), and with `status` its status as what Chatwoot holds."""
    org = integration.organization_id
    async with ctx.db.session() as db:
        freshness = await external_refs.take_upstream_time(
            db, org, PROVIDER, CHANNEL_CONVERSATION, conversation.external_id,
            conversation.updated_at,
        )  # fmt: skip
        if status and freshness is not external_refs.Freshness.OLDER:
            await external_refs.set_pushed(
                db, org, PROVIDER, CHANNEL_CONVERSATION,
                {conversation.external_id: conversation.status},
            )  # fmt: skip
        await db.commit()


async def apply(
    ctx: AppContext,
    integration: Integration,
    conversation: ChatwootConversation,
    sender: Mapping[str, Any] | None,
    messages: Sequence[ChatwootMessage],
    *,
    fingerprint: str | None,
    updates: bool = False,
) -> Applied:
    """Store the conversation (created or updated), its contact and the messages it does not
    hold yet, in one transaction: a thread is never left half written; with `updates`, the
    messages it holds take Chatwoot's edits and deletions too. Private notes and activity
    lines ("Conversation resolved") are not the customer's history: left out. The status is
    taken only when it is not the one Chatwoot was last told or known to hold (see above).

    A record older (`updated_at`) than the one applied last is stale: the conversation keeps
    its state, and only messages it did not hold (or their changes) are stored, its last
    message moving forward; with none, nothing is written at all. A newer record's time is
    kept with it, first in the transaction (on PostgreSQL the ref stays locked until it
    commits, so two records of one conversation apply in the order of their times)."""
    org = integration.organization_id
    kept = [m for m in messages if not m.private and m.direction is not None]
    chat_key = f"{KEY_PREFIX}{conversation.external_id}"
    async with ctx.db.session() as db:
        freshness = await external_refs.take_upstream_time(
            db, org, PROVIDER, CHANNEL_CONVERSATION, conversation.external_id,
            conversation.updated_at,
        )  # fmt: skip
        refs = await external_refs.refs_by_external(
            db, org, PROVIDER, CHANNEL_CONVERSATION, [conversation.external_id]
        )
        ref = refs.get(conversation.external_id)
        stale = ref is not None and freshness is external_refs.Freshness.OLDER
        if ref is not None and stale and not kept:
            return Applied(ref.internal_id, False, 0, freshness=freshness)  # nothing written
        created = ref is None
        told = ref.pushed_fingerprint if ref else None
        # Chatwoot's own change (or all zapsync knows of it): taken, and not told back.
        take_status = not stale and (told is None or told != conversation.status)
        contact_id = None if stale else await _contact_id(db, org, conversation, sender)
        before = await store.state_of(db, integration.id, chat_key)
        # Chatwoot's times are whole seconds: the id (ascending) tells messages of one apart.
        newest = max(kept, key=_order, default=None)
        last_at = _latest(conversation.last_activity_at, _when(newest) if newest else None)
        conversation_id = await store.upsert_conversation(
            db,
            organization_id=org,
            integration_id=integration.id,
            chat_key=chat_key,
            channel=channel_name(conversation.channel),
            contact_id=contact_id,
            name=_name_of(sender),
            status=conversation.status,
            labels=conversation.labels,
            unread_count=conversation.unread_count,
            last_message_at=last_at,
            last_message_preview=_preview(newest) if newest else None,
            preview_known=newest is not None,
            take_status=take_status,
            take_state=not stale,
        )
        if not stale:
            await external_refs.add_refs(
                db, org, PROVIDER, CHANNEL_CONVERSATION,
                [{"external_id": conversation.external_id, "internal_id": conversation_id}],
                keep_existing=True,
            )  # fmt: skip
            if created:  # the ref is new: its first time held now
                await external_refs.take_upstream_time(
                    db, org, PROVIDER, CHANNEL_CONVERSATION, conversation.external_id,
                    conversation.updated_at,
                )  # fmt: skip
            await external_refs.set_pulled(
                db, org, PROVIDER, CHANNEL_CONVERSATION, conversation.external_id, fingerprint
            )
        if take_status:
            await external_refs.set_pushed(
                db, org, PROVIDER, CHANNEL_CONVERSATION,
                {conversation.external_id: conversation.status},
            )  # fmt: skip
        updated = not created and await store.state_of(db, integration.id, chat_key) != before
        stored, changed = await _messages(db, org, conversation_id, kept, updates=updates)
        await publish_conversations(db, ctx.bus, org, {conversation_id})
        await db.commit()
    if created or stored or changed:
        log.info("chatwoot channel conversation stored", conversation_id=conversation_id,
                 channel=channel_name(conversation.channel), created=created,
                 messages=stored, changed=changed, stale=stale or None)  # fmt: skip
    return Applied(
        conversation_id, created, stored, changed, updated=updated, freshness=freshness,
        status_told=not created and not stale and not take_status,
    )  # fmt: skip


async def _contact_id(
    db: AsyncSession,
    org: int,
    conversation: ChatwootConversation,
    sender: Mapping[str, Any] | None,
) -> int | None:
    """The zapsync contact of the conversation's Chatwoot contact: the one the contacts pull
    made (its ref), else one made now from the conversation's sender through the same rules
    (a person zapsync knows by phone or e-mail is linked, not doubled)."""
    external_id = conversation.contact_external_id
    if external_id is None:
        return None
    refs = await external_refs.refs_by_external(db, org, PROVIDER, CONTACT, [external_id])
    if external_id in refs:
        return refs[external_id].internal_id
    if sender is None or str(sender.get("id")) != external_id:
        return None
    try:
        contact = map_contact(sender)
    except (UnmappableRecord, TypeError, ValueError):
        return None
    if not (contact.name or contact.email or contact.phone_e164 or contact.identifier):
        return None  # a bare id (a webhook's brief sender): nothing to make a person of
    await write_contacts(db, org, [contact], Counts())
    refs = await external_refs.refs_by_external(db, org, PROVIDER, CONTACT, [external_id])
    return refs[external_id].internal_id if external_id in refs else None


async def _messages(
    db: AsyncSession,
    org: int,
    conversation_id: int,
    messages: Sequence[ChatwootMessage],
    *,
    updates: bool,
) -> tuple[int, int]:
    """Store those without a ref, each with its ref: a second pull writes nothing. With
    `updates`, those with one take their changes. (stored, changed)."""
    if not messages:
        return 0, 0
    refs = await external_refs.refs_by_external(
        db, org, PROVIDER, CHANNEL_MESSAGE, [m.external_id for m in messages]
    )
    changed = 0
    if updates:
        held = {refs[m.external_id].internal_id: m for m in messages if m.external_id in refs}
        changed = await _changes(db, conversation_id, held)
    new = {m.external_id: m for m in messages if m.external_id not in refs}
    if not new:
        return 0, changed
    # Oldest first, so ids follow the thread's order where Chatwoot's seconds tie.
    ordered = sorted(new.values(), key=_order)
    inserted = await store.add_messages(db, [_row(org, conversation_id, m) for m in ordered])
    await external_refs.add_refs(
        db, org, PROVIDER, CHANNEL_MESSAGE,
        [{"external_id": row.provider_message_id.removeprefix(KEY_PREFIX),
          "internal_id": row.id} for row in inserted],
        keep_existing=True,
    )  # fmt: skip
    for row in inserted:
        publish_on_commit(db, message_event("new_message", row))
    return len(inserted), changed


async def _changes(
    db: AsyncSession, conversation_id: int, held: Mapping[int, ChatwootMessage]
) -> int:
    """Stored messages (by our id) take Chatwoot's record of them: deleted there, marked
    deleted here; another text, edited. Only what differs is written, and each message
    written is published as `message_updated`; how many were."""
    stored = await store.stored_messages(db, list(held))
    now = utcnow()
    changed = 0
    for message_id in sorted(stored):
        row, message = stored[message_id], held[message_id]
        if row.deleted_at is not None:
            continue  # deleted for good: a later record of it changes nothing
        written: AnyRow | None
        if message.deleted:
            written = await store.mark_deleted(db, message_id, now)
        elif message.body != row.body:
            written = await store.edit_body(db, message_id, message.body, now)
            if written is not None and message.body:
                # The chat list shows the new text when this is the conversation's last one.
                await set_preview_if_last(
                    db, conversation_id, written.sent_at, message.body[:_PREVIEW]
                )
        else:
            continue
        if written is not None:
            publish_on_commit(db, message_updated(written))
            changed += 1
    return changed


def _row(org: int, conversation_id: int, message: ChatwootMessage) -> dict[str, Any]:
    media = next((a for a in message.attachments if a.url), None)
    return {
        "organization_id": org,
        "session_id": None,
        "conversation_id": conversation_id,
        "provider_message_id": f"{KEY_PREFIX}{message.external_id}",
        "direction": message.direction,
        "sender": message.sender,
        "type": message.type.value,
        "raw_type": message.content_type,
        # A message first seen deleted: Chatwoot's placeholder is not what was written.
        "body": None if message.deleted else message.body,
        "media_url": media.url if media else None,
        "mime_type": media.mime_type if media else None,
        "is_voice_note": False,
        "ack": "delivered",  # it reached the helpdesk: there is no further state to follow
        "sent_at": _when(message),
        "deleted_at": utcnow() if message.deleted else None,
        "created_at": utcnow(),
    }


def _order(message: ChatwootMessage) -> tuple[datetime, int]:
    return _when(message), int(message.external_id)


def _when(message: ChatwootMessage | None) -> datetime:
    if message is None or message.created_at is None:
        return utcnow()
    return message.created_at


def _latest(*times: datetime | None) -> datetime | None:
    known = [t for t in times if t is not None]
    return max(known) if known else None


def _preview(message: ChatwootMessage) -> str | None:
    if message.deleted:
        return None
    text = message.body or (f"[{message.type.value}]" if message.attachments else None)
    return text[:_PREVIEW] if text else None


def sender_of(raw: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The contact a conversation payload names (`meta.sender`), for `apply`."""
    meta = raw.get("meta")
    sender = meta.get("sender") if isinstance(meta, Mapping) else None
    return sender if isinstance(sender, Mapping) else None


def _name_of(sender: Mapping[str, Any] | None) -> str | None:
    if sender is None:
        return None
    for key in ("name", "email", "phone_number"):
        value = sender.get(key)
        if isinstance(value, str) and value.strip():
            return value.strip()[:200]
    return None


def _id_of(raw: Any) -> str:
    return str(raw.get("id")) if isinstance(raw, Mapping) else "?"


async def any_status_to_push(ctx: AppContext, integration: Integration) -> bool:
    """Whether a channel conversation of the integration has a status Chatwoot was not told."""
    async with ctx.db.reads() as db:
        rows = await store.statuses_to_push(
            db, integration.organization_id, integration.id, PROVIDER, CHANNEL_CONVERSATION,
            limit=1,
        )  # fmt: skip
    return bool(rows)


async def push_statuses(
    ctx: AppContext, integration: Integration, client: ChatwootClient, report: OutboxReport
) -> None:
    """Channel conversations resolved (or reopened) here since Chatwoot was last told: told
    now, by the bridge's outbox pass. A Chatwoot that does not answer raises (the pass backs
    off); the status stays untold until a later pass."""
    org = integration.organization_id
    async with ctx.db.reads() as db:
        rows = await store.statuses_to_push(db, org, integration.id, PROVIDER, CHANNEL_CONVERSATION)
    for row in rows:
        # Marked told before Chatwoot is: its webhook of this very change then reads as the
        # echo it is, however soon it comes (and a webhook or pull that changed the ref
        # meanwhile, an agent's own change, wins: this row is left).
        if not await _told(ctx, org, row.external_id, was=row.told, now=row.status):
            continue
        try:
            await client.toggle_status(int(row.external_id), row.status)
            report.delivered += 1
        except (ChatwootUnavailable, ChatwootRateLimited):
            await _told(ctx, org, row.external_id, was=row.status, now=row.told)  # not told
            raise
        except ChatwootError as exc:  # the conversation is gone there: said, not retried
            log.warning("chatwoot refused a channel conversation's status",
                        conversation_id=row.conversation_id, reason=exc.reason)  # fmt: skip
            report.failed += 1
        else:
            log.info("chatwoot told a channel conversation's status",
                     conversation_id=row.conversation_id, status=row.status)  # fmt: skip


async def _told(ctx: AppContext, org: int, external_id: str, *, was: str, now: str) -> bool:
    async with ctx.db.session() as db:
        changed = await external_refs.replace_pushed(
            db, org, PROVIDER, CHANNEL_CONVERSATION, external_id, was=was, now=now
        )
        await db.commit()
    return changed
