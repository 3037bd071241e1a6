"""A session's status history, read by the page: each row names its organization (the history
route is organization-scoped without a join, and survives nothing the session does not), is
paged newest first by (session_id, id), and is trimmed by age by the cleanup job.

Revision ID: 0013
Revises: 0012
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("session_status_events") as batch_op:
        batch_op.add_column(sa.Column("organization_id", sa.Integer(), nullable=True))
    op.execute(
        "UPDATE session_status_events SET organization_id = ("
        "SELECT sessions.organization_id FROM sessions "
        "WHERE sessions.id = session_status_events.session_id)"
    )
    with op.batch_alter_table("session_status_events") as batch_op:
        batch_op.alter_column("organization_id", existing_type=sa.Integer(), nullable=False)
        batch_op.create_foreign_key(
            op.f("fk_session_status_events_organization_id_organizations"),
            "organizations",
            ["organization_id"],
            ["id"],
            ondelete="CASCADE",
        )
        # (session_id, id) serves the page and every lookup the session_id index did
        batch_op.drop_index("ix_session_status_events_session_id")
        batch_op.create_index("ix_session_status_events_session_recent", ["session_id", "id"])
        batch_op.create_index("ix_session_status_events_at", ["at"])


def downgrade() -> None:
    with op.batch_alter_table("session_status_events") as batch_op:
        batch_op.drop_index("ix_session_status_events_at")
        batch_op.drop_index("ix_session_status_events_session_recent")
        batch_op.create_index("ix_session_status_events_session_id", ["session_id"])
        batch_op.drop_constraint(
            op.f("fk_session_status_events_organization_id_organizations"), type_="foreignkey"
        )
        batch_op.drop_column("organization_id")
