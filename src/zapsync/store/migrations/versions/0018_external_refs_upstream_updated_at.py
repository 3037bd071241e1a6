"""external_refs.upstream_updated_at: the upstream record's own `updated_at` last applied

Chatwoot delivers its webhooks out of order and sometimes twice (issue #11901): a
conversation's record older than the one applied last is stale and changes nothing. Null for
refs written before this column, and for records that carry no time (applied as before).

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-08 00:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("external_refs", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("upstream_updated_at", sa.DateTime(timezone=True), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("external_refs", schema=None) as batch_op:
        batch_op.drop_column("upstream_updated_at")
