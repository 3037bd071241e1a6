"""Chatwoot integrations: the webhook token in the URL (encrypted, and its hash to find the
integration by), when a connection last changed and why it failed; refs keep what zapsync
pushed apart from what it pulled; runs name their integration

Revision ID: 0010
Revises: 0009
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import zapsync.store.types

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("integrations", schema=None) as batch_op:
        batch_op.add_column(sa.Column("webhook_token_encrypted", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("webhook_token_hash", sa.String(length=64), nullable=True))
        batch_op.add_column(
            sa.Column("updated_at", zapsync.store.types.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(sa.Column("last_error", sa.Text(), nullable=True))
        batch_op.create_index(
            batch_op.f("ix_integrations_webhook_token_hash"), ["webhook_token_hash"], unique=True
        )
    with op.batch_alter_table("external_refs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("pushed_fingerprint", sa.String(length=64), nullable=True))
    with op.batch_alter_table("sync_runs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("integration_id", sa.Integer(), nullable=True))
        batch_op.create_index(
            batch_op.f("ix_sync_runs_integration_id"), ["integration_id"], unique=False
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_sync_runs_integration_id_integrations"),
            "integrations",
            ["integration_id"],
            ["id"],
            ondelete="SET NULL",
        )


def downgrade() -> None:
    with op.batch_alter_table("sync_runs", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_sync_runs_integration_id_integrations"), type_="foreignkey"
        )
        batch_op.drop_index(batch_op.f("ix_sync_runs_integration_id"))
        batch_op.drop_column("integration_id")
    with op.batch_alter_table("external_refs", schema=None) as batch_op:
        batch_op.drop_column("pushed_fingerprint")
    with op.batch_alter_table("integrations", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_integrations_webhook_token_hash"))
        batch_op.drop_column("last_error")
        batch_op.drop_column("updated_at")
        batch_op.drop_column("webhook_token_hash")
        batch_op.drop_column("webhook_token_encrypted")
