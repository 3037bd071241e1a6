"""Pages fetched ahead while the previous batch is written: a run costs about the longer of
fetching and writing, not their sum, and writes in batches of several pages (one transaction
and a few statements per batch rather than per page)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any, TypeVar

Item = TypeVar("Item")

_DONE = object()


async def batches(
    pages: AsyncIterator[Sequence[Item]],
    position: Callable[[], Any],
    *,
    min_items: int,
    ahead: int = 4,
) -> AsyncIterator[tuple[list[Item], Any]]:
    """Join pages into batches of at least `min_items` (the last may be smaller), each with
    `position()` as it was after its last page (where a run resumes after that batch)."""
    queue: asyncio.Queue[Any] = asyncio.Queue(maxsize=ahead)

    async def fetch() -> None:
        try:
            async for page in pages:
                await queue.put((list(page), position()))
        except BaseException as exc:  # handed to the consumer, which raises it
            await queue.put(exc)
            return
        await queue.put(_DONE)

    fetcher = asyncio.get_running_loop().create_task(fetch(), name="fetch-pages")
    try:
        batch: list[Item] = []
        where: Any = None
        while True:
            got = await queue.get()
            if got is _DONE:
                break
            if isinstance(got, BaseException):
                if batch:  # what was read before the failure is still written
                    yield batch, where
                raise got
            page, where = got
            batch.extend(page)
            if len(batch) >= min_items:
                yield batch, where
                batch = []
        if batch:
            yield batch, where
    finally:
        fetcher.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await fetcher
