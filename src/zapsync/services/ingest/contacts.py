"""One person, one contact: link a phone and an `@lid` and merge the two records they made.

WhatsApp hides phone numbers behind `@lid` ids; gateways give the pair only sometimes
(`remoteJidAlt`, `senderPn`, `participantAlt`), so a person may first be stored twice. When
the link appears, the younger contact folds into the older one: its conversations move over
(two conversations in one session become one, messages and counters included), references
held by integrations follow, and the duplicate is deleted.

The caller owns the transaction. Writes go through Core statements, so ORM objects loaded
before a merge are stale; reload with `populate_existing` when needed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from zapsync.bus.after_commit import publish_on_commit
from zapsync.bus.events import conversation_updated
from zapsync.bus.memory import EventBus
from zapsync.domain.identity import InvalidJid, JidKind, identity_of, parse_jid
from zapsync.store import contacts as contact_store
from zapsync.store import conversations as conversation_store
from zapsync.store.external_refs import move_external_refs
from zapsync.store.text import clip, search_key


def phone_jid_of(*jids: str | None) -> str | None:
    """The first of `jids` that is a phone JID, canonical (`…@s.whatsapp.net`), number as given."""
    for raw in jids:
        if not raw:
            continue
        try:
            jid = parse_jid(raw)
        except InvalidJid:
            continue
        if jid.kind is JidKind.USER:
            return jid.canonical
    return None


@dataclass(frozen=True, slots=True)
class ContactKeys:
    """What identifies a person: the phone key (E.164 with Brazil's ninth digit) and/or the lid."""

    phone: str | None
    lid: str | None
    wa_jid: str | None = None
    name: str | None = None


async def link_identity(
    db: AsyncSession,
    *,
    organization_id: int,
    jid: str,
    alt_jid: str | None = None,
    name: str | None = None,
    bus: EventBus | None = None,
) -> int | None:
    """The contact id of the person `jid` (+ `alt_jid`) names, created if new.

    When `jid` and `alt_jid` are a lid and a phone that were stored as two contacts, the two
    merge into one. Groups, broadcasts and garbage have no contact: returns None.
    """
    try:
        identity = identity_of(jid, alt_jid)
    except InvalidJid:
        return None
    if identity.is_group or (identity.phone_e164 is None and identity.lid is None):
        return None
    keys = ContactKeys(
        identity.phone_e164, identity.lid, phone_jid_of(jid, alt_jid), clip(name, 200)
    )
    return await link_contact(db, organization_id=organization_id, keys=keys, bus=bus)


async def link_contact(
    db: AsyncSession, *, organization_id: int, keys: ContactKeys, bus: EventBus | None = None
) -> int:
    """Make one contact carry `keys` (merging the records that hold them) and return its id."""
    assert keys.phone or keys.lid
    for _ in range(3):
        found = await contact_store.contacts_with_keys(db, organization_id, keys.phone, keys.lid)
        by_phone = next((c for c in found if keys.phone and c.phone_e164 == keys.phone), None)
        by_lid = next((c for c in found if keys.lid and c.lid == keys.lid), None)
        if by_phone is None and by_lid is None:
            row = {
                "organization_id": organization_id,
                "phone_e164": keys.phone,
                "lid": keys.lid,
                "wa_jid": keys.wa_jid,
                "name": keys.name,
                "search_name": search_key(keys.name),
            }
            inserted = await contact_store.insert_contacts(db, [row])
            if inserted:
                contact_id: int = inserted[0].id
                return contact_id
            continue  # someone else stored one of the keys meanwhile: look again
        if by_phone is not None and by_lid is not None and by_phone.id != by_lid.id:
            keep, drop = sorted((by_phone, by_lid), key=lambda c: c.id)
            await merge_contacts(
                db,
                organization_id=organization_id,
                keep_id=keep.id,
                drop_id=drop.id,
                bus=bus,
            )
            await _fill_contact(db, keep, drop, keys)
            return int(keep.id)
        contact = by_phone or by_lid
        assert contact is not None
        await _fill_contact(db, contact, None, keys)
        if keys.phone and contact.phone_e164 is None:
            await _key_conversations_by_phone(db, contact.id, keys.phone, keys.wa_jid)
        return int(contact.id)
    raise RuntimeError(f"could not store the contact {keys}")


async def _fill_contact(
    db: AsyncSession, contact: Any, merged: Any | None, keys: ContactKeys
) -> None:
    """Give `contact` what it lacks from the merged record and from `keys`; never overwrite.

    A person has one phone and one lid; a different value already stored is kept.
    """
    values: dict[str, Any] = {}
    sources = [merged] if merged is not None else []

    def first(field: str, incoming: Any) -> Any:
        if getattr(contact, field):
            return None
        for source in sources:
            if getattr(source, field):
                return getattr(source, field)
        return incoming

    for field, incoming in (
        ("phone_e164", keys.phone),
        ("lid", keys.lid),
        ("wa_jid", keys.wa_jid),
        ("name", keys.name),
        ("email", None),
    ):
        value = first(field, incoming)
        if value:
            values[field] = value
    if "name" in values:
        values["search_name"] = search_key(values["name"])
    if merged is not None and merged.custom_fields:
        values["custom_fields"] = {**merged.custom_fields, **(contact.custom_fields or {})}
    await contact_store.update_contact(db, contact.id, **values)


async def merge_contacts(
    db: AsyncSession,
    *,
    organization_id: int,
    keep_id: int,
    drop_id: int,
    bus: EventBus | None = None,
) -> None:
    """Move everything of contact `drop_id` to `keep_id`, then delete `drop_id`.

    Does not copy the dropped contact's fields (the caller does, after the delete frees its
    unique phone and lid).
    """
    by_session = await conversation_store.conversations_by_session_of_contacts(
        db, (keep_id, drop_id)
    )
    people = await contact_store.phones_of(db, (keep_id, drop_id))
    phone = next((p.phone_e164 for p in people if p.phone_e164), None)
    phone_jid = next((p.wa_jid for p in people if p.wa_jid), None)
    await conversation_store.move_conversations_to_contact(db, drop_id, keep_id)
    for ids in by_session.values():
        survivor = ids[0]
        for other in ids[1:]:
            survivor = await merge_conversations(
                db, organization_id=organization_id, first_id=survivor, second_id=other, bus=bus
            )
    await move_external_refs(db, organization_id, "contact", drop_id, keep_id)
    await contact_store.delete_contact(db, drop_id)
    if phone:
        # The person's conversations are keyed by phone from now on (a lid key is a stopgap).
        await _key_conversations_by_phone(db, keep_id, phone, phone_jid)


async def _key_conversations_by_phone(
    db: AsyncSession, contact_id: int, phone: str, phone_jid: str | None
) -> None:
    ids = await conversation_store.conversation_ids_of_contact(db, contact_id)
    for conversation_id in ids:
        await _key_by_phone(db, conversation_id, phone, phone_jid)


async def _key_by_phone(
    db: AsyncSession, conversation_id: int, phone: str, phone_jid: str | None
) -> None:
    row = await conversation_store.session_and_key_of(db, conversation_id)
    # A helpdesk channel's conversation (no session) is keyed by the helpdesk's id, not a phone.
    if row is None or row.session_id is None or row.chat_key == phone:
        return
    taken = await conversation_store.key_taken(db, row.session_id, phone)
    if taken is not None:
        return
    values: dict[str, Any] = {"chat_key": phone}
    if phone_jid:
        # Replies to a phone JID reach the person; a bare lid sometimes does not.
        values["chat_jid"] = phone_jid
    await conversation_store.update_conversation(db, conversation_id, **values)


async def merge_conversations(
    db: AsyncSession,
    *,
    organization_id: int,
    first_id: int,
    second_id: int,
    bus: EventBus | None = None,
) -> int:
    """Fold two conversations of one person in one session into the older; returns its id.

    The survivor takes the other's messages, the later last message, the sum of unread counts,
    and a phone chat key and phone JID when the other had them.
    """
    keep_id, drop_id = sorted((first_id, second_id))
    rows = await conversation_store.conversation_rows(db, (keep_id, drop_id))
    keep, drop = rows[keep_id], rows[drop_id]

    await conversation_store.move_messages(db, drop_id, keep_id)
    await move_external_refs(db, organization_id, "conversation", drop_id, keep_id)
    values: dict[str, Any] = {"unread_count": (keep.unread_count or 0) + (drop.unread_count or 0)}
    if drop.last_message_at is not None and (
        keep.last_message_at is None or drop.last_message_at > keep.last_message_at
    ):
        values["last_message_at"] = drop.last_message_at
        values["last_message_preview"] = drop.last_message_preview
    if keep.status != "open" and drop.status == "open":
        values["status"] = "open"
    if not keep.name and drop.name:
        values["name"] = drop.name
        values["search_name"] = search_key(drop.name)
    if keep.contact_id is None and drop.contact_id is not None:
        values["contact_id"] = drop.contact_id
    if _is_phone_key(drop.chat_key) and not _is_phone_key(keep.chat_key):
        values["chat_key"] = drop.chat_key
        values["chat_jid"] = drop.chat_jid
    # The dropped row goes first: it may hold the chat key the survivor takes.
    await conversation_store.delete_conversation(db, drop_id)
    await conversation_store.update_conversation(db, keep_id, **values)
    if bus is not None:
        merged = await conversation_store.load_conversation(db, keep_id)
        assert merged is not None
        publish_on_commit(db, conversation_updated(merged, merged_conversation_ids=[drop_id]))
    return int(keep_id)


def _is_phone_key(chat_key: str) -> bool:
    return chat_key.startswith("+")
