"""Chatwoot contacts pull: 50,000 contacts from the sandbox's Chatwoot dialect into PostgreSQL.

The sandbox's Chatwoot server runs in its own process (`zapsync sandbox serve --dialect
chatwoot`), seeded with the contacts; the database is a fresh, migrated PostgreSQL database
created and dropped here. Measured in the same run, in this order:

- the floor: a bare `httpx.AsyncClient` fetching the same pages (15 contacts each, until the
  empty page) one after the other, and doing nothing with them; and the floor of the way
  zapsync fetches them, a bare aiohttp session with as many pages in flight as zapsync asks
  for (`PAGES_IN_FLIGHT`), reading and dropping them;
- zapsync: `pull_contacts` of an integration of that server, first into the empty database
  (every contact created), then again with nothing changed upstream (every contact skipped);
  the process's peak RSS while it runs;
- dlt: its `rest_api` source (page-number paginator, `payload` as data selector, merge on
  `id`) into the same database, in a dataset of its own, from the same server, twice. dlt is
  only in the bench's optional dependency group: `make bench` installs it; without it this
  line says so and the dlt figures are left out.

Targets (issue 13): zapsync at most 0.5x dlt's time on the first pull and 0.25x on the second,
within 1.5x of the floor on both; peak RSS under 250 MB.

Run: `make bench`, or `.venv/bin/python -m bench.chatwoot_pull [--contacts 50000]`."""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import tempfile
import time
from collections import deque
from typing import Any

import aiohttp
import httpx
import orjson

from bench._common import (
    MB,
    PeakSampler,
    bench_settings,
    postgres_url,
    ratio_line,
    rss_bytes,
    sandbox_process,
)
from zapsync.connectors.chatwoot.client import PAGES_IN_FLIGHT
from zapsync.runtime.context import AppContext
from zapsync.sandbox.dialects.chatwoot.state import SANDBOX_ACCOUNT_ID, SANDBOX_TOKEN
from zapsync.services.accounts import Principal
from zapsync.services.integrations.connections import create_integration
from zapsync.services.integrations.contacts_pull import pull_contacts
from zapsync.services.integrations.sync_runs import RunResult
from zapsync.store.migrate import upgrade
from zapsync.store.models import Organization

READY = "/_sandbox/chatwoot/state"


def contacts_url(base: str) -> str:
    return f"{base}/api/v1/accounts/{SANDBOX_ACCOUNT_ID}/contacts"


async def floor(base: str) -> tuple[float, int]:
    """Every page, one after the other, read and dropped: the time the HTTP alone costs."""
    started = time.perf_counter()
    seen = 0
    async with httpx.AsyncClient(headers={"api_access_token": SANDBOX_TOKEN}) as client:
        page = 1
        while True:
            resp = await client.get(contacts_url(base), params={"page": page})
            resp.raise_for_status()
            items = resp.json()["payload"]
            if not items:
                break
            seen += len(items)
            page += 1
    return time.perf_counter() - started, seen


async def floor_ahead(base: str, in_flight: int = PAGES_IN_FLIGHT) -> tuple[float, int]:
    """Every page, `in_flight` at once over a bare aiohttp session, decoded and dropped."""
    started = time.perf_counter()
    seen = 0
    headers = {"api_access_token": SANDBOX_TOKEN}
    async with aiohttp.ClientSession(headers=headers) as session:

        async def get(page: int) -> list[Any]:
            async with session.get(contacts_url(base), params={"page": str(page)}) as resp:
                resp.raise_for_status()
                items: list[Any] = orjson.loads(await resp.read())["payload"]
                return items

        pending: deque[asyncio.Task[list[Any]]] = deque()
        asked = 1
        while True:
            while len(pending) < in_flight:
                pending.append(asyncio.ensure_future(get(asked)))
                asked += 1
            items = await pending.popleft()
            if not items:
                break
            seen += len(items)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
    return time.perf_counter() - started, seen


async def zapsync_pulls(base: str, database_url: str) -> dict[str, Any]:
    settings = bench_settings(database_url)
    ctx = AppContext.create(settings)
    try:
        async with ctx.db.session() as db:
            org = Organization(name="bench")
            db.add(org)
            await db.commit()
            view = await create_integration(
                ctx,
                db,
                Principal.operator(org.id),
                provider="chatwoot",
                api_key=SANDBOX_TOKEN,
                config={"account_id": str(SANDBOX_ACCOUNT_ID), "api_url": base},
            )
        integration = view.integration
        gc.collect()
        before = rss_bytes()
        with PeakSampler() as sampler:
            first, first_s = await timed_pull(ctx, integration)
            second, second_s = await timed_pull(ctx, integration)
        return {
            "first": first,
            "first_s": first_s,
            "second": second,
            "second_s": second_s,
            "rss_before": before,
            "peak": sampler.peak,
        }
    finally:
        await ctx.aclose()


async def timed_pull(ctx: AppContext, integration: Any) -> tuple[RunResult, float]:
    started = time.perf_counter()
    result = await pull_contacts(ctx, integration, trigger="bench")
    return result, time.perf_counter() - started


def dlt_pulls(base: str, database_url: str) -> tuple[float, float] | None:
    """dlt's rest_api source merging the same contacts, twice; None when dlt is absent."""
    os.environ.setdefault("RUNTIME__DLTHUB_TELEMETRY", "false")
    try:
        import dlt
        from dlt.sources.rest_api import rest_api_source
    except ImportError:
        return None
    # dlt insists on a password; the project's PostgreSQL trusts local connections and
    # ignores it.
    credentials = database_url.replace("postgresql+psycopg://postgres@", "postgresql://postgres:x@")

    def source() -> Any:
        return rest_api_source(
            {
                "client": {
                    "base_url": f"{base}/api/v1/accounts/{SANDBOX_ACCOUNT_ID}/",
                    "headers": {"api_access_token": SANDBOX_TOKEN},
                    "paginator": {
                        "type": "page_number",
                        "base_page": 1,
                        "page_param": "page",
                        "total_path": None,
                        "stop_after_empty_page": True,
                    },
                },
                "resources": [
                    {
                        "name": "contacts",
                        "endpoint": {"path": "contacts", "data_selector": "payload"},
                        "primary_key": "id",
                        "write_disposition": "merge",
                    }
                ],
            }
        )

    with tempfile.TemporaryDirectory() as folder:
        pipeline = dlt.pipeline(
            pipeline_name="chatwoot_bench",
            destination=dlt.destinations.postgres(credentials=credentials),
            dataset_name="dlt_chatwoot",
            pipelines_dir=folder,
        )
        times = []
        for _ in range(2):
            started = time.perf_counter()
            pipeline.run(source())
            times.append(time.perf_counter() - started)
    return times[0], times[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contacts", type=int, default=50_000)
    args = parser.parse_args()
    count = args.contacts

    with sandbox_process("chatwoot", READY) as base, postgres_url("chatwoot") as url:
        httpx.post(
            f"{base}/_sandbox/chatwoot/contacts/seed", json={"count": count}, timeout=120
        ).raise_for_status()
        upgrade(url)
        floor_s, seen = asyncio.run(floor(base))
        assert seen == count, f"the floor read {seen} contacts, not {count}"
        ahead_s, seen = asyncio.run(floor_ahead(base))
        assert seen == count, f"the floor ahead read {seen} contacts, not {count}"
        ours = asyncio.run(zapsync_pulls(base, url))
        first, second = ours["first"], ours["second"]
        assert (first.created, first.errors) == (count, 0), first
        assert (second.skipped, second.created, second.updated) == (count, 0, 0), second
        theirs = dlt_pulls(base, url)

    print(f"chatwoot contacts pull, {count:,} contacts, PostgreSQL")
    print(ratio_line("floor: bare client, same pages (s)", floor_s, floor_s, "s", "1.00"))
    print(ratio_line("zapsync first pull vs floor", ours["first_s"], floor_s, "s", "<= 1.5"))
    print(ratio_line("zapsync unchanged pull vs floor", ours["second_s"], floor_s, "s", "<= 1.5"))
    what = f"floor ahead: bare aiohttp, {PAGES_IN_FLIGHT} in flight"
    print(ratio_line(what, ahead_s, floor_s, "s", "-"))
    print(ratio_line("zapsync first pull vs floor ahead", ours["first_s"], ahead_s, "s", "-"))
    print(ratio_line("zapsync unchanged vs floor ahead", ours["second_s"], ahead_s, "s", "-"))
    if theirs is None:
        print("dlt is not installed (make bench installs the bench group): no dlt figures")
    else:
        dlt_first, dlt_second = theirs
        print(ratio_line("dlt rest_api first pull vs floor", dlt_first, floor_s, "s", "-"))
        print(ratio_line("dlt rest_api second pull vs floor", dlt_second, floor_s, "s", "-"))
        print(ratio_line("zapsync first pull vs dlt", ours["first_s"], dlt_first, "s", "<= 0.5"))
        print(
            ratio_line(
                "zapsync unchanged pull vs dlt", ours["second_s"], dlt_second, "s", "<= 0.25"
            )
        )
    peak_mb = ours["peak"] / MB
    print(f"{'zapsync peak RSS during the pulls':<40} {peak_mb:10.1f} MB     (target < 250 MB)")
    print(f"{'  of which before the pulls':<40} {ours['rss_before'] / MB:10.1f} MB")


if __name__ == "__main__":
    main()
