"""A lean HTTP/1.1 load client for the webhook benches: keep-alive connections over asyncio
streams on uvloop, each request encoded before the clock starts, each answer read by its
Content-Length. The servers measured share this machine's two cores with the client; aiohttp's
client spent ~0.3 ms of CPU a request, a fifth of what a replica spends on one, and took it
from the replicas being compared.

`post_all` keeps `concurrency` requests in flight, split evenly over the hosts the posts go to
(one connection each), and answers the posts per second; any answer but 200 stops it."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Callable, Coroutine, Iterator, Sequence
from typing import Any, TypeVar
from urllib.parse import urlsplit

import uvloop

T = TypeVar("T")


class Refused(Exception):
    """A post answered other than 200."""


def run(main: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """`main()` on a uvloop loop (the servers run on uvloop too)."""
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(main())


def _encoded(url: str, body: bytes, headers: dict[str, str]) -> tuple[tuple[str, int], bytes]:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    lines = [f"POST {parts.path or '/'} HTTP/1.1", f"Host: {host}:{port}"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    lines.append(f"Content-Length: {len(body)}")
    return (host, port), ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def _answer(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    return status, await reader.readexactly(length)


async def _connection(address: tuple[str, int], requests: Iterator[bytes]) -> None:
    reader, writer = await asyncio.open_connection(*address)
    try:
        for request in requests:
            writer.write(request)
            status, body = await _answer(reader)
            if status != 200:
                raise Refused(f"{status} {body[:300]!r}")
    finally:
        writer.close()


async def post_all(
    posts: Sequence[tuple[str, bytes]], headers: dict[str, str], concurrency: int
) -> float:
    """Posts per second of `posts` ((url, body)), `concurrency` at a time."""
    by_host: dict[tuple[str, int], list[bytes]] = defaultdict(list)
    for url, body in posts:
        address, request = _encoded(url, body, headers)
        by_host[address].append(request)
    per_host = max(1, concurrency // len(by_host))
    loop = asyncio.get_running_loop()
    started = loop.time()
    await asyncio.gather(
        *(
            _connection(address, shared)
            for address, requests in by_host.items()
            for shared in [iter(requests)]
            for _ in range(per_host)
        )
    )
    return len(posts) / (loop.time() - started)
