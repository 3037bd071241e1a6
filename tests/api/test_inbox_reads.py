"""The inbox's lists through their index-served cursors give what the old queries gave (ties,
conversations without a message, unnamed contacts), search finds names without accents and
phones with or without the ninth digit, and on PostgreSQL the plans use the indexes."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import event, func, insert, select, update

from tests.conftest import Tenant
from zapsync.runtime.context import AppContext
from zapsync.services.accounts import Principal
from zapsync.services.inbox import conversations as svc
from zapsync.store.models import Contact, Conversation, Message, Session
from zapsync.store.text import search_key

T0 = datetime(2026, 11, 1, 12, tzinfo=UTC)
NAMES = ["João Conceição", "ana", "Ana", None, "Édson", "bruno", "ana", None, "Zé", "Ângela"]


async def seed(
    ctx: AppContext, tenant: Tenant, conversations: int, messages: int = 0, sessions: int = 2
) -> dict[str, Any]:
    """Conversations (a tenth without any message, activity times shared in threes), one
    contact each (names from NAMES, repeated), and `messages` in the first conversation with
    sent_at shared in pairs."""
    org = tenant.organization_id
    async with ctx.db.session() as db:
        sids = []
        for n in range(sessions):
            row = Session(
                organization_id=org,
                name=f"loja {n}",
                provider="sandbox",
                gateway_key=f"sandbox|{n}",
                config_encrypted="-",
                webhook_secret_encrypted="-",
            )
            db.add(row)
            await db.flush()
            sids.append(row.id)
        contacts = [
            {
                "organization_id": org,
                "phone_e164": f"+55319{n:08d}",
                "name": NAMES[n % len(NAMES)],
                "search_name": search_key(NAMES[n % len(NAMES)]),
            }
            for n in range(conversations)
        ]
        await db.execute(insert(Contact), contacts)
        contact_ids = list((await db.scalars(select(Contact.id).order_by(Contact.id))).all())
        rows = [
            {
                "organization_id": org,
                "session_id": sids[n % sessions],
                "contact_id": contact_ids[n],
                "chat_key": f"+55319{n:08d}",
                "chat_jid": f"55319{n:08d}@s.whatsapp.net",
                "status": ("open", "pending", "resolved")[n % 3],
                "last_message_at": None if n % 10 == 9 else T0 - timedelta(minutes=n // 3),
            }
            for n in range(conversations)
        ]
        await db.execute(insert(Conversation), rows)
        first = await db.scalar(select(func.min(Conversation.id)))
        assert first is not None
        if messages:
            await db.execute(
                insert(Message),
                [
                    {
                        "organization_id": org,
                        "session_id": sids[0],
                        "conversation_id": first,
                        "provider_message_id": f"m{n}",
                        "direction": "in",
                        "sender": "client",
                        "type": "text",
                        "body": f"mensagem {n}",
                        "sent_at": T0 - timedelta(seconds=n // 2),
                    }
                    for n in range(messages)
                ],
            )
        await db.commit()
    return {"sessions": sids, "first": first}


async def paged(client: httpx.AsyncClient, tenant: Tenant, route: str, **params: Any) -> list[int]:
    ids: list[int] = []
    cursor = None
    while True:
        query = {**params, **({"cursor": cursor} if cursor else {})}
        resp = await client.get(f"/api/v1/{route}", headers=tenant.headers, params=query)
        assert resp.status_code == 200, resp.text
        body = resp.json()
        ids += [item["id"] for item in body["items"]]
        cursor = body["next_cursor"]
        if cursor is None:
            return ids


async def test_conversations_come_through_the_cursors_in_the_old_order(
    ctx: AppContext, client: httpx.AsyncClient, tenant: Tenant
) -> None:
    seeded = await seed(ctx, tenant, 47)
    async with ctx.db.session() as db:
        rows = (await db.execute(select(Conversation))).scalars().all()
    # The order the inbox always had: newest activity first, ties by id, no message last.
    everyone = sorted(
        rows,
        key=lambda c: (c.last_message_at is None, -(c.last_message_at or T0).timestamp(), -c.id),
    )
    assert any(c.last_message_at is None for c in rows)
    assert await paged(client, tenant, "conversations", limit=4) == [c.id for c in everyone]
    for status in ("open", "pending", "resolved"):
        expected = [c.id for c in everyone if c.status == status]
        assert await paged(client, tenant, "conversations", limit=3, status=status) == expected
    sid = seeded["sessions"][1]
    expected = [c.id for c in everyone if c.session_id == sid]
    assert await paged(client, tenant, "conversations", limit=5, session_id=sid) == expected
    # Search pages the same order: each arm takes its own first page after the cursor, with
    # the filters (issue 12); one conversation is also found by its own name.
    async with ctx.db.session() as db:
        named = everyone[5]
        await db.execute(
            update(Conversation).where(Conversation.id == named.id).values(search_name="ana")
        )
        await db.commit()
        names = dict((await db.execute(select(Contact.id, Contact.search_name))).tuples().all())
    ana = [c.id for c in everyone if names.get(c.contact_id or 0) == "ana" or c.id == named.id]
    assert len(ana) > 10 and named.id in ana
    assert await paged(client, tenant, "conversations", limit=2, q="Ana") == ana
    for status in ("open", "resolved"):
        expected = [c.id for c in everyone if c.id in ana and c.status == status]
        assert await paged(client, tenant, "conversations", limit=2, q="ana", status=status) == (
            expected
        )
    expected = [c.id for c in everyone if c.id in ana and c.session_id == sid]
    assert await paged(client, tenant, "conversations", limit=3, q="ana", session_id=sid) == (
        expected
    )
    # Conversations without a message still say so.
    resp = await client.get("/api/v1/conversations", headers=tenant.headers, params={"limit": 100})
    assert [c["last_message_at"] for c in resp.json()["items"]][-1] is None


async def test_contacts_come_through_the_cursors_in_the_old_order(
    ctx: AppContext, client: httpx.AsyncClient, tenant: Tenant
) -> None:
    await seed(ctx, tenant, 33)
    async with ctx.db.session() as db:
        # The query the list had before its index: the database's own lower(), NULLs last.
        key = func.lower(Contact.name)
        old = await db.scalars(
            select(Contact.id)
            .where(Contact.organization_id == tenant.organization_id)
            .order_by(key.asc().nulls_last(), Contact.id.asc())
        )
        expected = list(old.all())
    assert await paged(client, tenant, "contacts", limit=4) == expected


async def test_thread_pages_by_cursor_and_by_number_give_the_old_order(
    ctx: AppContext, client: httpx.AsyncClient, tenant: Tenant
) -> None:
    seeded = await seed(ctx, tenant, 3, messages=53)
    conv = seeded["first"]
    async with ctx.db.session() as db:
        old = await db.scalars(
            select(Message.id)
            .where(Message.conversation_id == conv)
            .order_by(Message.sent_at.desc(), Message.id.desc())
        )
        newest_first = list(old.all())
    url = f"/api/v1/conversations/{conv}/messages"
    by_cursor: list[int] = []
    before = None
    while True:
        params = {"limit": 10, **({"before": before} if before else {})}
        body = (await client.get(url, headers=tenant.headers, params=params)).json()
        by_cursor += [m["id"] for m in reversed(body["messages"])]
        before = body["next_before"]
        if before is None:
            assert body["has_more"] is False
            break
    assert by_cursor == newest_first
    by_number: list[int] = []
    for page in range(1, 8):
        body = (
            await client.get(url, headers=tenant.headers, params={"limit": 10, "page": page})
        ).json()
        by_number += [m["id"] for m in reversed(body["messages"])]
        assert body["has_more"] is (page < 6)
    assert by_number == newest_first


@pytest.mark.parametrize(
    ("q", "found"),
    [
        ("conceicao", True),
        ("JOAO CONCEIÇÃO", True),
        ("edson", True),
        ("angela", True),
        ("31900000000", True),  # a fragment with the ninth digit
        ("553100000000", True),  # the whole number without the ninth digit
        ("3100000000", True),  # a fragment without the ninth digit
        ("8765", False),
        ("zzz", False),
    ],
)
async def test_search_finds_accentless_names_and_phone_fragments(
    ctx: AppContext, client: httpx.AsyncClient, tenant: Tenant, q: str, found: bool
) -> None:
    await seed(ctx, tenant, 10)
    for route in ("conversations", "contacts"):
        ids = await paged(client, tenant, route, q=q)
        assert bool(ids) is found, (route, q, ids)


async def test_search_follows_a_renamed_contact(
    ctx: AppContext, client: httpx.AsyncClient, tenant: Tenant
) -> None:
    await seed(ctx, tenant, 10)
    async with ctx.db.session() as db:
        contact = await db.scalar(select(Contact).where(Contact.name == "Zé"))
        assert contact is not None
        contact.name = "Zélia Gonçalves"
        await db.commit()
    for route in ("conversations", "contacts"):
        assert len(await paged(client, tenant, route, q="zelia goncalves")) == 1
        assert await paged(client, tenant, route, q="ze") != []  # shorter than a trigram
    async with ctx.db.session() as db:
        await db.execute(update(Contact).where(Contact.id == contact.id).values(phone_e164=None))
        await db.commit()
    assert await paged(client, tenant, "contacts", q=contact.phone_e164 or "") == []


class Statements:
    def __init__(self) -> None:
        self.seen: list[tuple[str, Any]] = []

    def __call__(self, conn: Any, cursor: Any, statement: str, params: Any, *_: Any) -> None:
        if statement.lstrip().upper().startswith(("SELECT", "WITH")):
            self.seen.append((statement, params))


@pytest.fixture
def statements(ctx: AppContext) -> Iterator[Statements]:
    seen = Statements()
    event.listen(ctx.db.engine.sync_engine, "before_cursor_execute", seen)
    yield seen
    event.remove(ctx.db.engine.sync_engine, "before_cursor_execute", seen)


async def test_postgresql_plans_use_the_indexes(
    ctx: AppContext, tenant: Tenant, other_tenant: Tenant, statements: Statements
) -> None:
    if ctx.db.is_sqlite:
        pytest.skip("PostgreSQL's planner")
    await seed(ctx, other_tenant, 6000, sessions=1)
    seeded = await seed(ctx, tenant, 6000, messages=20000)
    async with ctx.db.engine.connect() as conn:
        await conn.exec_driver_sql("ANALYZE")
        await conn.commit()
    async with ctx.db.session() as db:
        # Whom an agent looks for: one person among thousands.
        await db.execute(
            update(Contact)
            .where(
                Contact.id
                == select(Conversation.contact_id)
                .where(Conversation.id == seeded["first"])
                .scalar_subquery()
            )
            .values(name="Zuleica Baptista", search_name="zuleica baptista")
        )
        # And a name many share: a thousand matches, which the planner once read with a scan
        # of every conversation to join them (the 5 M run: 67-100 ms a search).
        await db.execute(
            update(Contact)
            .where(Contact.organization_id == tenant.organization_id, Contact.id % 6 == 0)
            .values(name="Márcia Brandão", search_name="marcia brandao")
        )
        await db.commit()
    async with ctx.db.engine.connect() as conn:
        await conn.exec_driver_sql("ANALYZE")
        await conn.commit()
    principal = Principal(
        user_id=tenant.user_id, organization_id=tenant.organization_id, role="admin", token_id=0
    )
    async with ctx.db.session() as db:
        conversation = await db.get(Conversation, seeded["first"])
        assert conversation is not None
        cases = {
            "inbox first page": lambda: svc.list_conversations(db, principal),
            "inbox search": lambda: svc.list_conversations(db, principal, q="zuleica"),
            "phone search": lambda: svc.list_conversations(db, principal, q="3190000123"),
            "common name search": lambda: svc.list_conversations(db, principal, q="Márcia Brandão"),
            "contacts search": lambda: svc.list_contacts(db, principal, q="Márcia Brandão"),
            "rare contacts search": lambda: svc.list_contacts(db, principal, q="zuleica"),
            "older thread page": lambda: svc.list_messages(db, conversation, page=300, limit=50),
        }
        for name, call in cases.items():
            statements.seen.clear()
            await call()
            assert statements.seen, name
            for statement, params in statements.seen:
                plan = "\n".join(
                    r[0]
                    for r in (
                        await (await db.connection()).exec_driver_sql(
                            "EXPLAIN " + statement, params
                        )
                    ).all()
                )
                assert "Seq Scan on conversations" not in plan, (name, plan)
                assert "Seq Scan on messages" not in plan, (name, plan)
                assert "Index" in plan, (name, plan)
                if name == "rare contacts search":
                    # The matches first, by an index: never the name order walked and every
                    # contact filtered (130 ms a search at 120,000 contacts).
                    assert "ix_contacts_by_name" not in plan, plan
                    assert "Seq Scan on contacts" not in plan, plan
                if name == "common name search":
                    # The matches' page is sorted from (contact, activity, id) entries, and
                    # only the page's rows are read whole (issue 12, 5 M).
                    assert "ix_conversations_contact_recent" in plan, plan
