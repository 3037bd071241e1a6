"""Queries on the encrypted columns (`store.models.ENCRYPTED`), for re-encrypting them under
a new key. Each takes the caller's session and never commits."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Column, Table, select
from sqlalchemy.ext.asyncio import AsyncSession

from zapsync.store.models import Base


@dataclass(frozen=True, slots=True)
class EncryptedColumn:
    """One column holding `Cipher` tokens, and its table's key."""

    table: Table
    column: Column[str]

    @property
    def key(self) -> Column[Any]:
        (key,) = self.table.primary_key.columns
        return key

    @property
    def table_name(self) -> str:
        return self.table.name


def encrypted_columns() -> list[EncryptedColumn]:
    return [
        EncryptedColumn(table, column)
        for table in Base.metadata.sorted_tables
        for column in table.columns
        if column.info.get("encrypted")
    ]


async def stored_tokens(db: AsyncSession, where: EncryptedColumn) -> list[tuple[Any, str]]:
    """(row key, token) of every row with a value in the column."""
    rows = await db.execute(select(where.key, where.column).where(where.column.is_not(None)))
    return [(row_id, token) for row_id, token in rows.all()]


async def replace_token(
    db: AsyncSession, where: EncryptedColumn, row_id: Any, read: str, fresh: str
) -> None:
    """Write `fresh` in the row's column if it still holds `read` (a value saved meanwhile is
    never overwritten)."""
    await db.execute(
        where.table.update()
        .where(where.key == row_id, where.column == read)
        .values({where.column.name: fresh})
    )
