"""Alembic environment: a blocking connection to the URL handed over by `store.migrate`."""

from __future__ import annotations

from alembic import context
from sqlalchemy import text

from zapsync.store.db import make_sync_engine
from zapsync.store.models import Base
from zapsync.store.search_schema import include_object

config = context.config
# Any constant that no other advisory lock of zapsync's uses ("zapsync" in ASCII).
LOCK_KEY = 0x7A617073796E63
url = config.attributes.get("database_url") or config.get_main_option("sqlalchemy.url") or ""


def run() -> None:
    engine = make_sync_engine(url)
    with engine.connect() as connection:
        if connection.dialect.name == "sqlite":
            # Batch mode rebuilds a table and drops the old one; with foreign keys on, that
            # drop deletes every row referencing it (ON DELETE CASCADE). The pragma only
            # takes effect outside a transaction: on the driver's connection, before BEGIN.
            driver = connection.connection.driver_connection
            assert driver is not None
            driver.execute("PRAGMA foreign_keys=OFF")
        context.configure(
            connection=connection,
            target_metadata=Base.metadata,
            render_as_batch=connection.dialect.name == "sqlite",
            compare_type=True,
            include_object=include_object,
        )
        with context.begin_transaction():
            if connection.dialect.name == "postgresql":
                # Replicas started together each migrate: one at a time, and the next reads
                # the version the first committed (nothing left to do) instead of failing on
                # a column it added meanwhile. Released with the transaction.
                connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": LOCK_KEY})
            context.run_migrations()
    engine.dispose()


run()
