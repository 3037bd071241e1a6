"""The id types of route parameters: bounded to what the key columns hold, so an id no row can
have is a 422 with a reason, never a database overflow (a 500)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path, Query

from zapsync.store.types import MAX_BIG_ID, MAX_ID

# MAX_ID: for the socket handlers' ids
__all__ = ["MAX_ID", "PathBigId", "PathId", "QueryBigId", "QueryId"]

# Sessions, conversations, contacts: INTEGER keys.
PathId = Annotated[int, Path(ge=1, le=MAX_ID)]
QueryId = Annotated[int | None, Query(ge=1, le=MAX_ID)]
# Messages: BIGINT keys.
QueryBigId = Annotated[int | None, Query(ge=1, le=MAX_BIG_ID)]
PathBigId = Annotated[int, Path(ge=1, le=MAX_BIG_ID)]
