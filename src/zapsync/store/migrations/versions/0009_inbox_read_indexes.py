"""inbox reads served by indexes: activity never NULL, descending activity indexes, the
contacts' name order, trigram search (pg_trgm GIN / SQLite FTS5), unused indexes dropped

Revision ID: 0009
Revises: 0006
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from zapsync.store import search_schema
from zapsync.store.types import NO_ACTIVITY, ActivityTime, UTCDateTime

revision: str = "0009"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_RECENT = (
    ("ix_conversations_org_recent", ("organization_id",)),
    ("ix_conversations_org_status_recent", ("organization_id", "status")),
    ("ix_conversations_session_recent", ("session_id",)),
)
# Replaced by the ones above (same leading columns) or read by no query (issue 12: the one on
# messages is 31 MB of write cost at 5 M messages and serves nothing).
_UNUSED = (
    ("conversations", "ix_conversations_org_activity"),
    ("conversations", "ix_conversations_organization_id"),
    ("conversations", "ix_conversations_session_id"),
    ("messages", "ix_messages_organization_id"),
    ("contacts", "ix_contacts_organization_id"),
)


def upgrade() -> None:
    bind = op.get_bind()
    sqlite = bind.dialect.name == "sqlite"
    _backfill_activity(bind)
    for table, name in _UNUSED:
        op.drop_index(name, table_name=table)
    with op.batch_alter_table(
        "conversations",
        recreate="always" if sqlite else "auto",
        table_kwargs={"sqlite_autoincrement": True},
    ) as batch_op:
        batch_op.alter_column(
            "last_message_at",
            existing_type=UTCDateTime(timezone=True),
            type_=ActivityTime(timezone=True),
            nullable=False,
            server_default=search_schema.no_activity_default(bind.dialect.name),
        )
    for name, leading in _RECENT:
        columns = [*leading, sa.text("last_message_at DESC"), sa.text("id DESC")]
        op.create_index(name, "conversations", columns)
    search_schema.create(bind)


def _backfill_activity(bind: sa.Connection) -> None:
    table = sa.table("conversations", sa.column("last_message_at", UTCDateTime()))
    bind.execute(
        sa.update(table)
        .where(table.c.last_message_at.is_(None))
        .values(last_message_at=sa.literal(NO_ACTIVITY, UTCDateTime()))
    )


def downgrade() -> None:
    bind = op.get_bind()
    sqlite = bind.dialect.name == "sqlite"
    search_schema.drop(bind)
    for name, _ in reversed(_RECENT):
        op.drop_index(name, table_name="conversations")
    with op.batch_alter_table(
        "conversations",
        recreate="always" if sqlite else "auto",
        table_kwargs={"sqlite_autoincrement": True},
    ) as batch_op:
        batch_op.alter_column(
            "last_message_at",
            existing_type=ActivityTime(timezone=True),
            type_=UTCDateTime(timezone=True),
            nullable=True,
            server_default=None,
        )
    table = sa.table("conversations", sa.column("last_message_at", UTCDateTime()))
    bind.execute(
        sa.update(table)
        .where(table.c.last_message_at == sa.literal(NO_ACTIVITY, UTCDateTime()))
        .values(last_message_at=None)
    )
    op.create_index("ix_contacts_organization_id", "contacts", ["organization_id"])
    op.create_index("ix_messages_organization_id", "messages", ["organization_id"])
    op.create_index("ix_conversations_session_id", "conversations", ["session_id"])
    op.create_index("ix_conversations_organization_id", "conversations", ["organization_id"])
    op.create_index(
        "ix_conversations_org_activity", "conversations", ["organization_id", "last_message_at"]
    )
