"""Webhook ingest through one `zapsync serve`: messages per second sustained over HTTP, and
the latency from the webhook POST to the Socket.IO client's `new_message`.

Baseline in the same run: the same server answering `GET /health` (no database, no bus), so
`webhook msgs/s ÷ health req/s` is the share of the HTTP ceiling the ingest path keeps.
Targets (issue 4): >= 1,000 messages/s on PostgreSQL; p99 < 100 ms at 500 messages/s.
Run: `.venv/bin/python -m bench.ingest [--backends sqlite,postgresql] [--messages N]`."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import statistics
import time
from collections.abc import Iterator

import aiohttp
import socketio

from bench._common import (
    bench_owner,
    bench_session,
    free_port,
    postgres_url,
    sqlite_url,
    zapsync_process,
)
from zapsync.runtime.context import AppContext
from zapsync.security.tokens import hash_token, new_token
from zapsync.settings import Settings
from zapsync.store.migrate import upgrade
from zapsync.store.models import ApiToken

SECRET = "bench-hook-secret"


async def seed(url: str) -> tuple[str, int]:
    settings = Settings(database_url=url, ZAPSYNC_SECRET_KEY="bench", ZAPSYNC_SCHEDULER=False)
    ctx = AppContext.create(settings)
    try:
        async with ctx.db.session() as db:
            user = await bench_owner(db)
            token = new_token()
            db.add(
                ApiToken(
                    user_id=user.id,
                    organization_id=user.organization_id,
                    token_hash=hash_token(token),
                    prefix=token[:8],
                )
            )
            config = {"base_url": "http://127.0.0.1:9", "api_key": "k", "instance": "bench"}
            session = bench_session(
                ctx.cipher,
                user,
                name="bench",
                provider="evolution",
                gateway_key="evolution|bench",
                config=config,
                webhook_secret=SECRET,
            )
            db.add(session)
            await db.commit()
            return token, session.id
    finally:
        await ctx.aclose()


@contextlib.contextmanager
def zapsync_server(url: str) -> Iterator[str]:
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "ZAPSYNC_SECRET_KEY": "bench",
        "ZAPSYNC_SCHEDULER": "false",
        "ZAPSYNC_LOG_LEVEL": os.environ.get("BENCH_SERVER_LOG_LEVEL", "WARNING"),
    }
    with (
        open(os.environ.get("BENCH_SERVER_LOG", os.devnull), "w") as log,
        zapsync_process(["serve", "--port", str(port)], port, "/health", env, log) as base,
    ):
        yield base


def webhook(n: int, run: str) -> bytes:
    body = {
        "event": "messages.upsert",
        "instance": "bench",
        "data": {
            "key": {
                "remoteJid": f"55119{n % 500:08d}@s.whatsapp.net",
                "fromMe": False,
                "id": f"{run}{n:010d}",
            },
            "pushName": f"Cliente {n % 500}",
            "message": {"conversation": f"mensagem {n}"},
            "messageType": "conversation",
            "messageTimestamp": int(time.time()),
        },
        "date_time": "2026-11-20T11:03:11.512Z",
        "sender": "5511912340000@s.whatsapp.net",
    }
    return json.dumps(body).encode()


async def throughput(base: str, sid: int, count: int, concurrency: int, run: str) -> float:
    url = f"{base}/api/v1/webhooks/evolution/{sid}"
    headers = {"X-Zapsync-Token": SECRET, "content-type": "application/json"}
    bound = asyncio.Semaphore(concurrency)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=200)) as client:

        async def one(n: int) -> None:
            async with bound, client.post(url, data=webhook(n, run), headers=headers) as resp:
                assert resp.status == 200, await resp.text()

        started = time.perf_counter()
        await asyncio.gather(*(one(n) for n in range(count)))
        return count / (time.perf_counter() - started)


async def health_rate(base: str, count: int, concurrency: int) -> float:
    bound = asyncio.Semaphore(concurrency)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=200)) as client:

        async def one() -> None:
            async with bound, client.get(f"{base}/health") as resp:
                await resp.read()

        started = time.perf_counter()
        await asyncio.gather(*(one() for _ in range(count)))
        return count / (time.perf_counter() - started)


async def latency(
    base: str, token: str, sid: int, rate: int, seconds: float, run: str
) -> list[float]:
    """POST at `rate` messages/s; ms from each POST's start to its `new_message`."""
    sent: dict[str, float] = {}
    received: dict[str, float] = {}
    sio = socketio.AsyncClient()

    @sio.on("new_message")
    async def on_message(data: dict[str, object]) -> None:
        key = str(data.get("provider_message_id"))
        received.setdefault(key, time.perf_counter())

    await sio.connect(base, auth={"token": token}, transports=["websocket"])
    url = f"{base}/api/v1/webhooks/evolution/{sid}"
    headers = {"X-Zapsync-Token": SECRET, "content-type": "application/json"}
    total = int(rate * seconds)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=200)) as client:

        async def one(n: int) -> None:
            sent[f"{run}{n:010d}"] = time.perf_counter()
            async with client.post(url, data=webhook(n, run), headers=headers) as resp:
                await resp.read()

        tasks = []
        started = time.perf_counter()
        for n in range(total):
            delay = started + n / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(n)))
        await asyncio.gather(*tasks)
        for _ in range(100):
            if len(received) >= total:
                break
            await asyncio.sleep(0.05)
    await sio.disconnect()
    return [(received[k] - sent[k]) * 1000 for k in sent if k in received]


def measure(backend: str, url: str, args: argparse.Namespace) -> dict[str, float]:
    upgrade(url)
    token, sid = asyncio.run(seed(url))
    with zapsync_server(url) as base:
        asyncio.run(throughput(base, sid, 200, args.concurrency, "warm"))
        health = asyncio.run(health_rate(base, args.messages, args.concurrency))
        rate = asyncio.run(throughput(base, sid, args.messages, args.concurrency, "tput"))
        # The client's own full collections stalled its loop for ~90 ms on this machine and
        # showed up as the server's latency; they are held off while it measures.
        gc.collect()
        gc.disable()
        try:
            lat = asyncio.run(latency(base, token, sid, args.rate, args.seconds, "lat"))
        finally:
            gc.enable()
    expected = int(args.rate * args.seconds)
    q = statistics.quantiles(lat, n=100) if len(lat) > 2 else [float("nan")] * 99
    return {
        "health": health,
        "rate": rate,
        "p50": statistics.median(lat) if lat else float("nan"),
        "p99": q[98],
        "delivered": len(lat) / expected,
    }


def main(args: argparse.Namespace) -> None:
    rows = []
    for backend in args.backends.split(","):
        maker = sqlite_url if backend == "sqlite" else postgres_url
        with maker() as url:
            rows.append((backend, measure(backend, url, args)))
    print(
        f"webhook ingest: {args.messages} messages at concurrency {args.concurrency}; "
        f"latency at {args.rate} msg/s for {args.seconds:g} s"
    )
    print(
        f"{'backend':<11}{'health req/s':>13}{'webhook msg/s':>15}{'ratio':>7}"
        f"{'p50 ms':>9}{'p99 ms':>9}{'delivered':>11}"
    )
    for backend, r in rows:
        print(
            f"{backend:<11}{r['health']:>13.0f}{r['rate']:>15.0f}{r['rate'] / r['health']:>7.2f}"
            f"{r['p50']:>9.1f}{r['p99']:>9.1f}{r['delivered']:>10.0%}"
        )
    print("targets: >= 1000 msg/s on PostgreSQL; p99 < 100 ms at 500 msg/s")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--messages", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--rate", type=int, default=500)
    parser.add_argument("--seconds", type=float, default=4.0)
    main(parser.parse_args())
