"""conversations of a helpdesk's other channels: a conversation belongs to a WhatsApp session
or to an integration (a Chatwoot e-mail or web-widget conversation), never both; its channel;
messages without a session, keyed by their conversation

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-08 10:00:00
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

from zapsync.store import search_schema

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The inbox's orders (migration 0009): SQLite's batch rebuild cannot carry their DESC
# expressions over, so they are dropped before it and made again after.
_RECENT = (
    ("ix_conversations_org_recent", ("organization_id",)),
    ("ix_conversations_org_status_recent", ("organization_id", "status")),
    ("ix_conversations_session_recent", ("session_id",)),
)
_OWNER_CHECK = "(session_id IS NULL) <> (integration_id IS NULL)"
_CONVERSATION_KEY = "uq_conversations_integration_chat_key"
_MESSAGE_KEY = "uq_messages_channel_provider_message_id"


def _batch(table: str, sqlite: bool) -> Any:
    # Both tables keep SQLite's AUTOINCREMENT: their ids are announced and never reused.
    return op.batch_alter_table(
        table, recreate="always" if sqlite else "auto", table_kwargs={"sqlite_autoincrement": True}
    )


def upgrade() -> None:
    bind = op.get_bind()
    sqlite = bind.dialect.name == "sqlite"
    if sqlite:
        # The rebuild drops the search triggers (search_schema.py says so): all made again.
        search_schema.drop(bind)
        for name, _ in _RECENT:
            op.drop_index(name, table_name="conversations")
    with _batch("conversations", sqlite) as batch_op:
        batch_op.alter_column("session_id", existing_type=sa.Integer(), nullable=True)
        batch_op.add_column(sa.Column("integration_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("channel", sa.String(length=30), nullable=True))
        batch_op.create_foreign_key(
            op.f("fk_conversations_integration_id_integrations"),
            "integrations",
            ["integration_id"],
            ["id"],
            ondelete="CASCADE",
        )
        batch_op.create_check_constraint(op.f("ck_conversations_one_owner"), _OWNER_CHECK)
    op.create_index(
        _CONVERSATION_KEY,
        "conversations",
        ["integration_id", "chat_key"],
        unique=True,
        sqlite_where=sa.text("integration_id IS NOT NULL"),
        postgresql_where=sa.text("integration_id IS NOT NULL"),
    )
    with _batch("messages", sqlite) as batch_op:
        batch_op.alter_column("session_id", existing_type=sa.Integer(), nullable=True)
    op.create_index(
        _MESSAGE_KEY,
        "messages",
        ["conversation_id", "provider_message_id"],
        unique=True,
        sqlite_where=sa.text("session_id IS NULL"),
        postgresql_where=sa.text("session_id IS NULL"),
    )
    if sqlite:
        _recent_indexes()
        search_schema.create(bind)


def _recent_indexes() -> None:
    for name, leading in _RECENT:
        columns = [*leading, sa.text("last_message_at DESC"), sa.text("id DESC")]
        op.create_index(name, "conversations", columns)


def downgrade() -> None:
    bind = op.get_bind()
    sqlite = bind.dialect.name == "sqlite"
    # Rows that cannot exist before 0016: the helpdesk channels' conversations and messages
    # (explicitly, as SQLite migrates with foreign keys off: no cascade).
    bind.execute(sa.text("DELETE FROM messages WHERE session_id IS NULL"))
    bind.execute(sa.text("DELETE FROM conversations WHERE session_id IS NULL"))
    op.drop_index(_MESSAGE_KEY, table_name="messages")
    with _batch("messages", sqlite) as batch_op:
        batch_op.alter_column("session_id", existing_type=sa.Integer(), nullable=False)
    op.drop_index(_CONVERSATION_KEY, table_name="conversations")
    if sqlite:
        search_schema.drop(bind)
        for name, _ in _RECENT:
            op.drop_index(name, table_name="conversations")
    with _batch("conversations", sqlite) as batch_op:
        batch_op.drop_constraint(op.f("ck_conversations_one_owner"), type_="check")
        batch_op.drop_constraint(
            op.f("fk_conversations_integration_id_integrations"), type_="foreignkey"
        )
        batch_op.drop_column("channel")
        batch_op.drop_column("integration_id")
        batch_op.alter_column("session_id", existing_type=sa.Integer(), nullable=False)
    if sqlite:
        _recent_indexes()
        search_schema.create(bind)
