"""Models and migrations agree on both databases: autogenerate finds nothing to do."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from zapsync.store.db import make_sync_engine
from zapsync.store.migrate import head_revision, is_at_head, upgrade
from zapsync.store.models import Base
from zapsync.store.search_schema import include_object


def test_models_and_migrations_agree(database_url: str) -> None:
    engine = make_sync_engine(database_url)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(
                conn, opts={"compare_type": True, "include_object": include_object}
            )
            diff = compare_metadata(context, Base.metadata)
    finally:
        engine.dispose()
    assert diff == []


def test_upgrade_is_idempotent_and_reaches_head(database_url: str) -> None:
    upgrade(database_url)
    assert is_at_head(database_url)
    assert head_revision() is not None
