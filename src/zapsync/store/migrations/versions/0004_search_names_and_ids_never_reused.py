"""search names (accent- and case-free) on contacts and conversations; ids never reused

Revision ID: 0004
Revises: 0001
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from zapsync.store.text import search_key

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_NAMED = ("contacts", "conversations")
# Tables whose ids clients are told about and whose rows fold into others.
_ANNOUNCED = ("contacts", "conversations", "messages")
_CHUNK = 1000


def upgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    for table in _ANNOUNCED:
        # SQLite gives a new row the highest id + 1, so a deleted highest id came back as
        # another row's; AUTOINCREMENT needs the table rebuilt (env.py turns foreign keys off
        # meanwhile). PostgreSQL's sequences never go back: nothing to do there.
        with op.batch_alter_table(
            table,
            recreate="always" if sqlite else "auto",
            table_kwargs={"sqlite_autoincrement": True},
        ) as batch_op:
            if table in _NAMED:
                batch_op.add_column(sa.Column("search_name", sa.String(length=200), nullable=True))
    for table in _NAMED:
        _backfill(table)


def _backfill(name: str) -> None:
    conn = op.get_bind()
    table = sa.table(
        name, sa.column("id", sa.Integer()), sa.column("name"), sa.column("search_name")
    )
    last = 0
    while True:
        rows = conn.execute(
            sa.select(table.c.id, table.c.name)
            .where(table.c.id > last, table.c.name.is_not(None))
            .order_by(table.c.id)
            .limit(_CHUNK)
        ).all()
        if not rows:
            return
        conn.execute(
            sa.update(table)
            .where(table.c.id == sa.bindparam("b_id"))
            .values(search_name=sa.bindparam("b_key")),
            [{"b_id": r.id, "b_key": search_key(r.name)} for r in rows],
        )
        last = rows[-1].id


def downgrade() -> None:
    for table in reversed(_NAMED):
        with op.batch_alter_table(table) as batch_op:
            batch_op.drop_column("search_name")
