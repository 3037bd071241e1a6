"""A scaled-out zapsync on this machine, as real processes: a sandbox Evolution gateway,
`zapsync serve` replicas and `zapsync worker` processes with ZAPSYNC_JOBS=procrastinate on a
PostgreSQL database of their own and Redis (its own database number and Socket.IO channel, so
runs side by side never cross). Every process listens on a free port and writes its log to a
file; every one is killed when the cluster stops, whatever happened meanwhile.

Used by tests/cluster/ and bench/scale.py, the way `make run-cluster` starts the same layout."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx
import psycopg
import redis

from tests.support.databases import PG_ADMIN_URL
from tests.support.servers import free_port
from zapsync.jobs.queue import libpq_url
from zapsync.services import accounts
from zapsync.store.db import Database
from zapsync.store.migrate import upgrade

T = TypeVar("T")

ZAPSYNC = str(Path(sys.executable).with_name("zapsync"))
REDIS_BASE = os.environ.get("ZAPSYNC_TEST_REDIS", "redis://127.0.0.1:6379")
EVOLUTION_KEY = "sandbox-global-key"
START_TIMEOUT = 60.0  # seconds for every process to answer, on a loaded 2-core machine


def unavailable() -> str | None:
    """Why a cluster cannot start here (PostgreSQL or Redis not answering), or None."""
    try:
        with psycopg.connect(PG_ADMIN_URL, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        return f"PostgreSQL is not answering at {PG_ADMIN_URL}: {exc}"
    try:
        redis.Redis.from_url(f"{REDIS_BASE}/0", socket_connect_timeout=3).ping()
    except redis.RedisError as exc:
        return f"Redis is not answering at {REDIS_BASE}: {exc}"
    return None


def until(probe: Callable[[], T | None], timeout: float, what: str, every: float = 0.2) -> T:
    """Poll `probe` until it answers something truthy; fail naming `what` at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout:.0f} s (last: {value!r})")
        time.sleep(every)


async def until_async(
    probe: Callable[[], Awaitable[T | None]], timeout: float, what: str, every: float = 0.2
) -> T:
    """`until` for a coroutine probe, leaving the loop free between tries."""
    deadline = time.monotonic() + timeout
    while True:
        value = await probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout:.0f} s (last: {value!r})")
        await asyncio.sleep(every)


@dataclass
class Process:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path
    url: str | None = None

    @property
    def alive(self) -> bool:
        return self.popen.poll() is None

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def log_events(self, event: str) -> list[dict[str, Any]]:
        """The JSON log lines (ZAPSYNC_LOG_FORMAT=json) whose event is `event`."""
        found = []
        for line in self.log_text().splitlines():
            if event not in line:
                continue
            with contextlib.suppress(ValueError):
                record = json.loads(line)
                if record.get("event") == event:
                    found.append(record)
        return found

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs, as when a machine is lost."""
        if self.alive:
            os.kill(self.popen.pid, signal.SIGKILL)
        self.popen.wait(timeout=10)

    def stop(self, grace: float = 10.0) -> None:
        if self.alive:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                self.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(timeout=10)


@dataclass
class Cluster:
    root: Path
    database_url: str
    redis_url: str
    env: dict[str, str]
    token: str = ""
    processes: dict[str, Process] = field(default_factory=dict)

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    @property
    def sandbox(self) -> str:
        url = self.processes["sandbox"].url
        assert url is not None
        return url

    def replica(self, name: str) -> str:
        url = self.processes[name].url
        assert url is not None
        return url

    def workers(self) -> list[Process]:
        return [p for p in self.processes.values() if p.name.startswith("worker")]

    def _spawn(
        self, name: str, args: list[str], env: dict[str, str], url: str | None = None
    ) -> Process:
        log = self.root / f"{name}.log"
        with log.open("ab") as out:
            popen = subprocess.Popen(
                args,
                cwd=self.root,  # no developer's .env is read
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # a Ctrl-C of the test run reaches us, not them
            )
        process = Process(name, popen, log, url)
        self.processes[name] = process
        return process

    def start_sandbox(self) -> Process:
        port = free_port()
        args = [ZAPSYNC, "sandbox", "serve", "--dialect", "evolution", "--port", str(port)]
        return self._spawn("sandbox", args, self._base_env(), f"http://127.0.0.1:{port}")

    def start_replica(self, name: str) -> Process:
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        env = {**self.env, "ZAPSYNC_PUBLIC_URL": url, "ZAPSYNC_DATA_DIR": str(self.root / name)}
        return self._spawn(name, [ZAPSYNC, "serve", "--port", str(port)], env, url)

    def start_worker(self, name: str, concurrency: int = 4) -> Process:
        # Where webhooks point when a worker (re)configures an instance: the first replica.
        public = next((p.url for p in self.processes.values() if p.name.startswith("replica")), "")
        env = {
            **self.env,
            "ZAPSYNC_PUBLIC_URL": public or "http://127.0.0.1:9",
            "ZAPSYNC_DATA_DIR": str(self.root / name),
        }
        return self._spawn(name, [ZAPSYNC, "worker", "--concurrency", str(concurrency)], env)

    def _base_env(self) -> dict[str, str]:
        keep = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "TZ")}
        return {**keep, "PYTHONUNBUFFERED": "1"}

    def query(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        with psycopg.connect(libpq_url(self.database_url)) as conn:
            return list(conn.execute(sql, params).fetchall())

    def live_workers(self) -> int:
        stalled = float(self.env.get("ZAPSYNC_JOBS_STALLED_SECONDS", "30"))
        rows = self.query(
            "SELECT count(*) FROM procrastinate_workers "
            "WHERE last_heartbeat > now() - make_interval(secs => %s)",
            stalled,
        )
        return int(rows[0][0])

    def wait_ready(self, timeout: float = START_TIMEOUT) -> None:
        """Every process answering: replicas' /health, the sandbox's control API, and each
        worker's heartbeat in Procrastinate's table."""
        deadline = time.monotonic() + timeout

        def answers(url: str) -> bool:
            try:
                return httpx.get(url, timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        for process in self.processes.values():
            if process.url is None:
                continue
            path = "/_sandbox/instances" if process.name == "sandbox" else "/health"

            def ready(p: Process = process, url: str = f"{process.url}{path}") -> bool:
                return self._check(p) and answers(url)

            until(ready, deadline - time.monotonic(), f"{process.name} answering")
        workers = self.workers()
        until(
            lambda: all(self._check(w) for w in workers) and self.live_workers() >= len(workers),
            deadline - time.monotonic(),
            "the workers' heartbeats",
        )

    def _check(self, process: Process) -> bool:
        if not process.alive:
            raise RuntimeError(f"{process.name} exited:\n{process.log_text()[-3000:]}")
        return True

    def logs(self, lines: int = 30) -> str:
        """The end of every process's log, for a failure's message."""
        return "\n".join(
            f"--- {p.name}\n" + "\n".join(p.log_text().splitlines()[-lines:])
            for p in self.processes.values()
        )

    def stop(self) -> None:
        for process in self.processes.values():
            if process.alive:
                process.popen.send_signal(signal.SIGTERM)
        for process in self.processes.values():
            process.stop()


async def _admin_token(database_url: str) -> str:
    database = Database(database_url)
    try:
        async with database.session() as db:
            org = await accounts.create_organization(db, "Cluster")
            user = await accounts.create_user(db, org, "admin@cluster.test", "admin")
            _, plain = await accounts.create_token(db, user)
            await db.commit()
            return plain
    finally:
        await database.dispose()


def cluster_env(database_url: str, redis_url: str, channel: str, **extra: str) -> dict[str, str]:
    keep = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "TZ")}
    return {
        **keep,
        "PYTHONUNBUFFERED": "1",
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "ZAPSYNC_JOBS": "procrastinate",
        "ZAPSYNC_SECRET_KEY": "cluster-test-secret",
        "ZAPSYNC_SOCKETIO_CHANNEL": channel,
        "ZAPSYNC_LOG_FORMAT": "json",
        **extra,
    }


@contextmanager
def running_cluster(
    root: Path,
    *,
    replicas: int = 2,
    workers: int = 2,
    concurrency: int = 4,
    settings: dict[str, str] | None = None,
) -> Iterator[Cluster]:
    """A sandbox gateway, `replicas` serve processes (`replica-a`, `replica-b`, …) and
    `workers` workers (`worker-1`, …) on a fresh database, all answering; `settings` are
    extra environment (ZAPSYNC_…) for the zapsync processes. Everything is killed and the
    database dropped afterwards."""
    root.mkdir(parents=True, exist_ok=True)
    token = secrets.token_hex(4)
    name = f"zapsync_cluster_{os.getpid()}_{token}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = PG_ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://")
    database_url = f"{base}/{name}"
    # A database number of its own (1-15; 0 is the developer's) and a channel of its own.
    redis_url = f"{REDIS_BASE}/{1 + int(token, 16) % 15}"
    env = cluster_env(database_url, redis_url, f"zapsync-cluster-{token}", **(settings or {}))
    cluster = Cluster(root, database_url, redis_url, env)
    try:
        upgrade(database_url)
        cluster.token = asyncio.run(_admin_token(database_url))
        cluster.start_sandbox()
        for n in range(replicas):
            cluster.start_replica(f"replica-{chr(ord('a') + n)}")
        for n in range(workers):
            cluster.start_worker(f"worker-{n + 1}", concurrency)
        cluster.wait_ready()
        yield cluster
    finally:
        cluster.stop()
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
