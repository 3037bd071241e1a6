"""Alembic, driven from code: `zapsync db upgrade`, `zapsync serve` and the tests use it."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, text

from zapsync.store import search_schema
from zapsync.store.db import Database, make_sync_engine

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["database_url"] = url
    return cfg


def upgrade(url: str, revision: str = "head") -> None:
    """Apply migrations up to `revision`. Creates the SQLite file's folder when missing."""
    if url.startswith("sqlite"):
        path = url.split(":///", 1)[1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
    before = _revision_of(url)
    command.upgrade(alembic_config(url), revision)
    # A full pass reads every index (seconds at millions of rows): only when the schema
    # changed or nothing was ever measured; the nightly job keeps them fresh in between.
    if _revision_of(url) != before or _needs_statistics(url):
        analyze(url)


def _revision_of(url: str) -> str | None:
    engine = make_sync_engine(url)
    try:
        with engine.connect() as conn:
            return current_revision(conn)
    finally:
        engine.dispose()


def head_revision() -> str | None:
    script = ScriptDirectory.from_config(alembic_config("sqlite://"))
    return script.get_current_head()


def current_revision(conn: Connection) -> str | None:
    return MigrationContext.configure(conn).get_current_revision()


def is_at_head(url: str) -> bool:
    engine = make_sync_engine(url)
    try:
        with engine.connect() as conn:
            return current_revision(conn) == head_revision()
    finally:
        engine.dispose()


async def stored_revision(database: Database, *, timeout: float) -> str | None:
    """The revision the running database is at, read within `timeout` seconds."""
    async with database.engine.connect() as conn:
        revision = await asyncio.wait_for(
            conn.scalar(text("SELECT version_num FROM alembic_version")), timeout=timeout
        )
    return None if revision is None else str(revision)


def analyze(url: str, *, full: bool = True) -> None:
    """Refresh the planner's statistics. SQLite never gathers them by itself: without them the
    webhook's contact lookup scanned all contacts (issue 12). `full=False` samples each index
    (`analysis_limit`: milliseconds at millions of rows, row counts approximate)."""
    engine = make_sync_engine(url)
    try:
        with engine.connect() as conn:
            if conn.dialect.name == "sqlite":
                conn.exec_driver_sql(f"PRAGMA analysis_limit={0 if full else SAMPLED_ROWS}")
            conn.exec_driver_sql("ANALYZE")
            if full:
                search_schema.optimize(conn)
            conn.commit()
    finally:
        engine.dispose()


SAMPLED_ROWS = 10_000


async def refresh_statistics(database: Database) -> None:
    """`analyze(full=False)` on the running engine: a short write lock on SQLite."""
    async with database.engine.connect() as conn:
        await conn.exec_driver_sql(f"PRAGMA analysis_limit={SAMPLED_ROWS}")
        await conn.exec_driver_sql("ANALYZE")
        await conn.commit()


async def analyze_tables(database: Database, tables: Sequence[str]) -> None:
    """Fresh statistics of tables a run just grew. Without them PostgreSQL planned the refs'
    and contacts' lookups of a first pull as for the empty tables they had been (scans
    where the index serves), and each batch took longer than the one before."""
    async with database.engine.connect() as conn:
        if conn.dialect.name == "sqlite":
            await conn.exec_driver_sql(f"PRAGMA analysis_limit={SAMPLED_ROWS}")
        for table in tables:
            await conn.exec_driver_sql(f'ANALYZE "{table}"')
        await conn.commit()


def _needs_statistics(url: str) -> bool:
    if not url.startswith("sqlite"):
        return True  # PostgreSQL's ANALYZE samples: cheap at any size
    engine = make_sync_engine(url)
    try:
        with engine.connect() as conn:
            found = conn.exec_driver_sql(
                "SELECT 1 FROM sqlite_master WHERE name = 'sqlite_stat1'"
            ).first()
            return found is None
    finally:
        engine.dispose()
