"""Alembic environment: a blocking connection to the URL handed over by `store.migrate`."""

from __future__ import annotations

from alembic import context

from zapsync.store.db import make_sync_engine
from zapsync.store.models import Base

config = context.config
url = config.attributes.get("database_url") or config.get_main_option("sqlalchemy.url") or ""


def run() -> None:
    engine = make_sync_engine(url)
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=Base.metadata,
            render_as_batch=connection.dialect.name == "sqlite",
            compare_type=True,
        )
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


run()
