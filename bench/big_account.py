"""A big account's inbox (issue 12): the team with 200 numbers and a year of history, 5 million
messages in 120,000 conversations, one thread of 60,000 messages, on SQLite and PostgreSQL.

The dataset is bulk-loaded into the real schema after the migrations, once per size: an SQLite
file and a PostgreSQL database named by size under `--data-dir` / on the server, reused by the
next run (`--rebuild` loads them again). Each request of the issue's table goes through the
real API in-process (httpx over ASGI, with a token), `--requests` times one after the other,
against the same request on a tiny database measured in the same run (the baseline: what the
app and the machine cost before the data's size does). Then 8 simulated agents browse and
search while webhooks arrive, and the webhooks' latency is reported with every 5xx and every
"database is locked" seen.

Targets (issue 12): every request's p95 under 50 ms at 5 M messages (ratio to tiny under 3x);
webhook p99 under 150 ms with 8 agents browsing; zero "database is locked", zero 5xx.
Run: `.venv/bin/python -m bench.big_account [--messages 5000000] [--backends sqlite,postgresql]`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import random
import sqlite3
import statistics
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg
from asgi_lifespan import LifespanManager
from sqlalchemy import func, insert, select

from bench._common import PG_ADMIN_URL, bench_settings
from zapsync.api.app import create_app
from zapsync.security.crypto import Cipher
from zapsync.security.tokens import hash_token, new_token
from zapsync.store.db import make_sync_engine
from zapsync.store.migrate import analyze, upgrade
from zapsync.store.models import ApiToken, Contact, Conversation, Organization, Session, User
from zapsync.store.text import search_key

SECRET = "bench-hook-secret"
SECRET_KEY = "bench"
END = datetime(2026, 12, 1, tzinfo=UTC)
FIRST = ["João", "Maria", "José", "Ana", "Antônio", "Francisca", "Carlos", "Márcia", "Paulo"]
FIRST += ["Luíza", "Lucas", "Fernanda", "Sérgio", "Patrícia", "André", "Cláudia", "Zé", "Inês"]
LAST = ["Silva", "Santos", "Oliveira", "Souza", "Conceição", "Araújo", "Gonçalves", "Lima"]
LAST += ["Pereira", "Ferreira", "Magalhães", "Ribeiro", "Simões", "Assunção", "Brandão", "Melo"]


@dataclass(frozen=True)
class Size:
    messages: int
    conversations: int
    thread: int  # the longest conversation's messages
    sessions: int

    @classmethod
    def scaled(cls, messages: int) -> Size:
        conversations = max(50, round(messages * 120_000 / 5_000_000))
        thread = max(200, round(messages * 60_000 / 5_000_000))
        return cls(messages, conversations, thread, min(200, max(2, conversations // 600)))


TINY = Size(2_000, 50, 500, 2)


def person(n: int) -> tuple[str, str]:
    """Contact n's name and phone (a mobile with the ninth digit, as zapsync stores it)."""
    rng = random.Random(n)
    name = f"{rng.choice(FIRST)} {rng.choice(LAST)} {rng.choice(LAST)} {n}"
    return name, f"+55{11 + n % 89:02d}9{n % 100_000_000:08d}"


# -- the dataset ---------------------------------------------------------------------------


@dataclass
class Dataset:
    url: str
    size: Size
    organization_id: int = 0
    user_id: int = 0
    webhook_session: int = 0
    thread: int = 0  # the longest conversation's id
    ids: dict[str, Any] = field(default_factory=dict)


def sqlite_dataset(data_dir: Path, size: Size, rebuild: bool) -> str:
    path = data_dir / f"big_account_{size.messages}.db"
    if rebuild and path.exists():
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
    return f"sqlite+aiosqlite:///{path}"


def postgres_dataset(size: Size, rebuild: bool) -> str:
    name = f"zapsync_bench_big_{size.messages}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if rebuild and exists:
            conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
            exists = None
        if not exists:
            conn.execute(f'CREATE DATABASE "{name}"')
    base = PG_ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://")
    return f"{base}/{name}"


def prepare(url: str, size: Size) -> Dataset:
    """The dataset at `url`: loaded when missing, found again when present."""
    upgrade(url)
    data = Dataset(url, size)
    engine = make_sync_engine(url)
    label = f"big-account-{size.messages}"
    try:
        with engine.begin() as conn:
            org = conn.scalar(select(Organization.id).where(Organization.name == label))
        if org is None:
            started = time.perf_counter()
            load(engine, label, size)
            analyze(url)
            if url.startswith("postgresql"):
                vacuum(url)
            print(f"  loaded {size} in {time.perf_counter() - started:.0f} s")
        with engine.begin() as conn:
            org = conn.scalar(select(Organization.id).where(Organization.name == label))
            mine = Session.organization_id == org
            row = conn.execute(
                select(
                    select(User.id).where(User.organization_id == org).scalar_subquery(),
                    select(func.min(Session.id)).where(mine).scalar_subquery(),
                    select(func.min(Conversation.id))
                    .where(Conversation.organization_id == org)
                    .scalar_subquery(),
                )
            ).one()
        assert org is not None
        data.organization_id = org
        data.user_id, data.webhook_session, data.thread = (int(v) for v in row)
    finally:
        engine.dispose()
    return data


def vacuum(url: str) -> None:
    # COPY leaves the visibility map empty: without VACUUM no scan is index-only.
    dsn = url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")


def load(engine: Any, label: str, size: Size) -> None:
    cipher = Cipher(SECRET_KEY)
    with engine.begin() as conn:
        org = conn.scalar(insert(Organization).values(name=label).returning(Organization.id))
        user = conn.scalar(
            insert(User)
            .values(organization_id=org, email=f"{label}@zapsync.local", role="admin")
            .returning(User.id)
        )
        sessions = [
            {
                "organization_id": org,
                "created_by": user,
                "name": f"número {n}",
                "provider": "evolution",
                "gateway_key": f"evolution|{label}|{n}",
                "config_encrypted": cipher.encrypt_json(
                    {"base_url": "http://127.0.0.1:9", "api_key": "k", "instance": f"n{n}"}
                ),
                "webhook_secret_encrypted": SECRET,
                "status": "connected",
            }
            for n in range(size.sessions)
        ]
        conn.execute(insert(Session), sessions)
        sids = list(
            conn.scalars(select(Session.id).where(Session.organization_id == org).order_by("id"))
        )
        contacts = []
        for n in range(size.conversations):
            name, phone = person(n)
            contacts.append(
                {
                    "organization_id": org,
                    "phone_e164": phone,
                    "wa_jid": f"{phone[1:]}@s.whatsapp.net",
                    # Most chats now come with a LID as well; some still without one.
                    "lid": f"{10**14 + n * 7919}@lid" if n % 3 else None,
                    "name": name,
                    "search_name": search_key(name),
                }
            )
        for chunk in range(0, len(contacts), 5000):
            conn.execute(insert(Contact), contacts[chunk : chunk + 5000])
        cids = list(
            conn.scalars(select(Contact.id).where(Contact.organization_id == org).order_by("id"))
        )
        rng = random.Random(12)
        counts = [size.thread, *spread(size.messages - size.thread, size.conversations - 1)]
        lasts = [END - timedelta(seconds=rng.randrange(365 * 86400)) for _ in counts]
        conversations = [
            {
                "organization_id": org,
                "session_id": sids[n % len(sids)],
                "contact_id": cids[n],
                "chat_key": contacts[n]["phone_e164"],
                "chat_jid": contacts[n]["wa_jid"],
                "name": None,
                "status": ("open", "pending", "resolved", "resolved")[n % 4],
                "unread_count": n % 3,
                "last_message_at": lasts[n] if counts[n] else None,
                "last_message_preview": f"mensagem {counts[n] - 1}" if counts[n] else None,
            }
            for n in range(size.conversations)
        ]
        for chunk in range(0, len(conversations), 5000):
            conn.execute(insert(Conversation), conversations[chunk : chunk + 5000])
        convs = list(
            conn.scalars(
                select(Conversation.id).where(Conversation.organization_id == org).order_by("id")
            )
        )
        rows = message_rows(org, sids, convs, counts, lasts)
        driver = conn.connection.driver_connection
        if isinstance(driver, sqlite3.Connection):
            sql = f"INSERT INTO messages ({', '.join(MESSAGE_COLUMNS)}) VALUES "
            sql += f"({', '.join('?' * len(MESSAGE_COLUMNS))})"
            cursor = driver.cursor()
            for batch in batches(rows, 50_000):
                cursor.executemany(sql, [sqlite_row(r) for r in batch])
        else:
            with driver.cursor() as cursor:
                copy_sql = f"COPY messages ({', '.join(MESSAGE_COLUMNS)}) FROM STDIN"
                with cursor.copy(copy_sql) as copy:
                    for row in rows:
                        copy.write_row(row)


def spread(total: int, parts: int) -> list[int]:
    rng = random.Random(7)
    weights = [rng.paretovariate(1.5) for _ in range(parts)]
    scale = total / sum(weights)
    counts = [int(w * scale) for w in weights]
    for n in range(total - sum(counts)):
        counts[n % parts] += 1
    return counts


MESSAGE_COLUMNS = (
    "organization_id",
    "session_id",
    "conversation_id",
    "provider_message_id",
    "direction",
    "sender",
    "type",
    "body",
    "is_voice_note",
    "ack",
    "sent_at",
    "created_at",
)


def message_rows(
    org: int, sids: list[int], convs: list[int], counts: list[int], lasts: list[datetime]
) -> Iterator[tuple[Any, ...]]:
    rng = random.Random(3)
    for n, (conv, count, last) in enumerate(zip(convs, counts, lasts, strict=True)):
        sid = sids[n % len(sids)]
        at = last
        for k in range(count - 1, -1, -1):  # newest first, going back in time
            out = rng.random() < 0.4
            yield (
                org,
                sid,
                conv,
                f"B{conv}-{k}",
                "out" if out else "in",
                "agent" if out else "client",
                "text",
                f"mensagem {k}",
                False,
                "read",
                at,
                at,
            )
            at -= timedelta(seconds=rng.randrange(1, 400))


def sqlite_row(row: tuple[Any, ...]) -> tuple[Any, ...]:
    at = row[10].astimezone(UTC).replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")
    return (*row[:8], 0, row[9], at, at)


def batches(rows: Iterator[tuple[Any, ...]], n: int) -> Iterator[list[tuple[Any, ...]]]:
    batch: list[tuple[Any, ...]] = []
    for row in rows:
        batch.append(row)
        if len(batch) == n:
            yield batch
            batch = []
    if batch:
        yield batch


# -- the requests --------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def served(data: Dataset) -> AsyncIterator[httpx.AsyncClient]:
    """The app over ASGI, and a client holding a fresh token of the dataset's admin."""
    token = new_token()
    engine = make_sync_engine(data.url)
    with engine.begin() as conn:
        conn.execute(
            insert(ApiToken).values(
                user_id=data.user_id,
                organization_id=data.organization_id,
                token_hash=hash_token(token),
                prefix=token[:8],
            )
        )
    engine.dispose()
    with tempfile.TemporaryDirectory() as tmp:
        settings = bench_settings(
            data.url,
            ZAPSYNC_SECRET_KEY=SECRET_KEY,
            ZAPSYNC_DATA_DIR=Path(tmp),
            ZAPSYNC_PUBLIC_URL="http://127.0.0.1:9",
        )
        app = create_app(settings)
        async with LifespanManager(app):
            transport = httpx.ASGITransport(app=app)
            headers = {"Authorization": f"Bearer {token}"}
            async with httpx.AsyncClient(
                transport=transport, base_url="http://zapsync.bench", headers=headers, timeout=120
            ) as client:
                yield client


Request = Callable[[httpx.AsyncClient, random.Random], Awaitable[httpx.Response]]


async def explore(client: httpx.AsyncClient, data: Dataset) -> None:
    """What the requests need: the cursor of page 50, the message half a thread back."""
    cursor = None
    for _ in range(49):
        params = {"limit": 30, **({"cursor": cursor} if cursor else {})}
        body = (await client.get("/api/v1/conversations", params=params)).json()
        cursor = body["next_cursor"] or cursor
    data.ids["page50"] = cursor
    url = f"/api/v1/conversations/{data.thread}/messages"
    back = data.size.thread // 2
    body = (await client.get(url, params={"limit": 50, "page": back // 50})).json()
    data.ids["pivot"] = body["messages"][0]["id"]


def requests_of(data: Dataset) -> dict[str, Request]:
    size = data.size

    def name_q(rng: random.Random) -> str:
        name = person(rng.randrange(size.conversations))[0]
        return " ".join(name.split()[:2])  # first and last name, accents as typed

    def phone_q(rng: random.Random) -> str:
        phone = person(rng.randrange(size.conversations))[1]
        return f"{phone[-8:-4]}-{phone[-4:]}"  # "8765-4321", as an agent types it

    thread = f"/api/v1/conversations/{data.thread}/messages"
    return {
        "inbox first page": lambda c, r: c.get("/api/v1/conversations", params={"limit": 30}),
        "inbox search by name": lambda c, r: c.get(
            "/api/v1/conversations", params={"q": name_q(r)}
        ),
        "inbox search by phone fragment": lambda c, r: c.get(
            "/api/v1/conversations", params={"q": phone_q(r)}
        ),
        "inbox page 50 (cursor)": lambda c, r: c.get(
            "/api/v1/conversations", params={"limit": 30, "cursor": data.ids["page50"]}
        ),
        "thread page half a thread back": lambda c, r: c.get(
            thread, params={"limit": 50, "before": data.ids["pivot"]}
        ),
        "contacts first page": lambda c, r: c.get("/api/v1/contacts", params={"limit": 50}),
        "contacts search": lambda c, r: c.get("/api/v1/contacts", params={"q": name_q(r)}),
    }


def webhook_body(n: int, run: str, size: Size) -> bytes:
    # Half of them from people already in the contact table, half from new ones.
    phone = person(n % size.conversations)[1][1:] if n % 2 else f"55219{n:08d}"
    body = {
        "event": "messages.upsert",
        "instance": "n0",
        "data": {
            "key": {"remoteJid": f"{phone}@s.whatsapp.net", "fromMe": False, "id": f"{run}{n}"},
            "pushName": f"Cliente {n}",
            "message": {"conversation": f"mensagem {n}"},
            "messageType": "conversation",
            "messageTimestamp": int(time.time()),
        },
    }
    return json.dumps(body).encode()


class Tally:
    def __init__(self) -> None:
        self.errors = 0
        self.locked = 0

    def check(self, resp: httpx.Response) -> None:
        if resp.status_code >= 500:
            self.errors += 1
        if "database is locked" in resp.text:
            self.locked += 1


async def timed(call: Awaitable[httpx.Response], tally: Tally) -> float:
    """How long `call` (a coroutine not yet started) takes to answer, in ms."""
    started = time.perf_counter()
    resp = await call
    elapsed = (time.perf_counter() - started) * 1000
    tally.check(resp)
    if resp.status_code >= 400:
        print(f"    {resp.status_code}: {resp.text[:200]}")
    return elapsed


def quantiles(values: list[float]) -> tuple[float, float, float]:
    q = statistics.quantiles(values, n=100, method="inclusive")
    return q[49], q[94], q[98]


async def sequential(data: Dataset, count: int, tally: Tally) -> dict[str, tuple[float, ...]]:
    async with served(data) as client:
        await explore(client, data)
        results: dict[str, tuple[float, ...]] = {}
        for name, request in requests_of(data).items():
            rng = random.Random(name)
            for _ in range(5):  # warm: the first statements are compiled and cached
                await request(client, rng)
            gc.collect()
            lat = [await timed(request(client, rng), tally) for _ in range(count)]
            results[name] = quantiles(lat)
        url = f"/api/v1/webhooks/evolution/{data.webhook_session}"
        headers = {"X-Zapsync-Token": SECRET, "content-type": "application/json"}
        run = f"s{time.time_ns()}-"
        lat = []
        for n in range(count):
            body = webhook_body(n, run, data.size)
            lat.append(await timed(client.post(url, content=body, headers=headers), tally))
        results["webhook -> stored"] = quantiles(lat)
    return results


async def browsing(
    data: Dataset, agents: int, seconds: float, rate: float, think: float, tally: Tally
) -> tuple[list[float], int]:
    """Webhook latencies at `rate`/s while `agents` loop over the inbox's requests, each
    pausing `think` seconds on average between two; and how many requests the agents made."""
    async with served(data) as client:
        await explore(client, data)
        requests = list(requests_of(data).values())
        stop = time.perf_counter() + seconds

        made = 0

        async def agent(n: int) -> None:
            nonlocal made
            rng = random.Random(n)
            while time.perf_counter() < stop:
                tally.check(await rng.choice(requests)(client, rng))
                made += 1
                if think:
                    await asyncio.sleep(rng.expovariate(1 / think))

        url = f"/api/v1/webhooks/evolution/{data.webhook_session}"
        headers = {"X-Zapsync-Token": SECRET, "content-type": "application/json"}
        run = f"b{time.time_ns()}-"
        latencies: list[float] = []

        async def hooks() -> None:
            started = time.perf_counter()
            n = 0
            pending = []
            while time.perf_counter() < stop:
                body = webhook_body(n, run, data.size)

                async def one(body: bytes = body) -> None:
                    post = client.post(url, content=body, headers=headers)
                    latencies.append(await timed(post, tally))

                pending.append(asyncio.create_task(one()))
                n += 1
                await asyncio.sleep(max(0.0, started + n / rate - time.perf_counter()))
            await asyncio.gather(*pending)

        await asyncio.gather(hooks(), *(agent(n) for n in range(agents)))
    return latencies, made


# -- the report ----------------------------------------------------------------------------


def main(args: argparse.Namespace) -> None:
    size = Size.scaled(args.messages)
    data_dir = Path(args.data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    print(
        f"big account: {size.messages:,} messages, {size.conversations:,} conversations, "
        f"a {size.thread:,}-message thread, {size.sessions} sessions; tiny: {TINY.messages:,} "
        f"messages, {TINY.conversations} conversations; {args.requests} requests each"
    )
    for backend in args.backends.split(","):
        with tempfile.TemporaryDirectory() as tmp:
            if backend == "sqlite":
                big_url = sqlite_dataset(data_dir, size, args.rebuild)
                tiny_url = f"sqlite+aiosqlite:///{Path(tmp) / 'tiny.db'}"
            else:
                big_url = postgres_dataset(size, args.rebuild)
                tiny_url = postgres_dataset(TINY, True)
            print(f"== {backend}")
            big, tiny = prepare(big_url, size), prepare(tiny_url, TINY)
            tally = Tally()
            tiny_r = asyncio.run(sequential(tiny, args.requests, tally))
            big_r = asyncio.run(sequential(big, args.requests, tally))
            print(
                f"  {'request':<34}{'big p50/p95/p99 ms':>22}{'tiny p50/p95/p99 ms':>22}"
                f"{'p95 ratio':>10}"
            )
            for name, (p50, p95, p99) in big_r.items():
                t50, t95, t99 = tiny_r[name]
                print(
                    f"  {name:<34}{p50:>8.1f}{p95:>7.1f}{p99:>7.1f}"
                    f"{t50:>8.1f}{t95:>7.1f}{t99:>7.1f}{p95 / t95:>10.2f}"
                )
            load_args = (args.agents, args.seconds, args.rate, args.think, tally)
            for label, data in (("tiny", tiny), ("big", big)):
                lat, made = asyncio.run(browsing(data, *load_args))
                p50, p95, p99 = quantiles(lat)
                print(
                    f"  webhooks at {args.rate:g}/s while {args.agents} agents browse "
                    f"({made / args.seconds:.0f} requests/s), {label}: {len(lat)} stored, "
                    f"p50 {p50:.1f} / p95 {p95:.1f} / p99 {p99:.1f} ms"
                )
            print(f"  5xx: {tally.errors}, 'database is locked': {tally.locked}")
            if backend == "postgresql":
                with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
                    name = tiny_url.rsplit("/", 1)[1]
                    conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    print("targets: p95 < 50 ms and ratio < 3x at 5 M; webhook p99 < 150 ms; no 5xx, no locks")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=5_000_000)
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--data-dir", default="data/bench")
    parser.add_argument("--requests", type=int, default=100)
    parser.add_argument("--agents", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rate", type=float, default=20.0, help="webhooks per second")
    parser.add_argument(
        "--think", type=float, default=0.25, help="an agent's mean pause between requests, s"
    )
    parser.add_argument("--rebuild", action="store_true", help="load the dataset again")
    main(parser.parse_args())
