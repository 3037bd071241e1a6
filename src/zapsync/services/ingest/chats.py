"""Which contact and conversation a batch of chats belongs to, in a few statements per batch.

A chat is keyed per session by `chat_key` (the person's phone key, else their lid, else the
group JID), and a person has one conversation per session whatever JID a message came under:
a conversation is found by its key or by its contact. The rare repairs (a lid learning its
phone, two records of one person) go through `contact_links`, row by row.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from zapsync.bus.memory import EventBus
from zapsync.domain.identity import (
    InvalidJid,
    JidKind,
    identity_of,
    is_status_broadcast,
    parse_jid,
)
from zapsync.services.ingest.contacts import (
    ContactKeys,
    link_contact,
    merge_conversations,
    phone_jid_of,
)
from zapsync.store import contacts as contact_store
from zapsync.store import conversations as conversation_store
from zapsync.store.text import clip, search_key


@dataclass(frozen=True, slots=True)
class ChatTarget:
    """A chat as zapsync keys it."""

    chat_key: str
    chat_jid: str  # canonical JID to send to: the phone JID when known
    is_group: bool
    phone: str | None
    lid: str | None
    phone_jid: str | None
    name: str | None = None
    unread_count: int = 0

    @property
    def is_person(self) -> bool:
        return not self.is_group and (self.phone is not None or self.lid is not None)


@dataclass(frozen=True, slots=True)
class ResolvedChat:
    conversation_id: int
    contact_id: int | None
    created: bool


def target_of(
    jid: str, alt_jid: str | None = None, *, name: str | None = None, unread_count: int = 0
) -> ChatTarget | None:
    """The key of the chat `jid` names; None for the Status pseudo-chat and for garbage."""
    target = _keyed(jid, alt_jid)
    if target is None or (not name and unread_count <= 0):
        return target
    return replace(target, name=clip(name, 200), unread_count=max(unread_count, 0))


def stored_target(target: ChatTarget | None, *, skip_groups: bool) -> ChatTarget | None:
    """The one rule of which chats are stored, for the import, webhooks and the sandbox:
    never the Status pseudo-chat nor garbage (`target_of` gives None), and no group when
    `ZAPSYNC_SKIP_GROUPS` is on."""
    if target is None or (skip_groups and target.is_group):
        return None
    return target


def chat_is_stored(jid: str | None, *, skip_groups: bool) -> bool:
    """The same rule for an event that names only its chat (an ack, an edit, a deletion): an
    ack for a status nobody stores would otherwise wait in `pending_acks` forever. An event
    that names no chat may concern a stored message."""
    if jid is None or not jid:
        return True
    if is_status_broadcast(jid):
        return False
    try:
        kind = parse_jid(jid).kind
    except InvalidJid:
        return True  # a chat written oddly may still hold the message: let the lookup tell
    return not (skip_groups and kind is JidKind.GROUP)


# Reading a phone number costs more than storing its message; the same few chats recur.
@lru_cache(maxsize=4096)
def _keyed(jid: str, alt_jid: str | None) -> ChatTarget | None:
    if is_status_broadcast(jid):
        return None
    try:
        identity = identity_of(jid, alt_jid)
        primary = parse_jid(jid)
    except InvalidJid:
        return None
    phone_jid = phone_jid_of(jid, alt_jid) if identity.phone_e164 else None
    return ChatTarget(
        chat_key=identity.chat_key,
        chat_jid=phone_jid or primary.canonical,
        is_group=identity.is_group or primary.kind is JidKind.GROUP,
        phone=identity.phone_e164,
        lid=identity.lid,
        phone_jid=phone_jid,
    )


def _combine(known: ChatTarget | None, more: ChatTarget) -> ChatTarget:
    if known is None:
        return more
    return replace(
        known,
        lid=known.lid or more.lid,
        phone_jid=known.phone_jid or more.phone_jid,
        name=known.name or more.name,
        unread_count=max(known.unread_count, more.unread_count),
    )


async def resolve_chats(
    db: AsyncSession,
    *,
    organization_id: int,
    session_id: int,
    targets: Iterable[ChatTarget],
    bus: EventBus | None = None,
) -> dict[str, ResolvedChat]:
    """The conversation (created when new) of every target, keyed by the target's chat_key."""
    merged: dict[str, ChatTarget] = {}
    for target in targets:
        merged[target.chat_key] = _combine(merged.get(target.chat_key), target)
    # A lid seen with its phone in this batch is that phone's chat, even where it came alone.
    lid_to_key = {t.lid: t.chat_key for t in merged.values() if t.phone and t.lid}
    aliases: dict[str, str] = {}
    for key, target in list(merged.items()):
        if target.phone is None and target.lid in lid_to_key:
            phone_key = lid_to_key[target.lid]
            aliases[key] = phone_key
            merged[phone_key] = _combine(merged[phone_key], target)
            del merged[key]

    contact_of = await _resolve_contacts(
        db, organization_id, [t for t in merged.values() if t.is_person], bus
    )
    resolved = await _resolve_conversations(
        db, organization_id, session_id, list(merged.values()), contact_of, bus
    )
    for alias, key in aliases.items():
        resolved[alias] = resolved[key]
    return resolved


async def _resolve_contacts(
    db: AsyncSession, organization_id: int, persons: list[ChatTarget], bus: EventBus | None
) -> dict[str, int]:
    if not persons:
        return {}
    phones = {t.phone for t in persons if t.phone}
    lids = {t.lid for t in persons if t.lid}
    found = await contact_store.contacts_with_any(db, organization_id, phones, lids)
    by_phone = {c.phone_e164: c for c in found if c.phone_e164}
    by_lid = {c.lid: c for c in found if c.lid}

    contact_of: dict[str, int] = {}
    to_insert: list[ChatTarget] = []
    to_link: list[ChatTarget] = []
    to_fill: list[dict[str, Any]] = []
    for target in persons:
        by_p = by_phone.get(target.phone) if target.phone else None
        by_l = by_lid.get(target.lid) if target.lid else None
        if by_p is None and by_l is None:
            to_insert.append(target)
            continue
        if by_p is not None and by_l is not None and by_p.id != by_l.id:
            to_link.append(target)  # two records of one person: merge them
            continue
        contact = by_p or by_l
        assert contact is not None
        if (target.phone and not contact.phone_e164) or (target.lid and not contact.lid):
            to_link.append(target)  # the link between lid and phone is new
            continue
        contact_of[target.chat_key] = contact.id
        if (target.name and not contact.name) or (target.phone_jid and not contact.wa_jid):
            name = contact.name or target.name
            to_fill.append(
                {
                    "b_id": contact.id,
                    "b_name": name,
                    "b_search": search_key(name),
                    "b_wa_jid": contact.wa_jid or target.phone_jid,
                }
            )

    if to_insert:
        rows = [
            {
                "organization_id": organization_id,
                "phone_e164": t.phone,
                "lid": t.lid,
                "wa_jid": t.phone_jid,
                "name": t.name,
                "search_name": search_key(t.name),
            }
            for t in to_insert
        ]
        inserted = await contact_store.insert_contacts(db, rows)
        new_by_phone = {r.phone_e164: r.id for r in inserted if r.phone_e164}
        new_by_lid = {r.lid: r.id for r in inserted if r.lid}
        for target in to_insert:
            new_id = new_by_phone.get(target.phone) if target.phone else new_by_lid.get(target.lid)
            if new_id is None:
                to_link.append(target)  # a concurrent writer stored this person first
            else:
                contact_of[target.chat_key] = new_id

    for target in to_link:
        keys = ContactKeys(target.phone, target.lid, target.phone_jid, target.name)
        contact_of[target.chat_key] = await link_contact(
            db, organization_id=organization_id, keys=keys, bus=bus
        )

    await contact_store.fill_contacts(db, to_fill)
    return contact_of


async def _resolve_conversations(
    db: AsyncSession,
    organization_id: int,
    session_id: int,
    targets: list[ChatTarget],
    contact_of: dict[str, int],
    bus: EventBus | None,
) -> dict[str, ResolvedChat]:
    keys = {t.chat_key for t in targets}
    contact_ids = set(contact_of.values())
    found = await conversation_store.conversations_with_keys_or_contacts(
        db, session_id, keys, contact_ids
    )
    by_key = {c.chat_key: c for c in found}
    by_contact: dict[int, list[Any]] = {}
    for c in found:
        if c.contact_id is not None:
            by_contact.setdefault(c.contact_id, []).append(c)

    resolved: dict[str, ResolvedChat] = {}
    to_insert: list[ChatTarget] = []
    to_name: list[dict[str, Any]] = []
    for target in targets:
        contact_id = contact_of.get(target.chat_key)
        candidates: dict[int, Any] = {}
        if target.chat_key in by_key:
            candidates[by_key[target.chat_key].id] = by_key[target.chat_key]
        for c in by_contact.get(contact_id, []) if contact_id is not None else []:
            candidates[c.id] = c
        if not candidates:
            to_insert.append(target)
            continue
        ids = sorted(candidates)
        conversation_id = ids[0]
        for other in ids[1:]:
            conversation_id = await merge_conversations(
                db,
                organization_id=organization_id,
                first_id=conversation_id,
                second_id=other,
                bus=bus,
            )
        current = candidates[ids[0]]
        rekey = bool(target.phone) and current.chat_key != target.chat_key
        relink = contact_id is not None and current.contact_id != contact_id
        if len(ids) > 1 or rekey or relink:
            await _repair(db, conversation_id, target, contact_id)
        elif target.name and not current.name:
            to_name.append(
                {
                    "b_id": conversation_id,
                    "b_name": target.name,
                    "b_search": search_key(target.name),
                }
            )
        resolved[target.chat_key] = ResolvedChat(conversation_id, contact_id, created=False)

    if to_insert:
        rows = [
            {
                "organization_id": organization_id,
                "session_id": session_id,
                "contact_id": contact_of.get(t.chat_key),
                "chat_key": t.chat_key,
                "chat_jid": t.chat_jid,
                "is_group": t.is_group,
                "name": t.name,
                "search_name": search_key(t.name),
                "unread_count": t.unread_count,
            }
            for t in to_insert
        ]
        new_ids = await conversation_store.insert_conversations(db, rows)
        late = [t.chat_key for t in to_insert if t.chat_key not in new_ids]
        # Stored by a concurrent writer since we looked.
        existing = (
            await conversation_store.conversation_ids_by_key(db, session_id, late) if late else {}
        )
        for target in to_insert:
            contact_id = contact_of.get(target.chat_key)
            if target.chat_key in new_ids:
                resolved[target.chat_key] = ResolvedChat(
                    new_ids[target.chat_key], contact_id, created=True
                )
            else:
                resolved[target.chat_key] = ResolvedChat(
                    existing[target.chat_key], contact_id, created=False
                )

    await conversation_store.name_conversations(db, to_name)
    return resolved


async def _repair(
    db: AsyncSession, conversation_id: int, target: ChatTarget, contact_id: int | None
) -> None:
    """Point a conversation at its person and, once the phone is known, at the phone key."""
    values: dict[str, Any] = {}
    if contact_id is not None:
        values["contact_id"] = contact_id
    if target.phone:
        taken = await conversation_store.key_taken_in_session_of(
            db, conversation_id, target.chat_key
        )
        if taken is None:
            values["chat_key"] = target.chat_key
            values["chat_jid"] = target.chat_jid
    await conversation_store.update_conversation(db, conversation_id, **values)
