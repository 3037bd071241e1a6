"""Plain inserts of many rows: PostgreSQL's `COPY … FROM STDIN` there, an executemany elsewhere.

A pull creates contacts and refs by the thousand. psycopg pipelines an executemany, but each
row still costs a round of parameter dumping and statement bookkeeping on both sides; COPY
streams the rows in one command at a fraction of that (bench/chatwoot_pull.py). The values go
through each column's own bind processing first (storable text, UTC times, JSON), so what is
stored is what an INSERT of the same rows would store, and a unique violation surfaces as the
same `IntegrityError` an INSERT raises."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import psycopg
from sqlalchemy import Table, insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession


async def insert_rows(db: AsyncSession, table: Table, rows: Sequence[Mapping[str, Any]]) -> None:
    """Insert the rows (every row with the same keys, Python-side defaults already in them)."""
    if not rows:
        return
    conn = await db.connection()
    if conn.dialect.name != "postgresql":
        await db.execute(insert(table), list(rows))
        return
    names = list(rows[0])
    dialect = conn.dialect
    processors = [
        table.c[name].type.dialect_impl(dialect).bind_processor(dialect) for name in names
    ]
    quote = dialect.identifier_preparer.quote
    command = f"COPY {quote(table.name)} ({', '.join(quote(n) for n in names)}) FROM STDIN"
    raw = await conn.get_raw_connection()
    driver: psycopg.AsyncConnection[Any] = raw.driver_connection  # type: ignore[assignment]
    try:
        async with driver.cursor() as cursor, cursor.copy(command) as copy:
            for row in rows:
                await copy.write_row(
                    [
                        row[name] if process is None else process(row[name])
                        for name, process in zip(names, processors, strict=True)
                    ]
                )
    except psycopg.errors.IntegrityError as exc:
        raise IntegrityError(command, None, exc) from exc
