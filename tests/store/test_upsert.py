"""`upsert_many` on both engines: large batches, repeats, conditional updates."""

from __future__ import annotations

from sqlalchemy import func, select

from tests.conftest import Tenant
from zapsync.services.context import AppContext
from zapsync.store.models import Contact
from zapsync.store.upsert import upsert_many


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
