"""sessions keep the webhook theirs replaced (forward_to) and relay events to it

Revision ID: 0006
Revises: 0005
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import zapsync.store.types

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("sessions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("forward_to", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("forward_encrypted", sa.Text(), nullable=True))
    op.create_table(
        "webhook_forwards",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("session_id", sa.Integer(), nullable=False),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column(
            "next_attempt_at", zapsync.store.types.UTCDateTime(timezone=True), nullable=False
        ),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", zapsync.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["sessions.id"],
            name=op.f("fk_webhook_forwards_session_id_sessions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_forwards")),
    )
    with op.batch_alter_table("webhook_forwards", schema=None) as batch_op:
        batch_op.create_index(
            "ix_webhook_forwards_due", ["status", "next_attempt_at"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_webhook_forwards_session_id"), ["session_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("webhook_forwards", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_webhook_forwards_session_id"))
        batch_op.drop_index("ix_webhook_forwards_due")
    op.drop_table("webhook_forwards")
    with op.batch_alter_table("sessions", schema=None) as batch_op:
        batch_op.drop_column("forward_encrypted")
        batch_op.drop_column("forward_to")
