"""messages.media_key: the Baileys `mediaKey` of an inbound media message

A gateway that keeps no messages (MegaAPI) can fetch a message's media later only when it is
handed the key the webhook carried: WhatsApp's CDN holds the file encrypted. Null for
messages that are not media, for gateways that find the media themselves, and for messages
stored before this column.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-06 22:55:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.add_column(sa.Column("media_key", sa.String(length=100), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_column("media_key")
