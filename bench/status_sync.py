"""Status sync of 1,000 sessions against a sandbox gateway answering in 50 ms.

Prints the wall time and its ratio to the floor: 1,000 x 50 ms / the concurrency bound.
Target: within 1.5x of the floor, and under 5 s. Run: `make bench` or
`.venv/bin/python -m bench.status_sync [--sessions N] [--concurrency C] [--dialect D]`."""

from __future__ import annotations

import argparse
import asyncio
import time

import httpx

from bench._common import bench_owner, bench_session, bench_settings, sandbox_process, sqlite_url
from zapsync.runtime.context import AppContext
from zapsync.services.sessions.status_sync import apply_status_sync
from zapsync.store.migrate import upgrade

LATENCY_MS = 50
CONFIG_KEY = {"evolution": "instance", "waha": "session", "megaapi": "instance_key"}
STATUS_PATH = {
    "evolution": ("/instance/connectionState/bench-{n}", {"apikey": "sandbox-global-key"}),
    "waha": ("/api/sessions/bench-{n}", {"X-Api-Key": "sandbox-waha-key"}),
    "megaapi": ("/rest/instance/bench-{n}", {"Authorization": "Bearer sandbox-megaapi-token"}),
}
AUTH = {
    "evolution": ("api_key", "sandbox-global-key"),
    "waha": ("api_key", "sandbox-waha-key"),
    "megaapi": ("token", "sandbox-megaapi-token"),
}


async def seed(ctx: AppContext, base_url: str, dialect: str, count: int) -> None:
    async with ctx.db.session() as db:
        user = await bench_owner(db)
        field, secret = AUTH[dialect]
        for n in range(count):
            config = {"base_url": base_url, field: secret, CONFIG_KEY[dialect]: f"bench-{n}"}
            db.add(
                bench_session(
                    ctx.cipher,
                    user,
                    name=f"s{n}",
                    provider=dialect,
                    gateway_key=f"{dialect}|{n}",
                    config=config,
                    status="disconnected",
                )
            )
        await db.commit()


async def measure(args: argparse.Namespace, base_url: str, url: str) -> list[float]:
    settings = bench_settings(url, ZAPSYNC_STATUS_SYNC_CONCURRENCY=args.concurrency)
    ctx = AppContext.create(settings)
    runs = []
    try:
        await seed(ctx, base_url, args.dialect, args.sessions)
        await apply_status_sync(ctx, organization_id=None)  # warm the pool; all -> connected
        for _ in range(args.repeat):
            started = time.perf_counter()
            report = await apply_status_sync(ctx, organization_id=None)
            runs.append(time.perf_counter() - started)
            assert report.checked == args.sessions and not report.errors, report.errors[:3]
    finally:
        await ctx.aclose()
    return runs


async def raw_fan_out(base_url: str, args: argparse.Namespace) -> float:
    """The same status requests from a bare aiohttp client: what this machine and the
    sandbox cost before zapsync adds anything."""
    import aiohttp

    path, headers = STATUS_PATH[args.dialect]
    bound = asyncio.Semaphore(args.concurrency)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=200)) as client:

        async def one(n: int) -> None:
            async with bound, client.get(base_url + path.format(n=n), headers=headers) as resp:
                await resp.read()

        await asyncio.gather(*(one(n) for n in range(min(args.sessions, 200))))
        started = time.perf_counter()
        await asyncio.gather(*(one(n) for n in range(args.sessions)))
        return time.perf_counter() - started


def main(args: argparse.Namespace) -> None:
    from zapsync.logs import configure_logging

    configure_logging("console", "WARNING")
    floor = args.sessions * LATENCY_MS / 1000 / args.concurrency
    with sandbox_process(args.dialect) as base_url, sqlite_url() as url:
        upgrade(url)
        httpx.post(
            f"{base_url}/_sandbox/bulk",
            json={"prefix": "bench", "count": args.sessions},
            timeout=300,
        ).raise_for_status()
        httpx.post(f"{base_url}/_sandbox/fault", json={"fault": "none", "latency_ms": LATENCY_MS})
        raw = asyncio.run(raw_fan_out(base_url, args))
        runs = asyncio.run(measure(args, base_url, url))
    best = min(runs)
    print(
        f"status sync: {args.sessions} sessions, {args.dialect} sandbox at {LATENCY_MS} ms, "
        f"concurrency {args.concurrency}"
    )
    print(f"  floor (sessions x latency / concurrency)  {floor:8.3f} s")
    print(
        f"  bare aiohttp fan-out, same requests       {raw:8.3f} s   (ratio to floor "
        f"{raw / floor:.2f}: the machine and sandbox alone)"
    )
    print(f"  wall time (best of {args.repeat})                 {best:8.3f} s")
    print(
        f"  ratio to floor                            {best / floor:8.2f}   "
        "(target <= 1.5, and wall < 5 s)"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sessions", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--dialect", default="evolution", choices=sorted(CONFIG_KEY))
    parser.add_argument("--repeat", type=int, default=3)
    main(parser.parse_args())
