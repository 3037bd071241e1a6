"""Queries of the bridge that mirrors WhatsApp conversations into a helpdesk: the messages of
bridged sessions not mirrored yet (no ref held for them), and the conversations and contacts
they belong to. Each takes the caller's session and never commits."""

from __future__ import annotations

from collections.abc import Collection, Sequence

from sqlalchemy import and_, exists, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from zapsync.store.models import Contact, Conversation, ExternalRef, Message
from zapsync.store.types import AnyRow


async def messages_to_mirror(
    db: AsyncSession,
    organization_id: int,
    provider: str,
    session_ids: Sequence[int],
    after_id: int,
    limit: int,
) -> list[AnyRow]:
    """Messages of the sessions after `after_id`, in id order, that hold no ref of
    `provider` (not mirrored yet, and not one that came from the helpdesk)."""
    if not session_ids:
        return []
    mirrored = exists().where(
        ExternalRef.organization_id == organization_id,
        ExternalRef.provider == provider,
        ExternalRef.entity_type == "message",
        ExternalRef.internal_id == Message.id,
    )
    stmt = (
        select(
            Message.id,
            Message.conversation_id,
            Message.direction,
            Message.sender,
            Message.type,
            Message.body,
            Message.caption,
            Message.media_url,
            Message.mime_type,
            Message.file_name,
            Message.deleted_at,
        )
        .where(
            Message.session_id.in_(list(session_ids)),
            Message.id > after_id,
            ~mirrored,
        )
        .order_by(Message.id)
        .limit(limit)
    )
    return list((await db.execute(stmt)).all())


async def conversations_with_contacts(
    db: AsyncSession, organization_id: int, conversation_ids: Collection[int]
) -> dict[int, AnyRow]:
    """(id, session_id, contact_id, name, is_group, status, labels, phone_e164, contact_name,
    email) of the conversations, by id."""
    if not conversation_ids:
        return {}
    stmt = (
        select(
            Conversation.id,
            Conversation.session_id,
            Conversation.contact_id,
            Conversation.name,
            Conversation.is_group,
            Conversation.status,
            Conversation.labels,
            Contact.phone_e164,
            Contact.name.label("contact_name"),
            Contact.email,
        )
        .outerjoin(Contact, Contact.id == Conversation.contact_id)
        .where(
            Conversation.organization_id == organization_id,
            Conversation.id.in_(sorted(conversation_ids)),
        )
    )
    return {row.id: row for row in (await db.execute(stmt)).all()}


async def statuses_to_push(
    db: AsyncSession, organization_id: int, provider: str, limit: int = 200
) -> list[AnyRow]:
    """(conversation_id, status, external_id, told) of the mirrored conversations whose status
    is not the one the helpdesk was last told (`told`: a conversation ref's
    `pushed_fingerprint`; none yet means the helpdesk's own first status, open)."""
    told = func.coalesce(ExternalRef.pushed_fingerprint, "open")
    stmt = (
        select(
            Conversation.id.label("conversation_id"),
            Conversation.status,
            ExternalRef.external_id,
            told.label("told"),
        )
        .join(
            Conversation,
            and_(
                Conversation.id == ExternalRef.internal_id,
                Conversation.organization_id == organization_id,
            ),
        )
        .where(
            ExternalRef.organization_id == organization_id,
            ExternalRef.provider == provider,
            ExternalRef.entity_type == "conversation",
            told != Conversation.status,
        )
        .order_by(Conversation.id)
        .limit(limit)
    )
    return list((await db.execute(stmt)).all())
