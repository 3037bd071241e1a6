"""Test databases: an SQLite file or a PostgreSQL database created and dropped by the suite."""

from __future__ import annotations

import gc
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
from sqlalchemy import text

from zapsync.store.db import make_sync_engine
from zapsync.store.migrate import upgrade
from zapsync.store.models import Base

PG_ADMIN_URL = os.environ.get("ZAPSYNC_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")


def backends() -> list[str]:
    chosen = os.environ.get("ZAPSYNC_TEST_DBS", "sqlite,postgresql")
    return [b.strip() for b in chosen.split(",") if b.strip()]


@contextmanager
def migrated_database(backend: str, tmp: Path) -> Iterator[str]:
    """Yield the async URL of a fresh, migrated database; drop it afterwards."""
    if backend == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp / 'zapsync-test.db'}"
        upgrade(url)
        yield url
        return
    name = f"zapsync_test_{os.getpid()}_{secrets.token_hex(3)}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = PG_ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://")
    url = f"{base}/{name}"
    try:
        upgrade(url)
        yield url
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


PROCRASTINATE_TABLES = (
    "procrastinate_jobs",
    "procrastinate_periodic_defers",
    "procrastinate_events",
)


def wipe(url: str) -> None:
    """Empty every table (faster than recreating the schema between tests)."""
    if url.startswith("sqlite"):
        # A task the last test's shutdown cancelled mid-query leaves its SQLite connection
        # closed but not freed (a cursor in a reference cycle keeps a statement alive), and
        # with it the write lock: collected now, not at some later pass.
        gc.collect()
    engine = make_sync_engine(url)
    tables = [t.name for t in reversed(Base.metadata.sorted_tables)]
    with engine.begin() as conn:
        if url.startswith("postgresql"):
            conn.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
            # the scaled-out mode's queue (migration 0012), not in the models
            conn.execute(text(f"TRUNCATE {', '.join(PROCRASTINATE_TABLES)} CASCADE"))
        else:
            for table in tables:
                conn.execute(text(f"DELETE FROM {table}"))
            # AUTOINCREMENT tables keep their last id here; each test starts from 1 again.
            exists = "SELECT 1 FROM sqlite_master WHERE name = 'sqlite_sequence'"
            if conn.execute(text(exists)).first() is not None:
                conn.execute(text("DELETE FROM sqlite_sequence"))
    engine.dispose()
