"""What Chatwoot's agents do in a bridged conversation, applied in zapsync the same way whether
a webhook told us or a pull found it (a webhook Chatwoot never retried, issue #15920):

- an agent's reply goes to WhatsApp through the outbox, each attachment a message of its own
  (the text as the first one's caption); the reply's ref is written in the same transaction,
  so a reply seen twice (a duplicate delivery, a webhook and a pull) is sent once;
- Chatwoot's record of the conversation (`take_bridged_state`: status and labels, in one
  transaction) is taken unless it is older than the one applied last (its `updated_at`: a
  webhook delivered out of order, or a pull's page a webhook overtook), which is stale; a
  status set in Chatwoot becomes the conversation's and is remembered as what Chatwoot holds,
  so the bridge does not tell it back; the status zapsync told it, coming back, is an echo,
  and is not applied again."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import structlog
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from zapsync.connectors.chatwoot.mapping import PROVIDER, ChatwootMessage
from zapsync.domain.gateway import MessageType
from zapsync.domain.outgoing import OutgoingMessage
from zapsync.runtime.context import AppContext
from zapsync.security.urls import url_policy
from zapsync.services.accounts import Principal
from zapsync.services.errors import NotFound
from zapsync.services.inbox import conversations as inbox
from zapsync.services.inbox.sending import queue_send
from zapsync.services.ingest.messages import publish_conversations
from zapsync.store import external_refs
from zapsync.store.external_refs import Freshness
from zapsync.store.models import Integration, Message

log = structlog.get_logger(__name__)

CONVERSATION = "conversation"
MESSAGE = "message"
_MEDIA_TYPES = {MessageType.IMAGE, MessageType.AUDIO, MessageType.VIDEO, MessageType.DOCUMENT}
# Why a conversation event changed nothing (WebhookOutcome.ignored).
STALE = "stale"  # older than the record applied last: delivered out of order
ECHO = "echo"  # the status zapsync told Chatwoot, coming back
UNCHANGED = "unchanged"
NOT_BRIDGED = "conversation not bridged"


def acting_for(integration: Integration) -> Principal:
    """Who acts for Chatwoot: the integration's organization, as its system."""
    return Principal.system(integration.organization_id)


async def conversation_of(db: AsyncSession, org: int, display_id: int | None) -> int | None:
    """Our conversation a Chatwoot conversation mirrors, if it is a bridged one."""
    if display_id is None:
        return None
    refs = await external_refs.refs_by_external(db, org, PROVIDER, CONVERSATION, [str(display_id)])
    ref = refs.get(str(display_id))
    return ref.internal_id if ref else None


async def send_reply(
    ctx: AppContext, integration: Integration, conversation_id: int, message: ChatwootMessage
) -> int:
    """Queue the reply's parts; how many were queued (0: it had been seen already). A part
    the outbox refuses (a media URL it will not fetch) raises ServiceError."""
    queued = 0
    for position, part in enumerate(_outgoing(message)):
        # The first part carries the ref of Chatwoot's message; the others their own.
        external_id = message.external_id if position == 0 else f"{message.external_id}:{position}"
        if not await _send(ctx, integration, conversation_id, part, external_id):
            return queued
        queued += 1
    return queued


async def take_bridged_state(
    ctx: AppContext,
    integration: Integration,
    display_id: int,
    *,
    status: str | None,
    labels: Sequence[Any] | None,
    updated_at: datetime | None,
    status_changed: bool = False,
    keep_status_changed_here: bool = False,
) -> str | None:
    """A bridged conversation takes Chatwoot's record of it (a webhook's, or a pull's), in one
    transaction: None when it changed, else why not (STALE, ECHO, UNCHANGED, NOT_BRIDGED).

    - Older (`updated_at`) than the record applied last: stale, nothing written. A newer one
      has its time kept, first, in the same transaction (on PostgreSQL the ref's row is locked
      until it commits, so two records of one conversation apply in the order of their times).
    - The status: the one zapsync told Chatwoot (its ref's `pushed_fingerprint`; none yet is
      Chatwoot's first, open) is not applied: coming back in a record that says the status
      changed (`status_changed`), it is an echo, and applying it late would undo a change made
      here meanwhile. Another is Chatwoot's own: taken, and remembered as what
      Chatwoot holds, so the bridge does not tell it back. With `keep_status_changed_here`
      (the pull), a conversation whose status moved here since Chatwoot was told keeps it: the
      bridge's to tell Chatwoot.
    - The labels (Chatwoot's alone, zapsync never edits them) are taken as a set."""
    org = integration.organization_id
    external_id = str(display_id)
    async with ctx.db.session() as db:
        freshness = await external_refs.take_upstream_time(
            db, org, PROVIDER, CONVERSATION, external_id, updated_at
        )
        if freshness is Freshness.OLDER:
            return STALE
        ref = (
            await external_refs.refs_by_external(db, org, PROVIDER, CONVERSATION, [external_id])
        ).get(external_id)
        if ref is None:
            return NOT_BRIDGED
        try:
            conversation = await inbox.get_conversation(
                db, acting_for(integration), ref.internal_id
            )
        except NotFound:
            return NOT_BRIDGED
        told = ref.pushed_fingerprint or "open"
        changed = echo = False
        if status is not None:
            if status == told:
                # Only a status zapsync told (or learnt) can come back; none held yet is not.
                echo = ref.pushed_fingerprint is not None
            elif not (keep_status_changed_here and conversation.status != told):
                # What Chatwoot holds now: the bridge must not tell it back (no echo).
                await external_refs.set_pushed(
                    db, org, PROVIDER, CONVERSATION, {external_id: status}
                )
                if conversation.status != status:
                    conversation.status = status
                    changed = True
        if labels is not None:
            wanted = sorted({str(label) for label in labels})
            if list(conversation.labels or []) != wanted:
                conversation.labels = wanted
                changed = True
        if changed:
            await db.flush()
            await publish_conversations(db, ctx.bus, org, {conversation.id})
        await db.commit()
    if changed:
        return None
    return ECHO if is_echo(echo, status_changed, freshness) else UNCHANGED


def is_echo(status_told: bool, status_changed: bool, freshness: Freshness) -> bool:
    """A change to the status zapsync told, not applied: its echo. The same record again (a
    repeated delivery, or a status change's `conversation_updated` twin) is merely unchanged."""
    return status_told and status_changed and freshness is not Freshness.SAME


def _outgoing(message: ChatwootMessage) -> list[OutgoingMessage]:
    media = [a for a in message.attachments if a.url and a.type in _MEDIA_TYPES]
    if not media:
        return [OutgoingMessage(type="text", content=message.body or "")]
    parts = []
    for position, attachment in enumerate(media):
        parts.append(
            OutgoingMessage(
                type=attachment.type.value,  # type: ignore[arg-type]
                url=attachment.url,
                caption=message.body if position == 0 else None,
                mime_type=attachment.mime_type,
                file_name=(attachment.url or "").rsplit("/", 1)[-1].split("?", 1)[0] or None,
            )
        )
    return parts


async def _send(
    ctx: AppContext,
    integration: Integration,
    conversation_id: int,
    part: OutgoingMessage,
    external_id: str,
) -> bool:
    """Queue one part with its ref in one transaction; False when the ref was there already
    (the same reply, applied meanwhile)."""
    org = integration.organization_id

    async def ref_it(db: AsyncSession, stored: Message) -> None:
        await external_refs.add_refs(
            db, org, PROVIDER, MESSAGE, [{"external_id": external_id, "internal_id": stored.id}]
        )
        await db.flush()

    async with ctx.db.session() as db:
        try:
            await queue_send(
                db,
                ctx.bus,
                acting_for(integration),
                conversation_id,
                part,
                url_policy=url_policy(ctx.settings),
                also=ref_it,
            )
        except IntegrityError:
            await db.rollback()
            return False
    return True
