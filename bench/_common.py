"""Shared pieces of the benchmarks: a throwaway database, a sandbox gateway process."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def sandbox_process(dialect: str) -> Iterator[str]:
    """`zapsync sandbox serve` in its own process, as a real gateway would be."""
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "zapsync.cli.main",
            "sandbox",
            "serve",
            "--dialect",
            dialect,
            "--port",
            str(port),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/_sandbox/instances", timeout=1).status_code == 200:
                    break
            time.sleep(0.05)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@contextlib.contextmanager
def sqlite_url() -> Iterator[str]:
    with tempfile.TemporaryDirectory() as tmp:
        yield f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}"


def ratio_line(name: str, value: float, baseline: float, unit: str, target: str) -> str:
    return f"{name:<40} {value:10.3f} {unit:<6} ratio {value / baseline:6.2f}  (target {target})"
