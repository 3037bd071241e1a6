"""webhook trust: secrets encrypted at rest, a separate signing key, the status watermark

Revision ID: 0003
Revises: 0001

The webhook secret was stored in clear (String(64)); it is now a Fernet token, so the column
is renamed and widened. Rows written before this revision keep their plaintext value until
the app seals them at start-up (`webhook_secrets.seal_legacy_secrets`): a migration has no
access to ZAPSYNC_SECRET_KEY, and every plaintext value is at most 64 characters while every
Fernet token is longer, so the two are told apart without a flag. Such rows have no signing
key of their own (NULL): the gateway still signs with the old shared secret.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import zapsync.store.types

revision: str = "0003"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("sessions", schema=None) as batch_op:
        batch_op.alter_column(
            "webhook_secret",
            new_column_name="webhook_secret_encrypted",
            existing_type=sa.String(length=64),
            type_=sa.Text(),
            existing_nullable=False,
        )
        batch_op.add_column(sa.Column("webhook_signing_key_encrypted", sa.Text(), nullable=True))
        batch_op.add_column(
            sa.Column(
                "status_event_at", zapsync.store.types.UTCDateTime(timezone=True), nullable=True
            )
        )


def downgrade() -> None:
    # Sealed secrets cannot go back to a String(64) in clear: a downgrade keeps them encrypted
    # and wider, which the previous code cannot read. Restore a backup instead.
    with op.batch_alter_table("sessions", schema=None) as batch_op:
        batch_op.drop_column("status_event_at")
        batch_op.drop_column("webhook_signing_key_encrypted")
        batch_op.alter_column(
            "webhook_secret_encrypted",
            new_column_name="webhook_secret",
            existing_type=sa.Text(),
            existing_nullable=False,
        )
