"""a contact's conversations newest activity first, holding what the inbox filters by:
search sorts the matches of a name many people share from this index alone (issue 12)

Replaces `ix_conversations_contact_id` (same leading column: it still serves the contact's
joins and the foreign key's SET NULL).

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-07 15:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_NAME = "ix_conversations_contact_recent"


def upgrade() -> None:
    op.create_index(
        _NAME,
        "conversations",
        ["contact_id", sa.text("last_message_at DESC"), sa.text("id DESC")],
        postgresql_include=["organization_id", "session_id", "status"],
    )
    op.drop_index("ix_conversations_contact_id", table_name="conversations")


def downgrade() -> None:
    op.create_index("ix_conversations_contact_id", "conversations", ["contact_id"])
    op.drop_index(_NAME, table_name="conversations")
