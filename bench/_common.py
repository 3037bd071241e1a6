"""Shared pieces of the benchmarks: a throwaway database, a sandbox gateway process."""

from __future__ import annotations

import contextlib
import os
import resource
import secrets
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
from sqlalchemy.ext.asyncio import AsyncSession

from zapsync.security.crypto import Cipher
from zapsync.settings import Settings
from zapsync.store.models import Organization, Session, User

PAGE = os.sysconf("SC_PAGE_SIZE")
MB = 1024 * 1024
PG_ADMIN_URL = os.environ.get("ZAPSYNC_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres")


def bench_settings(database_url: str, **overrides: Any) -> Settings:
    """An in-process zapsync for a bench: no scheduler firing jobs into the measurement, and
    only warnings logged (a log line per record would be what is measured)."""
    fields: dict[str, Any] = {
        "ZAPSYNC_SECRET_KEY": "bench",
        "ZAPSYNC_SCHEDULER": False,
        "ZAPSYNC_LOG_LEVEL": "WARNING",
        **overrides,
    }
    return Settings(database_url=database_url, **fields)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def zapsync_process(
    args: list[str], port: int, ready_path: str, env: dict[str, str] | None = None, log: Any = None
) -> Iterator[str]:
    """`python -m zapsync.cli.main ARGS` in its own process; yields its URL once `ready_path`
    answers 200. Stopped with SIGTERM, then SIGKILL if it does not exit (a flooded server may
    not)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "zapsync.cli.main", *args],
        env=env,
        stdout=log or subprocess.DEVNULL,
        stderr=subprocess.STDOUT if log else subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(url + ready_path, timeout=1).status_code == 200:
                    break
            time.sleep(0.05)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


@contextlib.contextmanager
def sandbox_process(dialect: str, ready_path: str = "/_sandbox/instances") -> Iterator[str]:
    """`zapsync sandbox serve` in its own process, as a real gateway would be."""
    port = free_port()
    args = ["sandbox", "serve", "--dialect", dialect, "--port", str(port)]
    with zapsync_process(args, port, ready_path) as url:
        yield url


@contextlib.contextmanager
def sqlite_url() -> Iterator[str]:
    with tempfile.TemporaryDirectory() as tmp:
        yield f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}"


@contextlib.contextmanager
def postgres_url(label: str = "bench") -> Iterator[str]:
    """The async URL of a new, empty PostgreSQL database, dropped afterwards."""
    name = f"zapsync_bench_{label}_{os.getpid()}_{secrets.token_hex(3)}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = PG_ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://")
    try:
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def bench_owner(db: AsyncSession) -> User:
    """The organization and admin the benchmark's sessions belong to (flushed, not committed)."""
    org = Organization(name="bench")
    db.add(org)
    await db.flush()
    user = User(organization_id=org.id, email="bench@zapsync.local", role="admin")
    db.add(user)
    await db.flush()
    return user


def bench_session(
    cipher: Cipher,
    user: User,
    *,
    name: str,
    provider: str,
    gateway_key: str,
    config: dict[str, Any],
    webhook_secret: str = "x",
    status: str = "connected",
) -> Session:
    """A session of the bench's owner, stored as the API would store it (config and webhook
    secret encrypted), without asking its gateway."""
    return Session(
        organization_id=user.organization_id,
        created_by=user.id,
        name=name,
        provider=provider,
        gateway_key=gateway_key,
        config_encrypted=cipher.encrypt_json(config),
        webhook_secret_encrypted=cipher.encrypt_text(webhook_secret),
        status=status,
        check_failures=0,
        heal_attempts=0,
    )


def ratio_line(name: str, value: float, baseline: float, unit: str, target: str) -> str:
    return f"{name:<40} {value:10.3f} {unit:<6} ratio {value / baseline:6.2f}  (target {target})"


# --- memory ---------------------------------------------------------------------------------


def rss_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * PAGE


def max_rss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux


class PeakSampler:
    """Samples this process's RSS on a thread. ru_maxrss alone cannot tell a run's peak apart
    from the seeding's, which comes first. Every 20 ms: sampling every 2 ms took the GIL often
    enough to cost an import ~15% of its CPU time."""

    def __init__(self, interval: float = 0.02) -> None:
        self.interval = interval
        self.peak = rss_bytes()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.peak = max(self.peak, rss_bytes())

    def __enter__(self) -> PeakSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss_bytes())
