"""Pull an integration's Chatwoot conversations and their recent messages: what a webhook
should have told zapsync and did not (Chatwoot tries each delivery once, issue #15920).

Conversations (every status, every page): a bridged conversation whose status changed in
Chatwoot since zapsync last knew takes it (updated), as a webhook would
(`agent_replies.take_bridged_state`); one changed here since is the bridge's to tell
Chatwoot (skipped, as is one in step); one of the bridged inbox that zapsync mirrored but
holds no ref of (its `source_id` names our conversation) is linked. A record older
(`updated_at`) than the one applied last, a webhook's that overtook the page, is stale:
skipped, changing nothing (counted `stale`); a newer one has its time held. A conversation
of Chatwoot's other channels (e-mail, web widget, another inbox) is stored as the
integration's, with its contact and messages, so the inbox shows a customer's whole history
(`channel_conversations`): created, updated when its fingerprint changed, skipped when not.

Messages: in the bridged conversations active since the cutoff, an agent's reply zapsync never
saw goes to WhatsApp as the webhook would have sent it (the reply's ref makes it once). The
cutoff is the later of the integration's creation and `REPLY_WINDOW` ago: an old reply, or one
written before zapsync was connected (another bridge may have delivered it), is never sent."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, TypeVar

import structlog
from sqlalchemy.exc import IntegrityError

from zapsync.connectors.chatwoot.client import ChatwootClient
from zapsync.connectors.chatwoot.errors import (
    ChatwootError,
    ChatwootRateLimited,
    ChatwootUnavailable,
)
from zapsync.connectors.chatwoot.mapping import (
    PROVIDER,
    ChatwootConversation,
    UnmappableRecord,
    map_conversation,
    map_message,
)
from zapsync.connectors.chatwoot.paginators import BeforeIdPaginator, PageNumberPaginator
from zapsync.runtime.context import AppContext
from zapsync.services.errors import ServiceError
from zapsync.services.integrations import channel_conversations as channels
from zapsync.services.integrations.agent_replies import (
    CONVERSATION,
    MESSAGE,
    STALE,
    send_reply,
    take_bridged_state,
)
from zapsync.services.integrations.bridge_mirror import SOURCE_PREFIX, written_by_zapsync
from zapsync.services.integrations.connections import client_for, config_of
from zapsync.services.integrations.sync_runs import Counts, IntegrationRun, RunResult
from zapsync.store import bridge as bridge_store
from zapsync.store import external_refs
from zapsync.store.external_refs import Ref
from zapsync.store.models import Integration
from zapsync.store.types import utcnow

log = structlog.get_logger(__name__)

CONVERSATIONS_KIND = "chatwoot_conversations_pull"
MESSAGES_KIND = "chatwoot_messages_pull"
REPLY_WINDOW = timedelta(hours=24)
_OUR_CONVERSATION = f"{SOURCE_PREFIX}conversation:"
T = TypeVar("T")


async def pull_conversations(
    ctx: AppContext, integration: Integration, *, trigger: str = "manual"
) -> RunResult:
    """Statuses of the bridged conversations brought in step; others counted."""
    inbox_id = config_of(integration).inbox_id
    async with IntegrationRun(ctx, integration, CONVERSATIONS_KIND, trigger) as run:
        paginator = PageNumberPaginator(int(run.resume_from.get("last_page", 0)) + 1)
        async with client_for(ctx, integration) as client:
            async for page in client.conversation_pages(paginator):
                for raw in page:
                    await _reconcile(ctx, run, integration, client, inbox_id, raw)
                async with ctx.db.session() as db:
                    await run.checkpoint(db, {"last_page": paginator.last_page_done})
                    await db.commit()
    assert run.result is not None
    return run.result


async def pull_messages(
    ctx: AppContext, integration: Integration, *, trigger: str = "manual"
) -> RunResult:
    """Agents' replies of the bridged conversations that never reached zapsync, sent now."""
    config = config_of(integration)
    # To the second: Chatwoot's times are whole seconds.
    cutoff = max(integration.created_at, utcnow() - REPLY_WINDOW).replace(microsecond=0)
    async with (
        IntegrationRun(ctx, integration, MESSAGES_KIND, trigger) as run,
        client_for(ctx, integration) as client,
    ):
        async for page in client.conversation_pages():
            for raw in page:
                conversation = _mapped(map_conversation, raw, run.counts, "conversation")
                if conversation is None or conversation.inbox_id != config.inbox_id:
                    continue
                active = conversation.last_activity_at
                if active is not None and active < cutoff:
                    continue  # nothing in it since the cutoff
                await _recent_replies(ctx, run, integration, client, conversation, cutoff)
        async with ctx.db.session() as db:
            await run.checkpoint(db, {"cutoff": cutoff.isoformat()})
            await db.commit()
    assert run.result is not None
    return run.result


def _mapped(mapper: Callable[[Any], T], raw: Any, counts: Counts, what: str) -> T | None:
    """A record mapped, or None with its error counted: one bad record does not stop a run."""
    try:
        return mapper(raw)
    except (UnmappableRecord, TypeError, ValueError) as exc:
        counts.error(f"{what} {_id_of(raw)}: {exc}")
        return None


async def _reconcile(
    ctx: AppContext,
    run: IntegrationRun,
    integration: Integration,
    client: ChatwootClient,
    inbox_id: int | None,
    raw: Any,
) -> None:
    counts = run.counts
    conversation = _mapped(map_conversation, raw, counts, "conversation")
    if conversation is None:
        return
    counts.synced += 1
    if not channels.is_bridged(inbox_id, conversation):
        try:
            await channels.pull_one(ctx, integration, client, conversation, raw, counts)
        except (ChatwootUnavailable, ChatwootRateLimited):
            raise  # the whole run waits for Chatwoot (it resumes from its last page)
        except (ChatwootError, IntegrityError) as exc:
            # One bad record does not stop a run: the next pull tries it again.
            counts.error(f"conversation {conversation.external_id}: {exc}"[:500])
        return
    org = integration.organization_id
    ref = await _ref_of(ctx, org, conversation)
    if ref is None:
        await _link(ctx, run, integration, conversation)
        return
    told = ref.pushed_fingerprint or "open"
    async with ctx.db.reads() as db:
        ours = await bridge_store.conversations_with_contacts(db, org, {ref.internal_id})
        times = await external_refs.upstream_times(
            db, org, PROVIDER, CONVERSATION, [conversation.external_id]
        )
    row = ours.get(ref.internal_id)
    if row is None:
        counts.skipped += 1
        return
    held, at = times.get(conversation.external_id), conversation.updated_at
    if held is not None and at is not None and at < held:
        counts.skipped += 1  # a webhook applied a newer record since this page was read
        counts.count("stale")
        return
    # A status that moved here since zapsync told Chatwoot is the bridge's to tell it.
    news = (conversation.status != told and row.status == told) or (
        sorted(set(conversation.labels)) != list(row.labels or [])
    )
    moved = at is not None and (held is None or at > held)
    if not (news or moved):
        counts.skipped += 1  # in step, its time held already: nothing written
        return
    why_not = await take_bridged_state(
        ctx, integration, conversation.display_id, status=conversation.status,
        labels=conversation.labels, updated_at=at, keep_status_changed_here=True,
    )  # fmt: skip
    if why_not is None:
        counts.updated += 1
    else:
        counts.skipped += 1
        if why_not == STALE:
            counts.count("stale")


async def _link(
    ctx: AppContext, run: IntegrationRun, integration: Integration, conversation: Any
) -> None:
    """A conversation of the bridged inbox zapsync holds no ref of: ours if its contact
    inbox's `source_id` names one of our conversations (a ref lost), else not ours."""
    source = conversation.source_id or ""
    ours = source.removeprefix(_OUR_CONVERSATION)
    if not source.startswith(_OUR_CONVERSATION) or not ours.isdigit():
        run.counts.skipped += 1
        run.counts.count("not_from_zapsync")
        return
    org = integration.organization_id
    async with ctx.db.session() as db:
        found = await bridge_store.conversations_with_contacts(db, org, {int(ours)})
        if int(ours) not in found:
            run.counts.skipped += 1
            run.counts.count("not_from_zapsync")
            return
        await external_refs.add_refs(
            db,
            org,
            PROVIDER,
            CONVERSATION,
            [{"external_id": conversation.external_id, "internal_id": int(ours),
              "pushed_fingerprint": conversation.status,
              "upstream_updated_at": conversation.updated_at}],
            keep_existing=True,
        )  # fmt: skip
        await db.commit()
    run.counts.count("linked")


async def _recent_replies(
    ctx: AppContext,
    run: IntegrationRun,
    integration: Integration,
    client: ChatwootClient,
    conversation: ChatwootConversation,
    cutoff: datetime,
) -> None:
    org = integration.organization_id
    ref = await _ref_of(ctx, org, conversation)
    if ref is None:
        return  # not bridged (yet): the conversations pull links it
    paginator = BeforeIdPaginator()
    async for page in client.message_pages(conversation.display_id, paginator):
        replies = []
        oldest: datetime | None = None
        for raw in page:
            message = _mapped(map_message, raw, run.counts, "message")
            if message is None:
                continue
            if message.created_at is not None and (oldest is None or message.created_at < oldest):
                oldest = message.created_at
            if message.created_at is not None and message.created_at < cutoff:
                continue
            if message.reaches_whatsapp and not written_by_zapsync(message.source_id):
                replies.append(message)
        async with ctx.db.reads() as db:
            known = await external_refs.refs_by_external(
                db, org, PROVIDER, MESSAGE, [m.external_id for m in replies]
            )
        for message in replies:
            run.counts.synced += 1
            if message.external_id in known:
                run.counts.skipped += 1
                continue
            try:
                queued = await send_reply(ctx, integration, ref.internal_id, message)
            except ServiceError as exc:
                run.counts.error(f"reply {message.external_id}: {exc.detail}")
                continue
            if queued:
                run.counts.created += 1
                log.info("missed chatwoot reply sent", message_id=message.external_id,
                         conversation_id=ref.internal_id)  # fmt: skip
            else:
                run.counts.skipped += 1
        if oldest is not None and oldest < cutoff:
            return  # older pages are all before the cutoff


async def _ref_of(ctx: AppContext, org: int, conversation: ChatwootConversation) -> Ref | None:
    async with ctx.db.reads() as db:
        refs = await external_refs.refs_by_external(
            db, org, PROVIDER, CONVERSATION, [conversation.external_id]
        )
    return refs.get(conversation.external_id)


def _id_of(raw: Any) -> str:
    return str(raw.get("id")) if isinstance(raw, dict) else "?"
