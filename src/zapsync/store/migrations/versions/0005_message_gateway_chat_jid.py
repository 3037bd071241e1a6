"""messages.gateway_chat_jid: the chat JID the gateway stored each message under

A person's conversation is kept under their phone JID, but a gateway may hold the same chat
under its `@lid` (Evolution does for LID-addressed chats). Read receipts and anything else
that names a message to the gateway must use the gateway's JID, so it is kept per message.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02 07:35:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.add_column(sa.Column("gateway_chat_jid", sa.String(length=100), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_column("gateway_chat_jid")
