"""How Chatwoot's lists page, kept apart from how a page is fetched (the dlt way).

A paginator sets the query of the first request, reads each page it is given and says whether
another page follows and how to ask for it. `paginate` drives one over any fetch function and
yields whole pages, never rows, so a caller writes each page in one statement.

Chatwoot pages in two ways (CHATWOOT.md §2-4): contacts and conversations by `page=N` until a
page comes back empty (no total worth trusting: conversations have none at all), messages by
`before=<smallest id seen>` until empty."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from typing import Any, Protocol, TypeVar

Item = TypeVar("Item")
Params = dict[str, Any]


class Paginator(Protocol):
    has_next_page: bool

    def init_request(self, params: Params) -> None:
        """Set the query of the first request."""

    def update_state(self, items: Sequence[Any]) -> None:
        """Take in the page just fetched; decide whether another follows."""

    def update_request(self, params: Params) -> None:
        """Set the query of the next request."""


class PageNumberPaginator:
    """`page=1, 2, ...` until a page is empty. `first_page` resumes a run cut off midway."""

    def __init__(self, first_page: int = 1, *, param: str = "page") -> None:
        if first_page < 1:
            raise ValueError("pages start at 1")
        self.page = first_page
        self.param = param
        self.has_next_page = True

    def init_request(self, params: Params) -> None:
        params[self.param] = self.page

    def update_state(self, items: Sequence[Any]) -> None:
        if not items:
            self.has_next_page = False
            return
        self.page += 1

    def update_request(self, params: Params) -> None:
        params[self.param] = self.page

    @property
    def last_page_done(self) -> int:
        """The last page number fully read (0 before any), for a run to resume after."""
        return self.page - 1


class BeforeIdPaginator:
    """The latest page first, then `before=<smallest id seen>` until a page is empty.

    Also stops when a page brings no id smaller than the last cursor: a server that ignored
    `before` would otherwise be asked for the same page forever."""

    def __init__(self, *, id_field: str = "id", param: str = "before") -> None:
        self.id_field = id_field
        self.param = param
        self.before: int | None = None
        self.has_next_page = True

    def init_request(self, params: Params) -> None:
        params.pop(self.param, None)

    def update_state(self, items: Sequence[Any]) -> None:
        ids = [_id_of(item, self.id_field) for item in items]
        known = [i for i in ids if i is not None]
        if not known:
            self.has_next_page = False
            return
        smallest = min(known)
        if self.before is not None and smallest >= self.before:
            self.has_next_page = False
            return
        self.before = smallest

    def update_request(self, params: Params) -> None:
        if self.before is not None:
            params[self.param] = self.before


def _id_of(item: Any, field: str) -> int | None:
    value = item.get(field) if isinstance(item, Mapping) else getattr(item, field, None)
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return None


async def paginate_ahead(
    fetch: Callable[[Params], Awaitable[Sequence[Item]]],
    paginator: PageNumberPaginator,
    params: Mapping[str, Any] | None = None,
    *,
    in_flight: int = 1,
) -> AsyncIterator[Sequence[Item]]:
    """As `paginate` for numbered pages, with up to `in_flight` pages asked for at once: the
    next pages are on their way while one is read and written. Pages come out in order, the
    paginator keeps count as they do (a run resumes after the last page it finished), the first
    empty page ends the list and the pages asked beyond it are dropped."""
    query: Params = dict(params or {})
    paginator.init_request(query)
    asked = paginator.page
    pending: deque[asyncio.Future[Sequence[Item]]] = deque()
    try:
        while True:
            while len(pending) < max(1, in_flight):
                pending.append(asyncio.ensure_future(fetch({**query, paginator.param: asked})))
                asked += 1
            page = await pending.popleft()
            paginator.update_state(page)
            if page:
                yield page
            if not paginator.has_next_page:
                return
    finally:
        for ahead in pending:
            ahead.cancel()
        await asyncio.gather(*pending, return_exceptions=True)


async def paginate(
    fetch: Callable[[Params], Awaitable[Sequence[Item]]],
    paginator: Paginator,
    params: Mapping[str, Any] | None = None,
) -> AsyncIterator[Sequence[Item]]:
    """Yield each non-empty page `fetch(query)` returns, as the paginator walks the list."""
    query: Params = dict(params or {})
    paginator.init_request(query)
    while True:
        page = await fetch(dict(query))
        paginator.update_state(page)
        if page:
            yield page
        if not paginator.has_next_page:
            return
        paginator.update_request(query)
