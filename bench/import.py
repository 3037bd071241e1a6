"""Conversation import of 50k-200k messages from the in-process sandbox gateway.

For each backend (SQLite file; PostgreSQL database created and dropped here) and each size,
one child process migrates a fresh database, seeds the sandbox world (200 one-to-one chats,
history window off so every message counts) and times `import_conversations`. It then copies
the rows the import wrote (organization, user, session, contacts, conversations) into a second
fresh database and times a plain bulk insert of the same message rows (same columns and
values, ids left to the database): one SQLAlchemy Core `insert(messages)` executemany in one
transaction, through the same async driver. Without RETURNING, SQLAlchemy hands that to the
driver's own executemany: sqlite3's (one prepared statement stepped per row) and psycopg 3's
(one prepared INSERT per row, pipelined).

Prints, per backend and size: messages/s of the import and of the bulk insert, their ratio
(target >= 0.5), the RSS the import added (peak during the import minus RSS just before it,
sampled from /proc/self/statm) and the process's peak RSS during the import (target < 200 MB,
flat as the count grows). The seeded world itself holds every message in memory, so the
process RSS before the import grows with the count; the import's own growth should not.

Run: `make bench` or `.venv/bin/python -m bench.import [--sizes 50000,100000,200000]
[--backends sqlite,postgresql] [--quick]`."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import insert, select

from bench._common import (
    MB,
    PeakSampler,
    bench_owner,
    bench_session,
    bench_settings,
    max_rss_bytes,
    postgres_url,
    rss_bytes,
)
from zapsync.runtime.context import AppContext
from zapsync.services.imports.importer import import_conversations
from zapsync.services.sessions.gateway import sandbox_instance_name
from zapsync.store.db import make_async_engine, make_sync_engine
from zapsync.store.migrate import upgrade
from zapsync.store.models import (
    Contact,
    Conversation,
    Message,
    Organization,
    Session,
    User,
)
from zapsync.store.upsert import table_of

CHATS = 200
DEFAULT_SIZES = "50000,100000,200000"
QUICK_SIZES = "5000,10000"
# What the bulk insert needs in place before the messages (their foreign keys).
PREREQUISITES = (Organization, User, Session, Contact, Conversation)


# --- databases ------------------------------------------------------------------------------


@contextlib.contextmanager
def fresh_database(backend: str, folder: Path, label: str) -> Iterator[str]:
    """The async URL of a new, migrated database; a PostgreSQL one is dropped afterwards."""
    if backend == "sqlite":
        url = f"sqlite+aiosqlite:///{folder / label}.db"
        upgrade(url)
        yield url
        return
    with postgres_url(label) as url:
        upgrade(url)
        yield url


# --- one measurement (child process) --------------------------------------------------------


async def make_session(ctx: AppContext) -> int:
    async with ctx.db.session() as db:
        user = await bench_owner(db)
        session = bench_session(
            ctx.cipher,
            user,
            name="bench",
            provider="sandbox",
            gateway_key="sandbox:bench",
            config={},
        )
        db.add(session)
        await db.commit()
        return session.id


async def measure_import(url: str, size: int) -> dict[str, Any]:
    settings = bench_settings(url, ZAPSYNC_IMPORT_HISTORY_DAYS=0)
    ctx = AppContext.create(settings)
    try:
        session_id = await make_session(ctx)
        inst = ctx.world.create(sandbox_instance_name(session_id))
        ctx.world.seed(inst, chats=CHATS, groups=0, empty=0, messages=size, days=10)
        gc.collect()
        before, max_before = rss_bytes(), max_rss_bytes()
        with PeakSampler() as sampler:
            started = time.perf_counter()
            report = await import_conversations(ctx, session_id, trigger="bench")
            elapsed = time.perf_counter() - started
        max_after = max_rss_bytes()
        assert report.status == "succeeded", report.error_messages
        assert report.messages["created"] == size, report.messages
        # ru_maxrss is exact; when it rose during the import it is the import's peak.
        peak = max(sampler.peak, max_after if max_after > max_before else 0)
        return {"seconds": elapsed, "rss_before": before, "peak": peak}
    finally:
        await ctx.aclose()


def copy_prerequisites(source_url: str, target_url: str) -> list[dict[str, Any]]:
    """Copy what the messages point to; return the message rows as the import wrote them."""
    source, target = make_sync_engine(source_url), make_sync_engine(target_url)
    try:
        with source.connect() as src, target.begin() as dst:
            for model in PREREQUISITES:
                table = table_of(model)
                rows = [dict(r) for r in src.execute(select(table)).mappings()]
                if rows:
                    dst.execute(insert(table), rows)
            messages = table_of(Message)
            columns = [c for c in messages.c if c.name != "id"]
            query = select(*columns).order_by(messages.c.id)
            return [dict(r) for r in src.execute(query).mappings()]
    finally:
        source.dispose()
        target.dispose()


async def bulk_insert(url: str, rows: list[dict[str, Any]]) -> float:
    engine = make_async_engine(url)
    statement = insert(table_of(Message))
    try:
        async with engine.connect():
            pass  # connect (and load the driver) before the clock starts
        started = time.perf_counter()
        async with engine.begin() as conn:
            await conn.execute(statement, rows)
        return time.perf_counter() - started
    finally:
        await engine.dispose()


def child(backend: str, size: int) -> dict[str, Any]:
    from zapsync.logs import configure_logging

    configure_logging("console", "WARNING")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        with fresh_database(backend, folder, "import") as url:
            measured = asyncio.run(measure_import(url, size))
            with fresh_database(backend, folder, "bulk") as bulk_url:
                rows = copy_prerequisites(url, bulk_url)
                assert len(rows) == size
                measured["bulk_seconds"] = asyncio.run(bulk_insert(bulk_url, rows))
    return {"backend": backend, "messages": size, **measured}


# --- the table (parent process) -------------------------------------------------------------


def run_child(backend: str, size: int) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, "-m", "bench.import", "--child", backend, str(size)],
        check=True,
        stdout=subprocess.PIPE,
        text=True,
    ).stdout
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return result


def print_row(r: dict[str, Any]) -> None:
    rate = r["messages"] / r["seconds"]
    bulk = r["messages"] / r["bulk_seconds"]
    growth = (r["peak"] - r["rss_before"]) / MB
    print(
        f"{r['backend']:<11} {r['messages']:>8} {r['seconds']:>9.2f} {rate:>9.0f} "
        f"{bulk:>12.0f} {rate / bulk:>7.2f} {r['rss_before'] / MB:>10.1f} "
        f"{growth:>10.1f} {r['peak'] / MB:>9.1f}",
        flush=True,
    )


def main(args: argparse.Namespace) -> None:
    sizes = [int(s) for s in (QUICK_SIZES if args.quick else args.sizes).split(",")]
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    print(
        f"conversation import: {CHATS} chats, in-process sandbox gateway, history window off\n"
        "baseline: the same message rows in one SQLAlchemy Core insert() executemany "
        "(the driver's executemany), one transaction, fresh schema\n"
        "ratio = import msgs/s / bulk msgs/s (target >= 0.5); "
        "RSS: growth = peak during import - RSS before it (target < 200 MB, flat)\n"
    )
    print(
        f"{'backend':<11} {'messages':>8} {'import s':>9} {'msgs/s':>9} {'bulk msgs/s':>12} "
        f"{'ratio':>7} {'RSS pre MB':>10} {'growth MB':>10} {'peak MB':>9}"
    )
    started = time.perf_counter()
    for backend in backends:
        for size in sizes:
            print_row(run_child(backend, size))
    print(f"\n(bench wall time {time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default=DEFAULT_SIZES, help="comma-separated message counts")
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--quick", action="store_true", help=f"sizes {QUICK_SIZES}")
    parser.add_argument("--child", nargs=2, metavar=("BACKEND", "SIZE"), help=argparse.SUPPRESS)
    parsed = parser.parse_args()
    if parsed.child:
        print(json.dumps(child(parsed.child[0], int(parsed.child[1]))))
    else:
        main(parsed)
