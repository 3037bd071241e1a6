"""Reading and updating conversations, their messages and contacts, always within the
caller's organization (another organization's ids are 404, never 403: nothing leaks)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Generic, Literal, TypeVar, get_args

from sqlalchemy.ext.asyncio import AsyncSession

from zapsync.bus.after_commit import publish_on_commit
from zapsync.bus.events import Event
from zapsync.bus.memory import EventBus
from zapsync.domain.identity import phone_key
from zapsync.services.accounts import Principal
from zapsync.services.errors import Invalid, NotFound
from zapsync.services.ingest.messages import publish_conversations
from zapsync.store import conversations as conversations_store
from zapsync.store import inbox_reads as reads
from zapsync.store.db import reading
from zapsync.store.inbox_reads import SearchTerms
from zapsync.store.keyset import decode_cursor, encode_cursor
from zapsync.store.models import Contact, Conversation, Message
from zapsync.store.text import search_key

ConversationStatus = Literal["open", "pending", "resolved"]
STATUSES: tuple[str, ...] = get_args(ConversationStatus)
SEND_KIND = "gateway.send"  # the outbox kind of a message zapsync sends through a gateway


T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    items: list[T]
    next_cursor: str | None


@dataclass(frozen=True, slots=True)
class Delivered:
    """A stored message and, for an outgoing one that failed, why."""

    message: Message
    error: str | None


@dataclass(frozen=True, slots=True)
class MessagePage:
    messages: list[Delivered]  # oldest first
    next_before: int | None  # pass as `before` for the page of older messages
    has_more: bool


def delivered(message: Message, error: str | None) -> Delivered:
    return Delivered(message, error if message.ack == "failed" else None)


async def get_conversation(
    db: AsyncSession, principal: Principal, conversation_id: int, *, reading_only: bool = False
) -> Conversation:
    """The caller's conversation; `reading_only` when nothing is written after it in the same
    transaction (on SQLite it then takes no lock, see `store.db.reading`)."""
    if reading_only:
        await reading(db)
    conversation = await db.get(Conversation, conversation_id)
    if conversation is None or conversation.organization_id != principal.organization_id:
        raise NotFound(f"no conversation with id {conversation_id}")
    return conversation


async def get_contact(db: AsyncSession, principal: Principal, contact_id: int) -> Contact:
    await reading(db)  # only the contact's page reads it: nothing is written after
    contact = await db.get(Contact, contact_id)
    if contact is None or contact.organization_id != principal.organization_id:
        raise NotFound(f"no contact with id {contact_id}")
    return contact


def search_of(q: str) -> SearchTerms | None:
    """`q` as search terms; None for no filter (nothing but spaces). A NUL is refused: SQLite
    would read it as the end of the pattern (every row matches), PostgreSQL cannot take it."""
    if "\x00" in q:
        raise Invalid("q must not contain a NUL character")
    text = q.strip()
    if not text:
        return None
    digits = re.sub(r"\D", "", text)
    phone = phone_key(text) if len(digits) >= 8 and not any(c.isalpha() for c in text) else None
    return SearchTerms(text, search_key(text), digits, phone)


async def list_conversations(
    db: AsyncSession,
    principal: Principal,
    *,
    session_id: int | None = None,
    status: str | None = None,
    q: str | None = None,
    cursor: str | None = None,
    limit: int = 30,
) -> Page[tuple[Conversation, Contact | None]]:
    """Newest activity first; conversations without any message come last."""
    if status is not None and status not in STATUSES:
        raise Invalid(f"status must be one of {', '.join(STATUSES)}")
    search = search_of(q) if q is not None else None
    position = decode_cursor(cursor, datetimes=True) if cursor else None
    await reading(db)
    rows = await reads.conversation_rows(
        db,
        principal.organization_id,
        session_id=session_id,
        status=status,
        search=search,
        cursor=position,
        limit=limit + 1,
    )
    page = rows[:limit]
    next_cursor = None
    if len(rows) > limit:
        last = page[-1][0]
        next_cursor = encode_cursor(last.last_message_at, last.id)
    return Page(page, next_cursor)


async def with_contact(
    db: AsyncSession, conversation: Conversation
) -> tuple[Conversation, Contact | None]:
    """The conversation and its contact (a group has none)."""
    contact = await db.get(Contact, conversation.contact_id) if conversation.contact_id else None
    return conversation, contact


async def list_messages(
    db: AsyncSession,
    conversation: Conversation,
    *,
    before: int | None = None,
    page: int | None = None,
    limit: int = 50,
) -> MessagePage:
    """A page of messages going back in time from `before` (a message id), or by page number
    (1 = the newest); oldest first within the page."""
    if before is not None and page is not None:
        raise Invalid("give either before or page, not both")
    await reading(db)
    pivot = None
    if before is not None:
        pivot = await reads.message_position(db, conversation.id, before)
        if pivot is None:
            raise Invalid(f"message {before} is not in conversation {conversation.id}")
    elif page is not None and page > 1:
        # Page n starts after the last message of page n - 1: a position, not an OFFSET.
        pivot = await reads.position_back(db, conversation.id, (page - 1) * limit)
        if pivot is None:
            return MessagePage([], None, False)
    rows = await reads.message_rows(db, conversation.id, before=pivot, limit=limit + 1)
    newest_first = rows[:limit]
    has_more = len(rows) > limit
    failed = [m.id for m in newest_first if m.ack == "failed"]
    errors = await reads.failed_sends(db, failed, SEND_KIND)
    messages = [delivered(m, errors.get(m.id)) for m in reversed(newest_first)]
    next_before = newest_first[-1].id if has_more else None
    return MessagePage(messages, next_before, has_more)


async def mark_read(
    db: AsyncSession, bus: EventBus, principal: Principal, conversation_id: int
) -> Conversation:
    """Zero the unread count; `messages_read` goes out when something changed."""
    conversation = await get_conversation(db, principal, conversation_id)
    unread = conversation.unread_count
    if await conversations_store.zero_unread(db, conversation.id):
        publish_on_commit(
            db,
            Event(
                "messages_read",
                principal.organization_id,
                {
                    "conversation_id": conversation.id,
                    "session_id": conversation.session_id,
                    "unread_count": 0,
                    "marked_read": unread,  # how many were unread: the receipts to send
                    "user_id": principal.user_id,
                },
                conversation_id=conversation.id,
            ),
        )
    await db.commit()
    await db.refresh(conversation)
    return conversation


async def set_status(
    db: AsyncSession, bus: EventBus, principal: Principal, conversation_id: int, status: str
) -> Conversation:
    if status not in STATUSES:
        raise Invalid(f"status must be one of {', '.join(STATUSES)}")
    conversation = await get_conversation(db, principal, conversation_id)
    if conversation.status != status:
        conversation.status = status
        await db.flush()
        await publish_conversations(db, bus, principal.organization_id, {conversation.id})
    await db.commit()
    return conversation


async def set_labels(
    db: AsyncSession,
    bus: EventBus,
    principal: Principal,
    conversation_id: int,
    labels: Iterable[str],
) -> bool:
    """The conversation takes its helpdesk's labels (a set: kept sorted, without repeats);
    whether they changed."""
    conversation = await get_conversation(db, principal, conversation_id)
    wanted = sorted({str(label) for label in labels})
    if list(conversation.labels or []) == wanted:
        return False
    conversation.labels = wanted
    await db.flush()
    await publish_conversations(db, bus, principal.organization_id, {conversation.id})
    await db.commit()
    return True


async def list_contacts(
    db: AsyncSession,
    principal: Principal,
    *,
    q: str | None = None,
    cursor: str | None = None,
    limit: int = 50,
) -> Page[Contact]:
    """By name (case-insensitive), contacts without a name last."""
    search = search_of(q) if q is not None else None
    position = decode_cursor(cursor) if cursor else None
    await reading(db)
    rows = await reads.contact_rows(
        db, principal.organization_id, search=search, cursor=position, limit=limit + 1
    )
    page = rows[:limit]
    next_cursor = None
    if len(rows) > limit:
        last, sort_key = page[-1]
        # The cursor keeps the database's own lower(): SQLite's folds ASCII only, Python's all.
        next_cursor = encode_cursor(sort_key, last.id)
    return Page([c for c, _ in page], next_cursor)


async def conversations_of(db: AsyncSession, contact: Contact) -> list[Conversation]:
    """A contact's conversations (one per session it wrote to or was written from), newest
    activity first."""
    return await reads.conversations_of_contact(db, contact.id)
