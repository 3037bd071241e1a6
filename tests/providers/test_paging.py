"""The paginators over a fake listing in memory: which pages they ask for and where they stop.

No HTTP here; the gateways' own tests page over real HTTP against the sandbox dialects."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from zapsync.providers.paging import (
    BeforeIdPaginator,
    OffsetPaginator,
    Page,
    PageNumberPaginator,
    Paginator,
    SeenKeys,
    paginate,
)


class Listing:
    """Answers each request with `answer(params)` and keeps the parameters it was asked."""

    def __init__(self, answer: Callable[[dict[str, Any]], Page[Any]]) -> None:
        self.answer = answer
        self.asked: list[dict[str, Any]] = []

    async def fetch(self, params: dict[str, Any]) -> Page[Any]:
        self.asked.append(params)
        return self.answer(params)


async def read_all(listing: Listing, paginator: Paginator[Any]) -> list[Any]:
    return [item async for page in paginate(listing.fetch, paginator) for item in page.items]


def offsets(items: list[int]) -> Callable[[dict[str, Any]], Page[int]]:
    return lambda p: Page(items[p["offset"] : p["offset"] + p["limit"]])


async def test_offset_paging_reads_every_item_once_and_stops_on_a_short_page() -> None:
    listing = Listing(offsets(list(range(7))))
    assert await read_all(listing, OffsetPaginator(3)) == list(range(7))
    assert listing.asked == [
        {"limit": 3, "offset": 0},
        {"limit": 3, "offset": 3},
        {"limit": 3, "offset": 6},
    ]


async def test_offset_paging_over_an_exact_multiple_ends_on_the_empty_page() -> None:
    listing = Listing(offsets(list(range(6))))
    assert await read_all(listing, OffsetPaginator(3)) == list(range(6))
    assert [p["offset"] for p in listing.asked] == [0, 3, 6]


async def test_offset_paging_stops_when_the_api_ignores_the_limit() -> None:
    listing = Listing(lambda _: Page(list(range(10))))
    paginator = OffsetPaginator(4, limit_param="take", offset_param="skip")
    assert await read_all(listing, paginator) == list(range(10))
    assert listing.asked == [{"take": 4, "skip": 0}]


async def test_seen_keys_end_a_listing_that_repeats_its_first_page() -> None:
    """A gateway that ignores `offset` answers the first page for every offset."""
    listing = Listing(lambda _: Page(["a", "b"]))
    seen = SeenKeys()
    got = []
    async for page in paginate(listing.fetch, OffsetPaginator(2)):
        fresh = seen.fresh(page.items, str)
        if not fresh:
            break
        got.extend(fresh)
    assert got == ["a", "b"]
    assert len(listing.asked) == 2


def test_seen_keys_keep_each_key_once_even_within_a_page() -> None:
    seen = SeenKeys()
    assert seen.fresh(["a", "b", "a"], str) == ["a", "b"]
    assert seen.fresh(["b", "c"], str) == ["c"]
    assert seen.first("d") and not seen.first("d")


async def test_page_numbers_stop_on_the_last_page_the_api_announces() -> None:
    pages = {1: [1, 2], 2: [3, 4], 3: [5]}
    listing = Listing(lambda p: Page(pages.get(p["page"], []), total_pages=3))
    paginator = PageNumberPaginator(page_size=2, size_param="offset")
    assert await read_all(listing, paginator) == [1, 2, 3, 4, 5]
    assert listing.asked == [
        {"page": 1, "offset": 2},
        {"page": 2, "offset": 2},
        {"page": 3, "offset": 2},
    ]


async def test_page_numbers_trust_the_announced_count_over_a_short_page() -> None:
    pages = {1: [1], 2: [2]}  # a server that caps its pages below the size asked
    listing = Listing(lambda p: Page(pages.get(p["page"], []), total_pages=2))
    assert await read_all(listing, PageNumberPaginator(page_size=5)) == [1, 2]


async def test_page_numbers_stop_on_a_short_page_when_no_count_is_given() -> None:
    pages = {1: [1, 2], 2: [3]}
    listing = Listing(lambda p: Page(pages.get(p["page"], [])))
    assert await read_all(listing, PageNumberPaginator(page_size=2)) == [1, 2, 3]
    assert len(listing.asked) == 2


async def test_page_numbers_without_a_size_read_until_an_empty_page() -> None:
    """Chatwoot's contacts: a fixed page size the client is not told, pages until empty."""
    pages = {1: list(range(15)), 2: list(range(15, 30)), 3: [30]}
    listing = Listing(lambda p: Page(pages.get(p["page"], [])))
    assert await read_all(listing, PageNumberPaginator()) == list(range(31))
    assert listing.asked == [{"page": 1}, {"page": 2}, {"page": 3}, {"page": 4}]


def older_than(ids: list[int], size: int) -> Callable[[dict[str, Any]], Page[dict[str, int]]]:
    """Chatwoot's messages: the `size` newest below `before`, oldest first within a page."""

    def answer(params: dict[str, Any]) -> Page[dict[str, int]]:
        below = [i for i in sorted(ids) if "before" not in params or i < params["before"]]
        return Page([{"id": i} for i in below[-size:]])

    return answer


async def test_before_id_pages_walk_back_to_the_oldest_message() -> None:
    listing = Listing(older_than(list(range(1, 11)), size=4))
    items = await read_all(listing, BeforeIdPaginator(lambda m: m["id"]))
    assert sorted(m["id"] for m in items) == list(range(1, 11))
    assert listing.asked == [{}, {"before": 7}, {"before": 3}, {"before": 1}]


async def test_before_id_stops_when_the_api_ignores_before() -> None:
    listing = Listing(lambda _: Page([{"id": 5}, {"id": 6}]))
    items = await read_all(listing, BeforeIdPaginator(lambda m: m["id"]))
    assert [m["id"] for m in items] == [5, 6, 5, 6]  # the repeat is what shows it: then it stops
    assert listing.asked == [{}, {"before": 5}]


async def test_a_listing_can_start_from_a_known_id() -> None:
    listing = Listing(older_than([1, 2, 3, 8, 9], size=10))
    items = await read_all(listing, BeforeIdPaginator(lambda m: m["id"], before=8))
    assert [m["id"] for m in items] == [1, 2, 3]
    assert listing.asked == [{"before": 8}, {"before": 1}]
