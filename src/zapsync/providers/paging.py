"""Paginators: which page of a listing to ask for next, decided from the page just answered.

Fetching stays with the client (the route, whether the parameters go in the query or the
body, how items are parsed); a paginator only names the parameters that ask for its current
page and, from what that page held, moves on or says there is no next page. `paginate` joins
the two. The caller may end a listing earlier (a `since` reached, a page with nothing new) by
leaving its loop. Pages are yielded whole, never item by item: each is written in one go.

Gateways page by offset (WAHA `limit`/`offset`, Evolution `take`/`skip`) and by page number
(Evolution `findMessages`); Chatwoot by page number until an empty page (contacts) and by
`before=<smallest id>` (a conversation's messages)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """One answer of a listing: its items as the API sent them (their count decides whether
    another page follows) and the number of pages, when the API tells it."""

    items: Sequence[T]
    total_pages: int | None = None


class Paginator(ABC, Generic[T]):
    """The state of one listing: the parameters of the page to fetch, and whether there is
    one. A paginator serves one listing; make a new one for the next."""

    def __init__(self) -> None:
        self.has_next_page = True

    @abstractmethod
    def params(self) -> dict[str, Any]:
        """The parameters that ask for the current page."""

    @abstractmethod
    def update_state(self, page: Page[T]) -> None:
        """Move on to the page after `page`, or end the listing."""

    def stop(self) -> None:
        self.has_next_page = False


class OffsetPaginator(Paginator[Any]):
    """`limit` items from `offset`, then the next `limit`. A page holding other than `limit`
    items is the last: fewer is the end of the list, more is an API that ignored the limit
    and sent everything at once."""

    def __init__(
        self,
        limit: int,
        *,
        offset: int = 0,
        limit_param: str = "limit",
        offset_param: str = "offset",
    ) -> None:
        super().__init__()
        self.limit = limit
        self.offset = offset
        self.limit_param = limit_param
        self.offset_param = offset_param

    def params(self) -> dict[str, Any]:
        return {self.limit_param: self.limit, self.offset_param: self.offset}

    def update_state(self, page: Page[Any]) -> None:
        if len(page.items) != self.limit:
            self.stop()
            return
        self.offset += len(page.items)


class PageNumberPaginator(Paginator[Any]):
    """Pages numbered from `first`, until an empty page. Two clues end it sooner: the page
    count the API announces (`Page.total_pages`) and, when the page size is known, a page
    shorter than it. `size_param` sends the size along when the API takes one."""

    def __init__(
        self,
        *,
        first: int = 1,
        page_param: str = "page",
        page_size: int | None = None,
        size_param: str | None = None,
    ) -> None:
        super().__init__()
        self.page = first
        self.page_param = page_param
        self.page_size = page_size
        self.size_param = size_param

    def params(self) -> dict[str, Any]:
        params: dict[str, Any] = {self.page_param: self.page}
        if self.size_param is not None and self.page_size is not None:
            params[self.size_param] = self.page_size
        return params

    def update_state(self, page: Page[Any]) -> None:
        if not page.items:
            last = True
        elif page.total_pages is not None:
            last = self.page >= page.total_pages
        else:
            last = self.page_size is not None and len(page.items) < self.page_size
        if last:
            self.stop()
            return
        self.page += 1


class BeforeIdPaginator(Paginator[T]):
    """Newest first: each page asks for what is older than the smallest id seen so far
    (`before=<id>`; the first page sends none). Ends on an empty page, or on one that brings
    no older id, as an API that ignores `before` would answer."""

    def __init__(
        self, id_of: Callable[[T], int], *, param: str = "before", before: int | None = None
    ) -> None:
        super().__init__()
        self.id_of = id_of
        self.param = param
        self.before = before

    def params(self) -> dict[str, Any]:
        return {} if self.before is None else {self.param: self.before}

    def update_state(self, page: Page[T]) -> None:
        if not page.items:
            self.stop()
            return
        smallest = min(self.id_of(item) for item in page.items)
        if self.before is not None and smallest >= self.before:
            self.stop()
            return
        self.before = smallest


class SeenKeys:
    """The keys a listing has already yielded. An API that ignores its paging parameters
    answers the same page again and again: a page with nothing new is the caller's sign to
    end the listing, rather than loop."""

    def __init__(self) -> None:
        self._keys: set[Hashable] = set()

    def first(self, key: Hashable) -> bool:
        """True the first time `key` is seen."""
        if key in self._keys:
            return False
        self._keys.add(key)
        return True

    def fresh(self, items: Iterable[T], key: Callable[[T], Hashable]) -> list[T]:
        """The items whose key was not seen before (each key once), now seen."""
        return [item for item in items if self.first(key(item))]


async def paginate(
    fetch: Callable[[dict[str, Any]], Awaitable[Page[T]]], paginator: Paginator[T]
) -> AsyncIterator[Page[T]]:
    """Each page `fetch` answers for the paginator's parameters, until there is no next one."""
    while paginator.has_next_page:
        page = await fetch(paginator.params())
        paginator.update_state(page)
        yield page
