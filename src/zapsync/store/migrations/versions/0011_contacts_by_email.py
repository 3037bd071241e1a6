"""Contacts found by e-mail: an integration's pull links the people zapsync already knows by
phone or e-mail, a batch at a time; without this index every batch read the whole table

Revision ID: 0011
Revises: 0010
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_contacts_org_email", "contacts", ["organization_id", "email"])


def downgrade() -> None:
    op.drop_index("ix_contacts_org_email", table_name="contacts")
