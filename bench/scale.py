"""Scaled out on this machine (issue 15): conversation imports and webhook ingest with one
`zapsync serve` replica and one `zapsync worker`, then with two of each, as real processes on
PostgreSQL and Redis with ZAPSYNC_JOBS=procrastinate (the layout of `make run-cluster`, started
by `tests/support/cluster.py` on free ports and a database of its own).

- imports: `--sessions` sessions (4) on the sandbox Evolution gateway (its own process), each
  with `--messages` messages (20,000) over 200 chats, history window off; all paired at once.
  Messages/s from the first pairing to the last run finished. Target: two workers >= 1.4x one.
- ingest: `--webhooks` Evolution `messages.upsert` webhooks posted at `--concurrency` for
  `--sessions` sessions, each session's to one replica (as each session's webhook points at
  the replica that created it), the sessions spread evenly. Bodies are built before the clock
  starts, and posted by `bench/_load.py`'s lean client (the client shares the two cores with
  what it measures). Target: two replicas >= 1.3x one.

The machine's other work moves these figures: the layouts are measured in turn, `--rounds`
times; the best round of each and the median are printed, and the load average before and
after.
Run: `.venv/bin/python -m bench.scale [--sessions 4] [--messages 20000] [--webhooks 6000]
[--rounds 5]`."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from tests.support.cluster import EVOLUTION_KEY, Cluster, running_cluster, until

from bench._common import bench_owner, bench_session, ratio_line
from bench._load import post_all, run
from bench.ingest import SECRET, webhook
from zapsync.runtime.context import AppContext
from zapsync.settings import Settings

CHATS = 200
SETTINGS = {
    "ZAPSYNC_SECRET_KEY": "bench",  # what bench.ingest's seeded session is encrypted with
    "ZAPSYNC_LOG_LEVEL": "WARNING",  # a log line per request would be what is measured
    "ZAPSYNC_IMPORT_HISTORY_DAYS": "0",  # every seeded message counts
    "ZAPSYNC_WEBHOOK_RATE_LIMIT": "100000/second",
}


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f}"


def import_rate(cluster: Cluster, sessions: int, messages: int, label: str) -> float:
    """Messages/s of `sessions` imports of `messages` each, paired at once."""
    replicas = [p.url for p in cluster.processes.values() if p.name.startswith("replica")]
    ids: list[int] = []
    with httpx.Client(headers=cluster.headers, timeout=60) as http:
        for n in range(sessions):
            name = f"bench-{label}-{n}"
            config = {"base_url": cluster.sandbox, "api_key": EVOLUTION_KEY, "instance": name}
            created = http.post(
                f"{replicas[n % len(replicas)]}/api/v1/sessions",
                json={"name": name, "provider": "evolution", "config": config},
            )
            created.raise_for_status()
            ids.append(int(created.json()["id"]))
            seeded = http.post(
                f"{cluster.sandbox}/_sandbox/instances/{name}/seed",
                json={"chats": CHATS, "messages": messages, "days": 10},
            )
            seeded.raise_for_status()
        started = time.perf_counter()
        for n, sid in enumerate(ids):
            scan = f"{cluster.sandbox}/_sandbox/instances/bench-{label}-{n}/scan"
            http.post(scan, json={"phone": f"55119{sid:08d}"}).raise_for_status()

    def all_finished() -> bool:
        rows = cluster.query(
            "SELECT count(*) FROM sync_runs WHERE kind = 'import-conversations' "
            "AND session_id = ANY(%s) AND status IN ('succeeded', 'partial', 'failed')",
            ids,
        )
        return int(rows[0][0]) >= len(ids)

    until(all_finished, 600, "every import finished", every=0.1)
    elapsed = time.perf_counter() - started
    ((stored,),) = cluster.query("SELECT count(*) FROM messages WHERE session_id = ANY(%s)", ids)
    if stored != sessions * messages:
        raise SystemExit(f"the imports stored {stored} messages of {sessions * messages}")
    return stored / elapsed


async def webhook_sessions(database_url: str, count: int) -> list[int]:
    """`count` connected Evolution sessions whose webhooks carry `SECRET`."""
    settings = Settings(database_url=database_url, ZAPSYNC_SECRET_KEY="bench")
    ctx = AppContext.create(settings)
    try:
        async with ctx.db.session() as db:
            user = await bench_owner(db)
            sessions = []
            for n in range(count):
                config = {"base_url": "http://127.0.0.1:9", "api_key": "k", "instance": f"in-{n}"}
                session = bench_session(
                    ctx.cipher,
                    user,
                    name=f"ingest-{n}",
                    provider="evolution",
                    gateway_key=f"evolution|in-{n}",
                    config=config,
                    webhook_secret=SECRET,
                )
                db.add(session)
                sessions.append(session)
            await db.commit()
            return [s.id for s in sessions]
    finally:
        await ctx.aclose()


def webhook_bodies(sids: list[int], bases: list[str], count: int, run: str) -> list[Any]:
    """(url, body) of `count` webhooks, round-robin over the sessions; session k's go to
    replica k mod replicas."""
    posts = []
    for n in range(count):
        k = n % len(sids)
        body = json.loads(webhook(n, run))
        body["instance"] = f"in-{k}"
        url = f"{bases[k % len(bases)]}/api/v1/webhooks/evolution/{sids[k]}"
        posts.append((url, json.dumps(body).encode()))
    return posts


async def post_webhooks(posts: list[Any], concurrency: int) -> float:
    headers = {"X-Zapsync-Token": SECRET, "Content-Type": "application/json"}
    return await post_all(posts, headers, concurrency)


def ingest_rate(
    cluster: Cluster, sids: list[int], count: int, concurrency: int, label: str
) -> float:
    bases = [p.url or "" for p in cluster.processes.values() if p.name.startswith("replica")]
    posts = webhook_bodies(sids, bases, count, label)
    return run(lambda: post_webhooks(posts, concurrency))


def measure(size: int, args: argparse.Namespace, label: str) -> tuple[float, float]:
    """(import msg/s, ingest msg/s) of a cluster of `size` replicas and `size` workers."""
    with (
        tempfile.TemporaryDirectory() as tmp,
        running_cluster(Path(tmp), replicas=size, workers=size, settings=SETTINGS) as cluster,
    ):
        sids = asyncio.run(webhook_sessions(cluster.database_url, args.sessions))
        bases = [p.url or "" for p in cluster.processes.values() if p.name.startswith("rep")]
        warm = webhook_bodies(sids, bases, 400, "warm")
        run(lambda: post_webhooks(warm, args.concurrency))
        imports = import_rate(cluster, args.sessions, args.messages, label)
        ingest = ingest_rate(cluster, sids, args.webhooks, args.concurrency, label)
    return imports, ingest


def main(args: argparse.Namespace) -> None:
    before = load()
    rounds: dict[int, dict[str, list[float]]] = {n: {"imports": [], "ingest": []} for n in (1, 2)}
    every: list[str] = []
    # One cluster at a time (two at once pass PostgreSQL's 100 connections), the layouts in
    # turn, so that a change of the machine's load falls on both.
    for n in range(args.rounds):
        for size in (1, 2):
            imports, ingest = measure(size, args, f"r{n}")
            every.append(f"{size}x{size} import {imports:.0f}, ingest {ingest:.0f}")
            rounds[size]["imports"].append(imports)
            rounds[size]["ingest"].append(ingest)
    print(
        f"scale-out: {args.sessions} imports x {args.messages} messages; {args.webhooks} "
        f"webhooks at concurrency {args.concurrency} over {args.sessions} sessions; "
        f"{args.rounds} rounds; {os.cpu_count()} cores, load average before {before}, "
        f"after {load()}"
    )
    print("rounds (msg/s): " + "; ".join(every))
    # The best round of each layout, and the median: on a shared VM one lucky or unlucky
    # round moves the best by a fifth, the median less.
    for label, pick in (("best", max), ("median", statistics.median)):
        one, two = ({k: pick(v) for k, v in rounds[size].items()} for size in (1, 2))
        for what, one_name, two_name, target in (
            ("imports", "import, 1 worker", "import, 2 workers", ">= 1.4"),
            ("ingest", "ingest, 1 replica", "ingest, 2 replicas", ">= 1.3"),
        ):
            base = one[what]
            print(ratio_line(f"{one_name}, {label}", base, base, "msg/s", "-"))
            print(ratio_line(f"{two_name}, {label}", two[what], base, "msg/s", target))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sessions", type=int, default=4)
    parser.add_argument("--messages", type=int, default=20000)
    parser.add_argument("--webhooks", type=int, default=6000)
    # enough that neither layout waits on its own latency (32 left two replicas idle)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=5)
    main(parser.parse_args())
