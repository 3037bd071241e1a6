"""The bridge's way into Chatwoot: every message of a bridged WhatsApp session is mirrored into
the integration's API inbox, in order, once.

The queue is the messages table itself: a message of a bridged session that holds no Chatwoot
ref is still to mirror, and writing its ref (with Chatwoot's message id) is what marks it done,
in the transaction after Chatwoot took it. So an outage or a restart delays the mirror and
loses nothing; a message that came from Chatwoot (an agent's reply) got its ref when it was
queued, and is never mirrored back. Each conversation is mirrored once (contact, contact inbox
with a stable `source_id`, conversation: refs too), history included on the first link. The
customer's messages go in as `incoming`, those sent from the phone or zapsync as `outgoing`;
a message's file goes as an attachment (`bridge_media.py`). A conversation resolved or
reopened here is told to Chatwoot the same way: its ref holds the status Chatwoot was last
told (or told zapsync), and a pass tells it those that differ. The same pass tells Chatwoot
the statuses set here of the integration's conversations of other channels (e-mail, web
widget: `channel_conversations.push_statuses`, refs of their own kind), whether or not the
integration bridges a session.

The pass is an outbox kind (`services/outbox/kinds.py`): the outbox worker runs it at start,
when a message is stored, and on its poll; a Chatwoot that is down is retried with backoff."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import structlog

from zapsync.connectors.chatwoot import (
    ChatwootClient,
    ChatwootContactTaken,
    ChatwootError,
    ChatwootRateLimited,
    ChatwootUnavailable,
)
from zapsync.connectors.chatwoot.mapping import PROVIDER
from zapsync.domain.backoff import backoff
from zapsync.runtime.context import AppContext
from zapsync.services.errors import Conflict
from zapsync.services.integrations import channel_conversations as channels
from zapsync.services.integrations.bridge_media import attachment_of
from zapsync.services.integrations.connections import client_for, config_of
from zapsync.services.integrations.contact_fields import CONTACT, pushed_fingerprint
from zapsync.services.outbox.delivery import OutboxReport
from zapsync.services.work_lease import WorkLease
from zapsync.store import bridge as store
from zapsync.store import external_refs
from zapsync.store import integrations as integration_store
from zapsync.store.models import Integration
from zapsync.store.types import AnyRow

log = structlog.get_logger(__name__)

KIND = "chatwoot_mirror"
MESSAGE = "message"
CONVERSATION = "conversation"
BATCH = 100
SOURCE_PREFIX = "zapsync:"  # the `source_id` of what zapsync writes into Chatwoot
BACKOFF_BASE = 2.0
CONNECTED = "connected"
UNAVAILABLE = "unavailable"  # Chatwoot does not answer: the bridge retries with backoff
BACKOFF_CAP = 300.0


def message_source_id(message_id: int) -> str:
    return f"{SOURCE_PREFIX}message:{message_id}"


def conversation_source_id(conversation_id: int) -> str:
    """The contact inbox's `source_id`: the same chat always gets the same one."""
    return f"{SOURCE_PREFIX}conversation:{conversation_id}"


def written_by_zapsync(source_id: str | None) -> bool:
    return bool(source_id) and str(source_id).startswith(SOURCE_PREFIX)


@dataclass
class _Pause:
    failures: int = 0
    until: float = 0.0  # time.monotonic()


# Per process: a restart tries again at once, which is what an operator restarting wants.
_paused: dict[int, _Pause] = {}


async def mirror_due(ctx: AppContext) -> OutboxReport:
    """One pass over every bridged integration: mirror what is not in Chatwoot yet (and, of
    any integration, the channel conversations' statuses it was not told)."""
    report = OutboxReport()
    async with ctx.db.reads() as db:
        integrations = await integration_store.all_integrations(db, PROVIDER)
    for integration in integrations:
        pause = _paused.get(integration.id)
        if pause is not None and pause.until > time.monotonic():
            continue
        if not bridges(integration) and not await channels.any_status_to_push(ctx, integration):
            continue
        try:
            await mirror_integration(ctx, integration, report)
        except Conflict:
            continue  # another runner mirrors it now
    return report


def bridges(integration: Integration) -> bool:
    """Whether the integration mirrors sessions into an inbox of its Chatwoot."""
    config = config_of(integration)
    return config.inbox_id is not None and bool(config.session_ids)


async def any_to_mirror(ctx: AppContext) -> bool:
    """False when no organization has a Chatwoot integration: a pass would find nothing."""
    async with ctx.db.reads() as db:
        return await integration_store.any_integration(db, PROVIDER)


async def mirror_integration(
    ctx: AppContext, integration: Integration, report: OutboxReport
) -> None:
    """One integration's pass, its health shown; Conflict when another runner holds it. A
    Chatwoot that does not answer pauses the bridge (backoff) and is counted as retried."""
    try:
        await _mirror(ctx, integration, report)
    except (ChatwootUnavailable, ChatwootRateLimited) as exc:
        _pause(integration.id, exc.reason)
        report.retried += 1
        report.errors.append(f"integration {integration.id}: {exc.reason}")
        await _show_health(ctx, integration, UNAVAILABLE, exc.reason)
    else:
        await _show_health(ctx, integration, CONNECTED, None)


async def _show_health(
    ctx: AppContext, integration: Integration, status: str, error: str | None
) -> None:
    """The integration shows whether its Chatwoot answers (and why not), written only when
    that changes: the page and `GET /integrations` say the bridge is waiting, not silent."""
    if (integration.status, integration.last_error) == (status, error):
        return
    async with ctx.db.session() as db:
        await integration_store.set_health(db, integration.id, status, error)
        await db.commit()
    log.info("chatwoot bridge health", integration_id=integration.id, status=status,
             reason=error)  # fmt: skip


async def seconds_until_next(ctx: AppContext) -> float | None:
    """Until a paused integration is tried again; None when none waits (new messages wake)."""
    now = time.monotonic()
    waits = [p.until - now for p in _paused.values() if p.until > now]
    return max(min(waits), 0.0) if waits else None


def _pause(integration_id: int, reason: str) -> None:
    pause = _paused.setdefault(integration_id, _Pause())
    pause.failures += 1
    delay = backoff(BACKOFF_BASE, pause.failures, cap=BACKOFF_CAP).total_seconds()
    pause.until = time.monotonic() + delay
    log.warning("chatwoot bridge paused", integration_id=integration_id, reason=reason,
                retry_in_s=round(delay, 1), failures=pause.failures)  # fmt: skip


async def _mirror(ctx: AppContext, integration: Integration, report: OutboxReport) -> None:
    lease = WorkLease(ctx, f"integration:{integration.id}:{KIND}", busy="mirroring")
    await lease.acquire(wait=False)
    try:
        async with client_for(ctx, integration) as client:
            mirror = _Mirror(ctx, integration, client, report)
            await mirror.run()
        _paused.pop(integration.id, None)
    finally:
        await lease.release()


class _Mirror:
    def __init__(
        self,
        ctx: AppContext,
        integration: Integration,
        client: ChatwootClient,
        report: OutboxReport,
    ) -> None:
        self.ctx = ctx
        self.integration = integration
        self.org = integration.organization_id
        self.config = config_of(integration)
        self.inbox_id = int(self.config.inbox_id or 0)
        self.client = client
        self.report = report
        self.display_ids: dict[int, int | None] = {}  # our conversation id -> Chatwoot's

    async def run(self) -> None:
        if bridges(self.integration):
            await self._messages()
            await self._statuses()
        await channels.push_statuses(self.ctx, self.integration, self.client, self.report)

    async def _statuses(self) -> None:
        """Conversations resolved (or reopened) here since Chatwoot was last told: told now."""
        async with self.ctx.db.reads() as db:
            rows = await store.statuses_to_push(db, self.org, PROVIDER)
        for row in rows:
            # Marked told before Chatwoot is: its webhook of this very change then reads as
            # the echo it is, however soon it comes (and a webhook that changed the ref
            # meanwhile, an agent's own change, wins: this row is left).
            if not await self._told(row.external_id, was=row.told, now=row.status):
                continue
            try:
                await self.client.toggle_status(int(row.external_id), row.status)
                self.report.delivered += 1
            except (ChatwootUnavailable, ChatwootRateLimited):
                await self._told(row.external_id, was=row.status, now=row.told)  # not told
                raise
            except ChatwootError as exc:  # the conversation is gone there: said, not retried
                log.warning("chatwoot refused a status", conversation_id=row.conversation_id,
                            reason=exc.reason)  # fmt: skip
                self.report.failed += 1

    async def _told(self, external_id: str, *, was: str, now: str) -> bool:
        async with self.ctx.db.session() as db:
            changed = await external_refs.replace_pushed(
                db, self.org, PROVIDER, CONVERSATION, external_id, was=was, now=now
            )
            await db.commit()
        return changed

    async def _messages(self) -> None:
        after = 0
        while True:
            async with self.ctx.db.reads() as db:
                messages = await store.messages_to_mirror(
                    db, self.org, PROVIDER, self.config.session_ids, after, BATCH
                )
                conversations = await store.conversations_with_contacts(
                    db, self.org, {m.conversation_id for m in messages}
                )
            if not messages:
                return
            self.report.due += len(messages)
            for message in messages:
                await self._mirror_message(message, conversations.get(message.conversation_id))
                after = message.id
            if len(messages) < BATCH:
                return

    async def _mirror_message(self, message: AnyRow, conversation: AnyRow | None) -> None:
        if conversation is None or conversation.is_group or message.deleted_at is not None:
            await self._mark(message.id, f"skipped:{message.id}")
            self.report.skipped += 1
            return
        display_id = await self._conversation(conversation)
        attachment = await attachment_of(self.ctx, message)
        content = message.body or message.caption
        if attachment is None:
            content = content or _placeholder(message)
        try:
            created = await self.client.create_message(
                display_id,
                content,
                message_type="incoming" if message.direction == "in" else "outgoing",
                source_id=message_source_id(message.id),
                attachments=(attachment,) if attachment is not None else (),
            )
        except (ChatwootUnavailable, ChatwootRateLimited):
            raise
        except ChatwootError as exc:
            # Refused for good (a conversation deleted in Chatwoot, a body it will not take):
            # marked so the bridge goes on, and said in the log.
            log.warning("chatwoot refused a mirrored message", message_id=message.id,
                        reason=exc.reason)  # fmt: skip
            await self._mark(message.id, f"refused:{message.id}")
            self.report.failed += 1
            return
        await self._mark(message.id, str(created.get("id")))
        self.report.delivered += 1

    async def _mark(self, message_id: int, external_id: str) -> None:
        async with self.ctx.db.session() as db:
            await external_refs.add_refs(
                db,
                self.org,
                PROVIDER,
                MESSAGE,
                [{"external_id": external_id, "internal_id": message_id}],
            )
            await db.commit()

    async def _conversation(self, conversation: AnyRow) -> int:
        """Chatwoot's display id of our conversation, mirroring it the first time."""
        known = self.display_ids.get(conversation.id)
        if known is not None:
            return known
        async with self.ctx.db.reads() as db:
            refs = await external_refs.refs_by_internal(
                db, self.org, PROVIDER, CONVERSATION, [conversation.id]
            )
        ref = refs.get(conversation.id)
        if ref is not None:
            display_id = int(ref.external_id)
        else:
            contact_id = await self._contact(conversation)
            source_id = conversation_source_id(conversation.id)
            await self.client.create_contact_inbox(contact_id, self.inbox_id, source_id)
            created = await self.client.create_conversation(
                inbox_id=self.inbox_id, contact_id=contact_id, source_id=source_id
            )
            display_id = int(created["id"])
            async with self.ctx.db.session() as db:
                await external_refs.add_refs(
                    db,
                    self.org,
                    PROVIDER,
                    CONVERSATION,
                    [{"external_id": str(display_id), "internal_id": conversation.id}],
                )
                await db.commit()
            log.info("conversation mirrored into chatwoot", conversation_id=conversation.id,
                     display_id=display_id)  # fmt: skip
        self.display_ids[conversation.id] = display_id
        return display_id

    async def _contact(self, conversation: AnyRow) -> int:
        """Chatwoot's id of the conversation's contact: its ref, the one Chatwoot holds with
        the same phone (linked), or a new one."""
        if conversation.contact_id is not None:
            async with self.ctx.db.reads() as db:
                refs = await external_refs.refs_by_internal(
                    db, self.org, PROVIDER, CONTACT, [conversation.contact_id]
                )
            if conversation.contact_id in refs:
                return int(refs[conversation.contact_id].external_id)
        name = conversation.contact_name or conversation.name or conversation.phone_e164
        fields = {"name": name, "phone_number": conversation.phone_e164,
                  "email": conversation.email}  # fmt: skip
        fields = {k: v for k, v in fields.items() if v}
        try:
            created = await self.client.create_contact(**fields)
            inner = created.get("contact")
            record: dict[str, Any] | None = inner if isinstance(inner, dict) else created
        except ChatwootContactTaken:
            record = await self.client.find_contact(
                phone_number=conversation.phone_e164, email=conversation.email
            )
        if record is None:
            raise ChatwootError(f"no Chatwoot contact for conversation {conversation.id}")
        contact_id = int(record["id"])
        if conversation.contact_id is not None:
            async with self.ctx.db.session() as db:
                pushed = pushed_fingerprint(name, conversation.email, conversation.phone_e164)
                await external_refs.add_refs(
                    db,
                    self.org,
                    PROVIDER,
                    CONTACT,
                    [{"external_id": str(contact_id), "internal_id": conversation.contact_id,
                      "pushed_fingerprint": pushed}],
                    keep_existing=True,  # Chatwoot's contact_created webhook may map it first
                )  # fmt: skip
                await db.commit()
        return contact_id


def _placeholder(message: AnyRow) -> str:
    """What stands for a message without text (media zapsync could not attach)."""
    label = {"image": "imagem", "audio": "áudio", "video": "vídeo", "document": "documento",
             "sticker": "figurinha", "location": "localização", "contact": "contato"}  # fmt: skip
    name = f" {message.file_name}" if message.file_name else ""
    return f"[{label.get(message.type, message.type)}{name}]"
