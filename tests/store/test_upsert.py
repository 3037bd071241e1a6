"""`upsert_many` on both engines: large batches, repeats, conditional updates."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import func, select

from tests.conftest import Tenant
from zapsync.runtime.context import AppContext
from zapsync.store.models import Contact
from zapsync.store.upsert import insert_missing, upsert_many


def people(tenant: Tenant, count: int, name: str) -> list[dict[str, object]]:
    return [
        {
            "organization_id": tenant.organization_id,
            "phone_e164": f"+551190000{n:04d}",
            "name": f"{name} {n}",
        }
        for n in range(count)
    ]


async def test_a_batch_larger_than_the_parameter_limit_is_stored_once(
    ctx: AppContext, tenant: Tenant
) -> None:
    rows = people(tenant, 7_000, "Cliente")
    async with ctx.db.session() as db:
        inserted = await upsert_many(
            db, Contact, rows, conflict=("organization_id", "phone_e164"), returning=("id",)
        )
        assert len({r.id for r in inserted}) == 7_000
        # The same rows again (and a repeat inside the batch) insert nothing.
        again = await upsert_many(
            db,
            Contact,
            [*rows, rows[0]],
            conflict=("organization_id", "phone_e164"),
            returning=("id",),
        )
        assert again == []
        await db.commit()
        assert await db.scalar(select(func.count()).select_from(Contact)) == 7_000
        stored = await db.scalar(select(Contact).where(Contact.phone_e164 == "+5511900000042"))
        assert stored is not None and stored.custom_fields == {} and stored.created_at


async def test_do_update_overwrites_only_where_the_condition_holds(
    ctx: AppContext, tenant: Tenant
) -> None:
    async with ctx.db.session() as db:
        await upsert_many(db, Contact, people(tenant, 3, "Antigo"), conflict=())
        renamed = people(tenant, 3, "Novo")
        updated = await upsert_many(
            db,
            Contact,
            renamed,
            conflict=("organization_id", "phone_e164"),
            update=("name",),
            update_where=lambda table, excluded: table.c.phone_e164 != "+5511900000001",
            returning=("phone_e164", "name"),
        )
        await db.commit()
        assert sorted((r.phone_e164, r.name) for r in updated) == [
            ("+5511900000000", "Novo 0"),
            ("+5511900000002", "Novo 2"),
        ]
        names = (await db.scalars(select(Contact.name).order_by(Contact.phone_e164))).all()
        assert names == ["Novo 0", "Antigo 1", "Novo 2"]


async def test_insert_missing_counts_exactly_the_rows_that_went_in(
    ctx: AppContext, tenant: Tenant
) -> None:
    # Rows that leave Python-side defaults out (SQLAlchemy fills them in), larger than one
    # PostgreSQL array batch.
    columns = ("organization_id", "phone_e164", "name")
    rows = [tuple(row.values()) for row in people(tenant, 7_000, "Cliente")]
    conflict = ("organization_id", "phone_e164")
    async with ctx.db.session() as db:
        assert await insert_missing(db, Contact, columns, rows, conflict) == 7_000
        more = [tuple(row.values()) for row in people(tenant, 7_005, "Outro")[7_000:]]
        # Stored rows, new rows and a repeat inside the batch: only the new ones count.
        batch = [*rows[:10], *more, more[0]]
        assert await insert_missing(db, Contact, columns, batch, conflict) == 5
        await db.commit()
        assert await db.scalar(select(func.count()).select_from(Contact)) == 7_005
        stored = await db.scalar(select(Contact).where(Contact.phone_e164 == "+5511900000042"))
        assert stored is not None and stored.custom_fields == {} and stored.created_at


async def test_insert_missing_binds_what_sqlalchemy_would(ctx: AppContext, tenant: Tenant) -> None:
    # Every column given (not in the table's order): on SQLite the rows skip SQLAlchemy on the
    # way to the driver.
    when = datetime(2025, 5, 1, 12, 30, 15, 123456, tzinfo=UTC)
    columns = ("name", "custom_fields", "phone_e164", "updated_at", "organization_id", "created_at")
    fields: dict[str, object] = {"plano": "ouro", "itens": [1, 2]}
    row: tuple[object, ...] = ("Ana", fields, "+5511988887777", when, tenant.organization_id, when)
    async with ctx.db.session() as db:
        conflict = ("organization_id", "phone_e164")
        assert await insert_missing(db, Contact, columns, [row], conflict) == 1
        await db.commit()
        stored = await db.scalar(select(Contact))
        assert stored is not None
        assert (stored.name, stored.custom_fields) == ("Ana", {"plano": "ouro", "itens": [1, 2]})
        assert stored.created_at == when and stored.updated_at == when
        # Stored in the column's own text format: SQL comparisons agree.
        later = await db.scalar(select(func.count()).where(Contact.created_at > when))
        assert later == 0


async def test_insert_missing_skips_stored_rows_on_its_fastest_path(
    ctx: AppContext, tenant: Tenant
) -> None:
    # Every column given: SQLite's driver executemany, PostgreSQL's COPY (which a clash undoes
    # before the rows go in again, the clash skipped).
    when = datetime(2025, 5, 1, 12, 0, tzinfo=UTC)
    columns = ("organization_id", "phone_e164", "custom_fields", "created_at", "updated_at")

    def rows(first: int, last: int) -> list[tuple[object, ...]]:
        org = tenant.organization_id
        return [(org, f"+55119000{n:05d}", {}, when, when) for n in range(first, last)]

    conflict = ("organization_id", "phone_e164")
    async with ctx.db.session() as db:
        assert await insert_missing(db, Contact, columns, rows(0, 3_000), conflict) == 3_000
        assert await insert_missing(db, Contact, columns, rows(2_990, 3_010), conflict) == 10
        await db.commit()
        assert await db.scalar(select(func.count()).select_from(Contact)) == 3_010
