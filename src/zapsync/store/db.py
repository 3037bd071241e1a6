"""Engines and sessions for SQLite (embedded) and PostgreSQL (scaled out)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)


def sync_url(url: str) -> str:
    """The same database through a blocking driver (migrations, CLI checks)."""
    return url.replace("sqlite+aiosqlite://", "sqlite://")


def _sqlite_pragmas(dbapi_conn: Any, _: Any) -> None:
    cur = dbapi_conn.cursor()
    # WAL lets readers go on while the single writer writes; busy_timeout queues writers.
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()


def _sqlite_autocommit_driver(dbapi_conn: Any, _: Any) -> None:
    # Let SQLAlchemy, not the sqlite3 module, decide when transactions begin.
    dbapi_conn.isolation_level = None


# The execution option of a connection that only reads (`reading`).
READS = "zapsync_reads"


def _sqlite_begin(conn: Any) -> None:
    # A deferred transaction that reads and then writes fails at once with "database is
    # locked" when another connection wrote in between (WAL snapshots cannot upgrade).
    # Taking the write lock at BEGIN makes writers queue on busy_timeout instead. A reader
    # takes no lock at all: under WAL it reads its snapshot while the writer writes, and
    # must not queue webhooks behind an agent's inbox page (issue 12).
    conn.exec_driver_sql("BEGIN" if conn.get_execution_options().get(READS) else "BEGIN IMMEDIATE")


async def reading(db: AsyncSession) -> None:
    """Make the session's transaction, if it has not begun yet, a read-only one: on SQLite a
    deferred BEGIN that holds no lock. Call it first in a use case that only reads; a write
    in such a transaction may fail with "database is locked"."""
    if not db.in_transaction():
        await db.connection(execution_options={READS: True})


def _sqlite_writers_queue(engine: Engine) -> None:
    event.listen(engine, "connect", _sqlite_pragmas)
    event.listen(engine, "connect", _sqlite_autocommit_driver)
    event.listen(engine, "begin", _sqlite_begin)


def make_async_engine(url: str, **kwargs: Any) -> AsyncEngine:
    # SQL parameters hold message bodies, token hashes and webhook secrets: never in a log
    # line (`ZAPSYNC_DEBUG_LOGGERS=sqlalchemy.engine`) nor in an error's text.
    kwargs.setdefault("hide_parameters", True)
    if url.startswith("sqlite"):
        engine = create_async_engine(url, connect_args={"timeout": 30}, **kwargs)
        _sqlite_writers_queue(engine.sync_engine)
        return engine
    kwargs.setdefault("pool_size", 20)
    kwargs.setdefault("max_overflow", 20)
    return create_async_engine(url, pool_pre_ping=True, **kwargs)


def make_sync_engine(url: str) -> Engine:
    """Migrations, CLI checks: on SQLite they queue for the write lock like the app does."""
    engine = create_engine(sync_url(url), hide_parameters=True)
    if url.startswith("sqlite"):
        _sqlite_writers_queue(engine)
    return engine


PUBLISHER_KEY = "zapsync.publisher"


class Database:
    """The engine and session factory of one running zapsync.

    `publisher` is where events queued on a session go once it commits
    (`bus.after_commit.publish_on_commit`); every session opened here carries it, so a use
    case hands its events to the unit of work it writes in, not to a bus passed beside it."""

    def __init__(self, url: str, publisher: Callable[[Any], None] | None = None) -> None:
        self.url = url
        self.publisher = publisher
        self.engine = make_async_engine(url)
        self.sessionmaker = async_sessionmaker(self.engine, expire_on_commit=False)

    @property
    def is_sqlite(self) -> bool:
        return self.url.startswith("sqlite")

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        """A session whose transaction the caller commits; rolled back on error."""
        async with self.sessionmaker() as session:
            if self.publisher is not None:
                session.sync_session.info[PUBLISHER_KEY] = self.publisher
            try:
                yield session
            except BaseException:
                await session.rollback()
                raise

    @asynccontextmanager
    async def reads(self) -> AsyncIterator[AsyncSession]:
        """A session that only reads: on SQLite its transaction takes no lock, so the
        background's frequent polls (the outbox's due items) never queue a webhook."""
        async with self.session() as session:
            await reading(session)
            yield session

    async def dispose(self) -> None:
        await self.engine.dispose()
