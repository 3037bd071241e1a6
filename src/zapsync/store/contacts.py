"""Queries of the `contacts` table for its writers: finding a person by phone or lid,
creating, filling in and deleting contacts.

Each function takes the caller's session and never commits; one function per statement.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import String, bindparam, delete, func, insert, select, union, union_all, update
from sqlalchemy.ext.asyncio import AsyncSession

from zapsync.store.bulk_insert import insert_rows
from zapsync.store.lists import one_of
from zapsync.store.models import Contact
from zapsync.store.types import AnyRow, utcnow
from zapsync.store.upsert import table_of, upsert_many

contacts = table_of(Contact)

_FOUND = (contacts.c.id, contacts.c.phone_e164, contacts.c.lid, contacts.c.name, contacts.c.wa_jid)
# Built once: a page of one chat runs this every time. Two lookups, one per unique index, joined
# by UNION: an `OR` of the two lists is planned from the statistics, and SQLite's (which count
# NULLs as one value) made it a scan of every contact when few contacts had a LID (issue 12).
_CONTACTS_WITH = union(
    select(*_FOUND).where(
        contacts.c.organization_id == bindparam("b_org"),
        contacts.c.phone_e164.in_(bindparam("b_phones", expanding=True)),
    ),
    select(*_FOUND).where(
        contacts.c.organization_id == bindparam("b_org"),
        contacts.c.lid.in_(bindparam("b_lids", expanding=True)),
    ),
)


async def contacts_with_any(
    db: AsyncSession, organization_id: int, phones: Iterable[str], lids: Iterable[str]
) -> list[AnyRow]:
    """(id, phone_e164, lid, name, wa_jid) of the contacts holding one of `phones` or `lids`."""
    params = {"b_org": organization_id, "b_phones": sorted(phones), "b_lids": sorted(lids)}
    return list((await db.execute(_CONTACTS_WITH, params)).all())


async def contacts_with_keys(
    db: AsyncSession, organization_id: int, phone: str | None, lid: str | None
) -> list[AnyRow]:
    """The contacts holding `phone` or `lid`, with the fields a merge fills in."""
    columns = (*_FOUND, contacts.c.email, contacts.c.custom_fields)
    found = [
        select(*columns).where(contacts.c.organization_id == organization_id, clause)
        for clause in (
            contacts.c.phone_e164 == phone if phone else None,
            contacts.c.lid == lid if lid else None,
        )
        if clause is not None
    ]
    if not found:
        return []
    # One index lookup each; UNION ALL because PostgreSQL's json has no equality to dedupe by.
    rows = (await db.execute(union_all(*found) if len(found) > 1 else found[0])).all()
    return list({row.id: row for row in rows}.values())


async def insert_contacts(db: AsyncSession, rows: Sequence[Mapping[str, Any]]) -> list[AnyRow]:
    """Insert the contacts whose phone and lid no stored contact holds; (id, phone_e164,
    lid) of those inserted (a row clashing with one stored meanwhile is left out)."""
    return await upsert_many(db, Contact, rows, conflict=(), returning=("id", "phone_e164", "lid"))


async def fill_contacts(db: AsyncSession, fills: Sequence[Mapping[str, Any]]) -> None:
    """Set names and phone JIDs: rows of `b_id`, `b_name`, `b_search`, `b_wa_jid`."""
    if fills:
        await db.execute(
            update(contacts)
            .where(contacts.c.id == bindparam("b_id"))
            .values(
                name=bindparam("b_name"),
                search_name=bindparam("b_search"),
                wa_jid=bindparam("b_wa_jid"),
            ),
            fills,
        )


async def update_contact(db: AsyncSession, contact_id: int, **values: Any) -> None:
    if values:
        await db.execute(update(contacts).where(contacts.c.id == contact_id).values(**values))


async def phones_of(db: AsyncSession, contact_ids: Iterable[int]) -> list[AnyRow]:
    """(id, phone_e164, wa_jid) of the contacts, by id."""
    stmt = select(contacts.c.id, contacts.c.phone_e164, contacts.c.wa_jid).where(
        contacts.c.id.in_(tuple(contact_ids))
    )
    return sorted((await db.execute(stmt)).all(), key=lambda p: p.id)


async def delete_contact(db: AsyncSession, contact_id: int) -> None:
    await db.execute(delete(contacts).where(contacts.c.id == contact_id))


_SYNC_COLUMNS = (
    contacts.c.id,
    contacts.c.phone_e164,
    contacts.c.email,
    contacts.c.name,
    contacts.c.custom_fields,
)


async def contacts_with_phone_or_email(
    db: AsyncSession, organization_id: int, phones: Iterable[str], emails: Iterable[str]
) -> list[AnyRow]:
    """(id, phone_e164, email, name, custom_fields) of the contacts holding one of `phones`
    or `emails` (an integration's record of a person zapsync already knows)."""
    phones, emails = sorted(set(phones)), sorted(set(emails))
    # Two indexed lookups, not one OR: the OR of two IN lists made SQLite scan the table.
    queries = []
    if phones:
        queries.append(one_of(db, contacts.c.phone_e164, phones, String()))
    if emails:
        queries.append(one_of(db, contacts.c.email, emails, String()))
    found: dict[int, AnyRow] = {}
    for clause in queries:
        stmt = select(*_SYNC_COLUMNS).where(contacts.c.organization_id == organization_id, clause)
        found.update((row.id, row) for row in (await db.execute(stmt)).all())
    return list(found.values())


async def contacts_by_ids(
    db: AsyncSession, organization_id: int, ids: Iterable[int]
) -> list[AnyRow]:
    """(id, phone_e164, email, name, custom_fields) of the organization's contacts `ids`."""
    wanted = sorted(set(ids))
    if not wanted:
        return []
    stmt = select(*_SYNC_COLUMNS).where(
        contacts.c.organization_id == organization_id, contacts.c.id.in_(wanted)
    )
    return list((await db.execute(stmt)).all())


async def contacts_after(
    db: AsyncSession, organization_id: int, after_id: int, limit: int
) -> list[AnyRow]:
    """The organization's contacts in id order after `after_id` (a push walks them all)."""
    stmt = (
        select(*_SYNC_COLUMNS)
        .where(contacts.c.organization_id == organization_id, contacts.c.id > after_id)
        .order_by(contacts.c.id)
        .limit(limit)
    )
    return list((await db.execute(stmt)).all())


async def insert_contacts_in_order(
    db: AsyncSession, rows: Sequence[Mapping[str, Any]]
) -> list[int]:
    """Insert the contacts (every row with the same keys); their ids, in the rows' order."""
    if not rows:
        return []
    now = utcnow()
    values = [{"created_at": now, "updated_at": now, "custom_fields": {}, **row} for row in rows]
    if db.get_bind().dialect.name == "postgresql":
        # The ids drawn from the sequence first, then one COPY: an INSERT ... RETURNING of
        # hundreds of rows is one statement of thousands of placeholders, which psycopg
        # parsed anew every batch (a third of a pull's time).
        serial = func.pg_get_serial_sequence("contacts", "id")
        drawn = select(func.nextval(serial)).select_from(func.generate_series(1, len(values)))
        ids = [int(i) for i in (await db.scalars(drawn)).all()]
        await insert_rows(db, contacts, [{**v, "id": i} for v, i in zip(values, ids, strict=True)])
        return ids
    stmt = insert(contacts).returning(contacts.c.id, sort_by_parameter_order=True)
    return [row.id for row in (await db.execute(stmt, values)).all()]
