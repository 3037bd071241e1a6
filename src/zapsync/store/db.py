"""Engines and sessions for SQLite (embedded) and PostgreSQL (scaled out)."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any

import aiosqlite
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


def _run_statement(
    conn: sqlite3.Connection, operation: str, parameters: Any, many: bool
) -> tuple[Any, list[Any], int, int | None]:
    # In the connection's own thread: the whole statement, its rows and counts at once.
    cursor = conn.cursor()
    try:
        if many:
            cursor.executemany(operation, parameters)
        else:
            cursor.execute(operation, parameters)
        description = cursor.description
        rows = cursor.fetchall() if description else []
        return description, rows, cursor.rowcount, cursor.lastrowid
    finally:
        cursor.close()


class _OneTripCursor:
    """An aiosqlite cursor that costs the event loop one round trip a statement.

    aiosqlite's own costs four (open the cursor, execute, fetch, close), each a wake-up of
    the loop from the connection's thread, and each wake-up waits behind whatever else the
    loop has to run: with 8 agents browsing, a webhook's ten statements were 39 round trips,
    most of its time (issue 12). Here the statement, its rows and its counts come back
    together; fetches and close are then local (SQLAlchemy buffers the rows anyway)."""

    arraysize = 1

    def __init__(self, connection: aiosqlite.Connection) -> None:
        self._connection = connection
        self._rows: list[Any] = []
        self.description: Any = None
        self.rowcount = -1
        self.lastrowid: int | None = None

    async def __aenter__(self) -> _OneTripCursor:
        return self

    async def __aexit__(self, *_: Any) -> None:
        return None

    async def _run(self, operation: str, parameters: Any, many: bool) -> _OneTripCursor:
        connection = self._connection
        self.description, self._rows, self.rowcount, self.lastrowid = await connection._execute(
            _run_statement, connection._conn, operation, parameters, many
        )
        return self

    async def execute(self, operation: str, parameters: Any = ()) -> _OneTripCursor:
        return await self._run(operation, parameters, False)

    async def executemany(self, operation: str, parameters: Sequence[Any]) -> _OneTripCursor:
        return await self._run(operation, parameters, True)

    async def fetchall(self) -> list[Any]:
        rows, self._rows = self._rows, []
        return rows

    async def fetchone(self) -> Any:
        return self._rows.pop(0) if self._rows else None

    async def fetchmany(self, size: int | None = None) -> list[Any]:
        count = self.arraysize if size is None else size
        rows, self._rows = self._rows[:count], self._rows[count:]
        return rows

    async def setinputsizes(self, *_: Any) -> None:
        return None

    async def close(self) -> None:
        self._rows = []


class _OneTripConnection(aiosqlite.Connection):
    def cursor(self) -> Any:  # SQLAlchemy enters it: `await cursor.__aenter__()`
        return _OneTripCursor(self)


def _one_trip_connection(database: str, **kwargs: Any) -> aiosqlite.Connection:
    connection = _OneTripConnection(lambda: sqlite3.connect(database, **kwargs), 64)
    connection._thread.daemon = True  # as SQLAlchemy's own connect does
    return connection


def _sqlite_one_trip(dialect: Any, _: Any, cargs: list[Any], cparams: dict[str, Any]) -> Any:
    # The URL's arguments as the dialect made them, through the connection above.
    return dialect.dbapi.connect(*cargs, async_creator_fn=_one_trip_connection, **cparams)


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
        event.listen(engine.sync_engine, "do_connect", _sqlite_one_trip)
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
