"""Keyset pagination over a tuple of sort keys ending in the row's id, none of them NULL.

A cursor is opaque to clients: the last row's key and id, JSON in URL-safe base64. Unlike an
offset, it neither skips nor repeats rows when new ones arrive between two pages. The next
page is a row-value comparison, `(key, id) < (:key, :id)`, which an index on `(…, key DESC,
id DESC)` serves as a range on both engines (issue 12); a NULL key would compare to nothing,
so the keys paged here never are (conversations store "no message yet" as `NO_ACTIVITY`).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, literal, tuple_

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


def order_by(keys: Sequence[Any], *, descending: bool) -> list[Any]:
    """`keys` (the sort keys, the id last) in the order pages go."""
    return [k.desc() for k in keys] if descending else [k.asc() for k in keys]


def after(keys: Sequence[Any], values: Sequence[Any], *, descending: bool) -> ColumnElement[bool]:
    """Rows that come after the row whose keys were `values` in `order_by(keys)` order. Each
    value is bound with its key's own type (an `ActivityTime` binds None as NO_ACTIVITY)."""
    bound = [literal(v, type_=k.type) for k, v in zip(keys, values, strict=True)]
    row, cursor = tuple_(*keys), tuple_(*bound)
    return row < cursor if descending else row > cursor
