"""Relaying gateway events to the team's webhook that zapsync's replaced (`forward_to`).

Evolution (and MegaAPI) keep one webhook per instance; teams point it at n8n or Typebot.
When zapsync takes it, every delivery it accepts for the session is queued in
`webhook_forwards` in the transaction that applies it, and posted here after the commit:
the body as the gateway sent it, the team's own headers, and `X-Zapsync-Signature:
sha256=<HMAC-SHA256 of the body with the session's forward secret>`. Failures are retried
with backoff up to `ZAPSYNC_FORWARD_MAX_ATTEMPTS`; ingest never waits for any of it."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
from datetime import timedelta

import httpx
import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from zapsync.domain.backoff import backoff
from zapsync.runtime.context import AppContext
from zapsync.store import sessions as store
from zapsync.store.models import Session
from zapsync.store.types import utcnow

log = structlog.get_logger(__name__)

SIGNATURE_HEADER = "X-Zapsync-Signature"
BATCH = 50
POLL_SECONDS = 30.0
# A claimed relay is retried after this long if its worker died mid-post.
LEASE_SECONDS = 60.0


def signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def queue_forward(db: AsyncSession, session: Session, body: bytes) -> bool:
    """Queue `body` for the session's `forward_to`, in the caller's transaction; True when
    the session has one."""
    if not session.forward_to:
        return False
    store.queue_forward(db, session.id, body)
    return True


async def _claim(ctx: AppContext) -> list[tuple[int, int, bytes, str, dict[str, str], str]]:
    """Due relays, leased to this worker: (id, attempt, body, url, headers, secret)."""
    now = utcnow()
    async with ctx.db.session() as db:
        claimed = []
        for item, session in await store.due_forwards(db, now, BATCH):
            item.attempts += 1
            item.next_attempt_at = now + timedelta(seconds=LEASE_SECONDS)
            if not session.forward_to or not session.forward_encrypted:
                item.status = "failed"
                item.last_error = "the session no longer forwards"
                continue
            kept = ctx.cipher.decrypt_json(session.forward_encrypted)
            headers = kept["config"].get("headers") or {}
            claimed.append(
                (
                    item.id,
                    item.attempts,
                    item.body,
                    session.forward_to,
                    {str(k): str(v) for k, v in headers.items()},
                    str(kept["secret"]),
                )
            )
        await db.commit()
    return claimed


async def _post(ctx: AppContext, url: str, body: bytes, headers: dict[str, str]) -> str | None:
    """The reason the relay failed, or None when the team's webhook took it."""
    try:
        resp = await ctx.gateways.client.post(
            url, content=body, headers=headers, timeout=ctx.settings.gateway_timeout
        )
    except httpx.HTTPError as exc:
        return f"{exc.__class__.__name__}: {exc}"
    return None if resp.status_code < 300 else f"HTTP {resp.status_code}"


async def deliver_due_forwards(ctx: AppContext) -> int:
    """Post every due relay once; the number that went through."""
    delivered = 0
    settings = ctx.settings
    for item_id, attempt, body, url, extra, secret in await _claim(ctx):
        headers = {**extra, "Content-Type": "application/json"}
        headers[SIGNATURE_HEADER] = signature(secret, body)
        error = await _post(ctx, url, body, headers)
        async with ctx.db.session() as db:
            if error is None:
                await store.delete_forward(db, item_id)
                delivered += 1
            else:
                item = await store.forward_by_id(db, item_id)
                if item is not None:
                    item.last_error = error
                    if attempt >= settings.forward_max_attempts:
                        item.status = "failed"
                        log.warning("webhook relay gave up", url=url, attempts=attempt, error=error)
                    else:
                        item.next_attempt_at = utcnow() + backoff(
                            settings.forward_base_delay, attempt
                        )
                        log.info("webhook relay failed", url=url, attempt=attempt, error=error)
            await db.commit()
    return delivered


async def _seconds_until_next(ctx: AppContext) -> float | None:
    async with ctx.db.session() as db:
        due = await store.next_forward_due(db)
    return None if due is None else max((due - utcnow()).total_seconds(), 0.0)


class ForwardRunner:
    """Runs `deliver_due_forwards` in the background: at start, when a webhook queued a
    relay, when a retry is due, and every `POLL_SECONDS`."""

    def __init__(self, ctx: AppContext, poll_seconds: float = POLL_SECONDS) -> None:
        self.ctx = ctx
        self.poll_seconds = poll_seconds
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def wake(self) -> None:
        self._wake.set()

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        while True:
            self._wake.clear()
            delay: float | None = self.poll_seconds
            try:
                await deliver_due_forwards(self.ctx)
                delay = await _seconds_until_next(self.ctx)
            except Exception:
                log.exception("webhook relay pass failed")
            timeout = self.poll_seconds if delay is None else min(delay, self.poll_seconds)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
