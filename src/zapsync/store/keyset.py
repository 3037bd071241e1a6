"""Keyset pagination over `(sort key, id)` where the sort key may be NULL (NULLs come last).

A cursor is opaque to clients: the last row's key and id, JSON in URL-safe base64. Unlike an
offset, it neither skips nor repeats rows when new ones arrive between two pages.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, or_

from zapsync.services.errors import Invalid
from zapsync.store.types import MAX_ID


@dataclass(frozen=True, slots=True)
class Cursor:
    key: Any  # a datetime, a string or None
    id: int


def encode_cursor(key: Any, row_id: int) -> str:
    value = key.isoformat() if isinstance(key, datetime) else key
    raw = json.dumps([value, row_id], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, *, datetimes: bool = False) -> Cursor:
    """The cursor a previous page returned; a 422 for anything else."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        key, row_id = json.loads(raw)
        # Cursors page INTEGER-keyed tables; a bigger id would overflow the query.
        if not isinstance(row_id, int) or isinstance(row_id, bool) or not 0 < row_id <= MAX_ID:
            raise ValueError(row_id)
        if key is not None and not isinstance(key, str):
            raise ValueError(key)
        if datetimes and key is not None:
            key = datetime.fromisoformat(key)
            if key.tzinfo is None:
                raise ValueError(key)
    except (binascii.Error, ValueError, TypeError, UnicodeDecodeError, RecursionError):
        raise Invalid("the cursor is not one this API returned") from None
    return Cursor(key, row_id)


def order_by(key: Any, row_id: Any, *, descending: bool) -> list[Any]:
    if descending:
        return [key.desc().nulls_last(), row_id.desc()]
    return [key.asc().nulls_last(), row_id.asc()]


def after(key: Any, row_id: Any, cursor: Cursor, *, descending: bool) -> ColumnElement[bool]:
    """Rows that come after `cursor` in `order_by(key, row_id, descending=...)` order."""

    def beyond(column: Any, value: Any) -> ColumnElement[bool]:
        return column < value if descending else column > value

    if cursor.key is None:
        return and_(key.is_(None), beyond(row_id, cursor.id))
    return or_(
        beyond(key, cursor.key),
        and_(key == cursor.key, beyond(row_id, cursor.id)),
        key.is_(None),
    )
