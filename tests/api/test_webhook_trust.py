"""Who may change a session by webhook, and how much it may send: a signature that is there
and wrong is never outvoted, the signing key never travels, secrets are encrypted at rest,
replays and stale status events move nothing, archived sessions take no webhook, bodies are
bounded while they stream, and floods get 429. Every refusal is logged and counted."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import sqlalchemy as sa
import structlog
from asgi_lifespan import LifespanManager
from sqlalchemy import select

from tests.conftest import Tenant, problem_of
from tests.support.contracts import sample_bytes
from tests.support.gateways import KEYS, SandboxGateway, control, create_session, running_sandbox
from tests.support.servers import free_port, serving_app
from tests.support.sessions import insert_session
from zapsync.api.app import create_app
from zapsync.runtime.context import AppContext
from zapsync.security.crypto import Cipher
from zapsync.store.db import make_sync_engine
from zapsync.store.migrate import upgrade
from zapsync.store.models import Conversation, Session
from zapsync.store.types import utcnow

SECRET = {"X-Zapsync-Token": "hook-secret"}
SIGNING_KEY = "signing-key"
LIMIT = 64 * 1024  # the body limit the served zapsync is given below


def waha_status(status: str, at_ms: int) -> bytes:
    """A `session.status` as newer WAHA posts it, sent at `at_ms`."""
    envelope = {
        "id": f"evt_{at_ms}",
        "timestamp": at_ms,
        "event": "session.status",
        "session": "default",
        "me": {"id": "5511912340000@c.us", "pushName": "Loja"},
        "payload": {"status": status, "statuses": [{"status": status, "timestamp": at_ms}]},
        "engine": "NOWEB",
    }
    return json.dumps(envelope, separators=(",", ":")).encode()


def signed(body: bytes, key: str, **extra: str) -> dict[str, str]:
    return {
        "X-Webhook-Hmac": hmac.new(key.encode(), body, hashlib.sha512).hexdigest(),
        "X-Webhook-Hmac-Algorithm": "sha512",
        **extra,
    }


def now_ms(offset_seconds: float = 0) -> int:
    return int((time.time() + offset_seconds) * 1000)


async def status_of(ctx: AppContext, sid: int) -> str:
    async with ctx.db.session() as db:
        return (await db.get_one(Session, sid)).status


async def wait_for_status(ctx: AppContext, sid: int, wanted: str, within: float = 10.0) -> None:
    deadline = time.monotonic() + within
    while (current := await status_of(ctx, sid)) != wanted:
        assert time.monotonic() < deadline, f"status stayed {current}, {wanted} expected"
        await asyncio.sleep(0.02)


@pytest.fixture
async def live(app: Any, settings: Any) -> AsyncIterator[str]:
    """A second zapsync on the same database, served by uvicorn on a free port, with small
    body limits; the sandbox gateways post their webhooks to it."""
    port = free_port()
    served = settings.model_copy(
        update={
            "public_url": f"http://127.0.0.1:{port}",
            "webhook_max_body_mb": LIMIT / 1024 / 1024,
            "max_upload_mb": LIMIT / 1024 / 1024,
        }
    )
    async with serving_app(create_app(served), port) as url:
        yield url


@pytest.fixture
def waha() -> Iterator[SandboxGateway]:
    with running_sandbox("waha") as gateway:
        yield gateway


@pytest.fixture
async def http(live: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=live, timeout=10) as client:
        yield client


# --- signatures and secrets -------------------------------------------------------------------


async def test_waha_signs_with_a_key_that_never_travels_and_a_bad_signature_is_never_outvoted(
    ctx: AppContext, tenant: Tenant, http: httpx.AsyncClient, waha: SandboxGateway
) -> None:
    instance = waha.new_instance()
    sid = (await create_session(http, tenant, waha, instance))["id"]
    async with httpx.AsyncClient(base_url=waha.base_url, timeout=10) as raw:
        await control(raw, f"/instances/{instance}/scan", {"phone": "5511912340000"})
        # The sandbox's own signed deliveries reach the served zapsync and are applied.
        await wait_for_status(ctx, sid, "connected")
        config = (
            await raw.get(f"/api/sessions/{instance}", headers={"X-Api-Key": KEYS["waha"]})
        ).json()["config"]
    [hook] = config["webhooks"]
    header_secret = hook["customHeaders"][0]["value"]
    signing_key = hook["hmac"]["key"]
    assert signing_key and header_secret and signing_key != header_secret

    # Stored encrypted: neither value is in the row as it was given.
    async with ctx.db.session() as db:
        row = await db.get_one(Session, sid)
        stored = (row.webhook_secret_encrypted, row.webhook_signing_key_encrypted or "")
    assert not any(header_secret in s or signing_key in s for s in stored)

    url = f"/api/v1/webhooks/waha/{sid}"
    body = waha_status("STOPPED", now_ms())
    token = {"X-Zapsync-Token": header_secret}
    forged = [
        # whoever saw one delivery knows the header; signing with it must not pass
        {**token, **signed(body, header_secret)},
        {**token, **signed(body, "guessed")},
        {**token, "X-Webhook-Hmac": "0" * 128},
        {**token, **signed(body, signing_key), "X-Webhook-Hmac-Algorithm": "md5"},
        # a right signature does not carry a wrong secret either
        {"X-Zapsync-Token": "wrong", **signed(body, signing_key)},
    ]
    for headers in forged:
        resp = await http.post(url, content=body, headers=headers)
        assert resp.status_code == 401, (headers, resp.text)
        problem_of(resp)
    assert await status_of(ctx, sid) == "connected"

    genuine = await http.post(url, content=body, headers={**token, **signed(body, signing_key)})
    assert genuine.status_code == 200, genuine.text
    assert await status_of(ctx, sid) == "disconnected"


async def test_a_signature_alone_authenticates_and_the_secret_alone_where_nothing_is_signed(
    client: httpx.AsyncClient, ctx: AppContext, tenant: Tenant
) -> None:
    sid = await insert_session(ctx, tenant, "waha", status="connected", signing_key=SIGNING_KEY)
    url = f"/api/v1/webhooks/waha/{sid}"
    first = waha_status("SCAN_QR_CODE", now_ms(-2))
    resp = await client.post(url, content=first, headers=signed(first, SIGNING_KEY))
    assert resp.status_code == 200, resp.text
    assert await status_of(ctx, sid) == "qr_pending"
    # 2024 core signs nothing and sends the secret in the custom header.
    second = waha_status("WORKING", now_ms(-1))
    resp = await client.post(url, content=second, headers=SECRET)
    assert resp.status_code == 200, resp.text
    assert await status_of(ctx, sid) == "connected"
    third = waha_status("STOPPED", now_ms())
    resp = await client.post(url, content=third)
    assert resp.status_code == 401
    assert await status_of(ctx, sid) == "connected"


def test_plaintext_secrets_from_before_the_upgrade_keep_working_and_are_sealed(
    tmp_path: Path, settings: Any
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'old.db'}"
    upgrade(url, "0001")
    engine = make_sync_engine(url)
    with engine.begin() as conn:
        conn.execute(
            sa.text("INSERT INTO organizations (name, created_at) VALUES ('Old', :at)"),
            {"at": utcnow()},
        )
        old_settings = settings.model_copy(update={"database_url": url})
        config = Cipher(old_settings.resolved_secret_key()).encrypt_json(
            {"base_url": "http://127.0.0.1:9", "api_key": "k", "instance": "vendas"}
        )
        conn.execute(
            sa.text(
                "INSERT INTO sessions (organization_id, name, provider, config_encrypted,"
                " webhook_secret, status, check_failures, heal_attempts, created_at)"
                " VALUES (1, 'Loja', 'evolution', :config, 'old-plain-secret', 'qr_pending',"
                " 0, 0, :at)"
            ),
            {"config": config, "at": utcnow()},
        )
    upgrade(url)
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT webhook_secret_encrypted FROM sessions")).scalar_one()

    async def run() -> None:
        app = create_app(old_settings)
        async with (
            LifespanManager(app),
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://zapsync.test"
            ) as client,
        ):
            body = sample_bytes("evolution/webhook.connection-update.open.json")
            resp = await client.post(
                "/api/v1/webhooks/evolution/1?token=old-plain-secret", content=body
            )
            assert resp.status_code == 200, resp.text
            wrong = await client.post("/api/v1/webhooks/evolution/1?token=x", content=body)
            assert wrong.status_code == 401

    asyncio.run(run())
    with engine.connect() as conn:
        sealed = conn.execute(sa.text("SELECT webhook_secret_encrypted FROM sessions")).scalar_one()
        status = conn.execute(sa.text("SELECT status FROM sessions")).scalar_one()
    engine.dispose()
    assert "old-plain-secret" not in sealed and len(sealed) > 64
    assert status == "connected"


# --- replays and stale events ------------------------------------------------------------------


async def test_a_signed_delivery_older_than_the_replay_window_is_refused(
    client: httpx.AsyncClient, ctx: AppContext, tenant: Tenant
) -> None:
    sid = await insert_session(ctx, tenant, "waha", status="connected", signing_key=SIGNING_KEY)
    url = f"/api/v1/webhooks/waha/{sid}"
    old = waha_status("STOPPED", now_ms(-ctx.settings.webhook_replay_window - 60))
    resp = await client.post(url, content=old, headers={**SECRET, **signed(old, SIGNING_KEY)})
    assert resp.status_code == 401
    assert "replay window" in problem_of(resp)["detail"]
    assert await status_of(ctx, sid) == "connected"


async def test_a_status_event_older_than_the_last_applied_moves_nothing(
    client: httpx.AsyncClient, ctx: AppContext, tenant: Tenant
) -> None:
    sid = await insert_session(ctx, tenant, "waha", status="qr_pending", signing_key=SIGNING_KEY)
    url = f"/api/v1/webhooks/waha/{sid}"
    stopped = waha_status("STOPPED", now_ms(-60))
    working = waha_status("WORKING", now_ms(-30))
    for body in (stopped, working):
        resp = await client.post(url, content=body, headers=signed(body, SIGNING_KEY))
        assert resp.status_code == 200, resp.text
    assert await status_of(ctx, sid) == "connected"
    # The earlier STOPPED again (a retry, a replay within the window): still connected.
    resp = await client.post(url, content=stopped, headers=signed(stopped, SIGNING_KEY))
    assert resp.status_code == 200, resp.text
    assert await status_of(ctx, sid) == "connected"
    newer = waha_status("STOPPED", now_ms())
    resp = await client.post(url, content=newer, headers=signed(newer, SIGNING_KEY))
    assert resp.status_code == 200
    assert await status_of(ctx, sid) == "disconnected"


# --- archived sessions -------------------------------------------------------------------------


async def test_an_archived_session_takes_no_webhook(
    client: httpx.AsyncClient, ctx: AppContext, tenant: Tenant
) -> None:
    sid = await insert_session(ctx, tenant, "evolution", status="disconnected")
    async with ctx.db.session() as db:
        (await db.get_one(Session, sid)).archived_at = utcnow()
        await db.commit()
    body = sample_bytes("evolution/webhook.connection-update.open.json")
    with structlog.testing.capture_logs() as logs:
        resp = await client.post(f"/api/v1/webhooks/evolution/{sid}", content=body, headers=SECRET)
        wrong = await client.post(f"/api/v1/webhooks/evolution/{sid}", content=body)
    assert resp.status_code == 410
    assert problem_of(resp)["title"] == "Gone"
    assert wrong.status_code == 401  # without the secret nothing says the session existed
    assert await status_of(ctx, sid) == "disconnected"
    assert [e["reason"] for e in logs if e["event"] == "webhook refused"] == [
        "archived",
        "wrong_secret",
    ]


# --- rate limits and counted refusals ----------------------------------------------------------


async def test_over_the_rate_limit_is_429_with_retry_after_and_every_refusal_is_counted(
    app: Any, client: httpx.AsyncClient, ctx: AppContext, tenant: Tenant
) -> None:
    from zapsync.api.routes.webhooks import WebhookLimits

    app.state.webhook_limits = WebhookLimits("3/minute", "2/minute")
    sid = await insert_session(ctx, tenant, "evolution")
    url = f"/api/v1/webhooks/evolution/{sid}"
    body = sample_bytes("evolution/webhook.connection-update.open.json")
    with structlog.testing.capture_logs() as logs:
        answers = [await client.post(url, content=body, headers=SECRET) for _ in range(4)]
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert int(answers[3].headers["Retry-After"]) >= 1
    assert problem_of(answers[3])["title"] == "Too many requests"
    refused = [e for e in logs if e["event"] == "webhook refused"]
    assert [(e["reason"], e["count"]) for e in refused] == [("rate_limited", 1)]

    # Forgeries count against the client's address: past its limit, it is shut out.
    other = await insert_session(ctx, tenant, "evolution", name="Outra")
    other_url = f"/api/v1/webhooks/evolution/{other}"
    with structlog.testing.capture_logs() as logs:
        for _ in range(2):
            forged = await client.post(other_url, content=body, headers={"X-Zapsync-Token": "x"})
            assert forged.status_code == 401
        shut = await client.post(other_url, content=body, headers=SECRET)
    assert shut.status_code == 429 and shut.headers["Retry-After"]
    refused = [e for e in logs if e["event"] == "webhook refused"]
    assert [(e["reason"], e["count"]) for e in refused] == [
        ("wrong_secret", 1),
        ("wrong_secret", 2),
        ("rate_limited", 2),
    ]
    assert refused[-1]["refused_total"] == 4


# --- bounded bodies, over real HTTP ------------------------------------------------------------


async def stream_until_answered(
    base_url: str, path: str, headers: dict[str, str], total: int, first: bytes = b""
) -> tuple[int, int]:
    """POST a chunked body (no Content-Length) of up to `total` bytes, stopping as soon as
    the server answers; the answer's status and how many bytes were sent."""
    parts = urlsplit(base_url)
    assert parts.hostname and parts.port
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
    head = f"POST {path} HTTP/1.1\r\nHost: {parts.netloc}\r\nTransfer-Encoding: chunked\r\n"
    head += "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
    writer.write(head.encode())
    answer = asyncio.create_task(reader.readuntil(b"\r\n\r\n"))
    piece = b"x" * (64 * 1024)
    sent = 0
    try:
        if first:
            writer.write(b"%x\r\n%s\r\n" % (len(first), first))
        while sent < total and not answer.done():
            writer.write(b"%x\r\n%s\r\n" % (len(piece), piece))
            sent += len(piece)
            drained = asyncio.ensure_future(writer.drain())
            await asyncio.wait({drained, answer}, return_when=asyncio.FIRST_COMPLETED)
            if not drained.done():
                drained.cancel()
        if not answer.done():
            writer.write(b"0\r\n\r\n")
    except ConnectionError:
        pass  # the server answered and closed while we were still sending
    status = int((await asyncio.wait_for(answer, 30)).split()[1])
    writer.close()
    return status, sent


async def answer_to_declared_length(base_url: str, path: str, headers: dict[str, str]) -> int:
    """The status for a request that declares a 100 MB body and sends none of it."""
    parts = urlsplit(base_url)
    assert parts.hostname and parts.port
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
    head = f"POST {path} HTTP/1.1\r\nHost: {parts.netloc}\r\nContent-Length: {100 * 2**20}\r\n"
    head += "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
    writer.write(head.encode())
    line = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    writer.close()
    return int(line.split()[1])


TOTAL = 64 * 2**20  # what the client would send if nobody stopped it


async def test_webhook_bodies_are_bounded_while_they_stream_and_the_session_checked_first(
    ctx: AppContext, tenant: Tenant, live: str
) -> None:
    sid = await insert_session(ctx, tenant, "evolution")
    path = f"/api/v1/webhooks/evolution/{sid}"
    status, sent = await stream_until_answered(live, path, SECRET, TOTAL)
    assert status == 413
    assert sent < TOTAL // 4, f"{sent} bytes were taken before the 413"
    # Declared too large: refused before a byte of it is sent.
    assert await answer_to_declared_length(live, path, SECRET) == 413
    # An unknown session is refused before its body is read at all.
    unknown = f"/api/v1/webhooks/evolution/{sid + 1000}"
    assert await answer_to_declared_length(live, unknown, SECRET) == 401
    # Within the limit, a delivery is applied as before.
    async with httpx.AsyncClient(base_url=live, timeout=10) as http:
        body = sample_bytes("evolution/webhook.connection-update.open.json")
        assert (await http.post(path, content=body, headers=SECRET)).status_code == 200
    assert await status_of(ctx, sid) == "connected"


async def test_a_chunked_upload_is_refused_at_the_upload_limit_not_after_it(
    client: httpx.AsyncClient, ctx: AppContext, tenant: Tenant, live: str
) -> None:
    sid = await insert_session(ctx, tenant, "evolution", status="connected")
    body = sample_bytes("evolution/webhook.messages-upsert.text.json")
    resp = await client.post(f"/api/v1/webhooks/evolution/{sid}", content=body, headers=SECRET)
    assert resp.status_code == 200, resp.text
    async with ctx.db.session() as db:
        conversation = (await db.scalars(select(Conversation.id))).one()
    boundary = "zapsyncboundary"
    first = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.pdf"\r\n'
        "Content-Type: application/pdf\r\n\r\n"
    ).encode()
    headers = {
        **tenant.headers,
        "Content-Type": f"multipart/form-data; boundary={boundary}",
    }
    status, sent = await stream_until_answered(
        live, f"/api/v1/conversations/{conversation}/messages", headers, TOTAL, first
    )
    assert status == 413
    assert sent < TOTAL // 4, f"{sent} bytes were taken before the 413"
