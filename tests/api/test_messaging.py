"""Sending through the outbox: pending at once, sent with the gateway's id, retried through an
outage, failed with a reason, uploads checked and served, and never a duplicate row."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from sqlalchemy import func, select, update

from tests.conftest import Tenant, problem_of
from tests.support.inbox import (
    collect,
    connected_session,
    conversations_of,
    customer_writes,
    eventually,
    instance,
    messages_of,
    settle,
)
from tests.support.job_worker import outbox_jobs_worked
from zapsync.api.app import create_app
from zapsync.api.media_urls import signed_url
from zapsync.runtime.context import AppContext
from zapsync.sandbox.world import Fault
from zapsync.services import media
from zapsync.services.outbox.delivery import deliver_due
from zapsync.settings import Settings
from zapsync.store.models import Message, OutboxItem

CUSTOMER = "5511987654321"
PNG = b"\x89PNG\r\n\x1a\n" + bytes(200)


@pytest.fixture
def settings(settings: Settings) -> Settings:
    # Retries 0.2 s, 0.4 s, 0.8 s apart, then give up; uploads up to ~50 kB.
    return settings.model_copy(
        update={"outbox_base_delay": 0.2, "outbox_max_attempts": 4, "max_upload_mb": 0.05}
    )


async def a_conversation(app: FastAPI, client: httpx.AsyncClient, tenant: Tenant) -> int:
    sid = await connected_session(app, client, tenant)
    await customer_writes(app, sid, CUSTOMER, "oi, tudo bem?", name="Rita")
    (conversation,) = await conversations_of(client, tenant)
    conversation_id: int = conversation["id"]
    return conversation_id


async def send(
    client: httpx.AsyncClient, tenant: Tenant, conversation_id: int, **body: Any
) -> httpx.Response:
    return await client.post(
        f"/api/v1/conversations/{conversation_id}/messages", headers=tenant.headers, json=body
    )


def outgoing(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [m for m in messages if m["direction"] == "out"]


async def until_acked(
    client: httpx.AsyncClient, tenant: Tenant, conversation_id: int, ack: str, count: int = 1
) -> list[dict[str, Any]]:
    async def probe() -> list[dict[str, Any]]:
        return outgoing(await messages_of(client, tenant, conversation_id))

    return await eventually(
        probe, lambda out: len(out) >= count and all(m["ack"] == ack for m in out)
    )


async def outbox_attempts(ctx: AppContext) -> list[int]:
    async with ctx.db.session() as db:
        return list((await db.scalars(select(OutboxItem.attempts).order_by(OutboxItem.id))).all())


async def test_text_is_pending_at_once_then_sent_under_the_gateways_id_in_one_row(
    app: FastAPI, client: httpx.AsyncClient, tenant: Tenant, ctx: AppContext
) -> None:
    conversation_id = await a_conversation(app, client, tenant)
    events = collect(ctx, "new_message", "message_updated", "conversation_updated")
    resp = await send(client, tenant, conversation_id, type="text", content="Olá, Rita!")
    assert resp.status_code == 202, resp.text
    queued = resp.json()
    assert queued["ack"] == "pending" and queued["provider_message_id"].startswith("local-")
    assert queued["direction"] == "out" and queued["sender"] == "agent"

    (sent,) = await until_acked(client, tenant, conversation_id, "sent")
    inst = instance(app, queued["session_id"])
    assert [(m.body, m.chat_jid) for m in inst.sent] == [
        ("Olá, Rita!", f"{CUSTOMER}@s.whatsapp.net")
    ]
    assert sent["id"] == queued["id"]
    assert sent["provider_message_id"] == inst.sent[0].id
    await settle(app)  # the gateway's echo of our own message has been applied by now
    assert len(outgoing(await messages_of(client, tenant, conversation_id))) == 1
    (conversation,) = await conversations_of(client, tenant)
    assert conversation["last_message_preview"] == "Olá, Rita!"
    messages = [e for e in events if e.name != "conversation_updated"]
    ours = [(e.name, e.data["ack"]) for e in messages if e.data["id"] == queued["id"]]
    assert ours[0] == ("new_message", "pending")
    assert ("message_updated", "sent") in ours
    # When the echo was stored before the gateway's answer, it showed as a message of its
    # own for a moment; the update that folds it into ours says which one it replaced.
    echoes = {e.data["id"] for e in messages if e.name == "new_message"} - {queued["id"]}
    replaced = {e.data.get("replaces_message_id") for e in messages if e.name == "message_updated"}
    assert echoes <= replaced
    assert any(e.name == "conversation_updated" for e in events)


async def test_many_sends_at_once_each_go_out_once_as_one_row(
    app: FastAPI, client: httpx.AsyncClient, tenant: Tenant
) -> None:
    conversation_id = await a_conversation(app, client, tenant)
    answers = await asyncio.gather(
        *(send(client, tenant, conversation_id, type="text", content=f"n{i}") for i in range(10))
    )
    assert all(a.status_code == 202 for a in answers)
    await until_acked(client, tenant, conversation_id, "sent", count=10)
    await settle(app)
    out = outgoing(await messages_of(client, tenant, conversation_id))
    inst = instance(app, out[0]["session_id"])
    assert sorted(m["body"] for m in out) == sorted(f"n{i}" for i in range(10))
    assert {m["provider_message_id"] for m in out} == {m.id for m in inst.sent}
    assert len(inst.sent) == 10


async def test_media_by_url_reaches_the_gateway_with_caption_and_type(
    app: FastAPI, client: httpx.AsyncClient, tenant: Tenant
) -> None:
    conversation_id = await a_conversation(app, client, tenant)
    url = "https://cdn.example.com/catalogo.pdf"
    resp = await send(client, tenant, conversation_id, type="document", url=url, caption="Catálogo")
    assert resp.status_code == 202, resp.text
    assert resp.json()["mime_type"] == "application/pdf"
    (sent,) = await until_acked(client, tenant, conversation_id, "sent")
    (gateway_copy,) = instance(app, sent["session_id"]).sent
    assert (gateway_copy.type, gateway_copy.media_url, gateway_copy.body) == (
        "document",
        url,
        "Catálogo",
    )
    (conversation,) = await conversations_of(client, tenant)
    assert conversation["last_message_preview"] == "[document] Catálogo"


async def test_an_upload_is_kept_served_by_signed_url_and_sent(
    app: FastAPI,
    client: httpx.AsyncClient,
    tenant: Tenant,
    other_tenant: Tenant,
    settings: Settings,
) -> None:
    conversation_id = await a_conversation(app, client, tenant)
    resp = await client.post(
        f"/api/v1/conversations/{conversation_id}/messages",
        headers=tenant.headers,
        files={"file": ("foto.png", PNG, "image/png")},
        data={"caption": "nossa loja"},
    )
    assert resp.status_code == 202, resp.text
    queued = resp.json()
    assert (queued["type"], queued["mime_type"], queued["caption"]) == (
        "image",
        "image/png",
        "nossa loja",
    )
    media_url = httpx.URL(queued["media_url"])
    assert str(media_url).startswith(f"{settings.public_url}/api/v1/media/")
    (sent,) = await until_acked(client, tenant, conversation_id, "sent")
    assert instance(app, sent["session_id"]).sent[0].media_url == queued["media_url"]

    signed = await client.get(media_url.raw_path.decode())  # what the gateway does: no token
    assert signed.status_code == 200
    assert signed.content == PNG and signed.headers["content-type"] == "image/png"
    unsigned = media_url.path
    assert (await client.get(unsigned)).status_code == 401
    assert (await client.get(unsigned, headers=tenant.headers)).content == PNG
    assert (await client.get(unsigned, headers=other_tenant.headers)).status_code == 404
    forged = await client.get(unsigned, params={"sig": "0" * 32})
    assert forged.status_code == 403
    assert "signature is not valid" in problem_of(forged)["detail"]


async def an_upload(client: httpx.AsyncClient, tenant: Tenant, conversation_id: int) -> str:
    """The name of a file uploaded and sent in the conversation."""
    resp = await client.post(
        f"/api/v1/conversations/{conversation_id}/messages",
        headers=tenant.headers,
        files={"file": ("foto.png", PNG, "image/png")},
    )
    assert resp.status_code == 202, resp.text
    return httpx.URL(resp.json()["media_url"]).path.rsplit("/", 1)[1]


async def test_a_signed_media_url_expires_and_a_token_still_opens_the_file(
    app: FastAPI, client: httpx.AsyncClient, tenant: Tenant, settings: Settings
) -> None:
    name = await an_upload(client, tenant, await a_conversation(app, client, tenant))
    secret = settings.resolved_secret_key()
    lifetime = int(settings.media_url_hours * 3600)
    now = int(time.time())
    fresh = httpx.URL(signed_url(settings, secret, name, issued_at=now - lifetime + 60))
    assert (await client.get(fresh.raw_path.decode())).content == PNG
    stale = httpx.URL(signed_url(settings, secret, name, issued_at=now - lifetime - 60))
    expired = await client.get(stale.raw_path.decode())
    assert expired.status_code == 410
    assert "expired" in problem_of(expired)["detail"]
    with_token = await client.get(stale.raw_path.decode(), headers=tenant.headers)
    assert with_token.content == PNG


async def test_a_tampered_media_url_is_refused_with_a_reason_never_a_500(
    app: FastAPI, client: httpx.AsyncClient, tenant: Tenant, settings: Settings
) -> None:
    conversation_id = await a_conversation(app, client, tenant)
    name = await an_upload(client, tenant, conversation_id)
    other = await an_upload(client, tenant, conversation_id)
    secret = settings.resolved_secret_key()
    sig = media.sign(secret, name)
    stamp, digest = sig.split(".")
    later = media.sign(secret, name, issued_at=int(time.time()) + 86400).split(".")[0]
    tampered = [
        media.sign(secret, other),  # another file's signature
        media.sign("another-secret", name),
        f"{stamp}.{digest[:-2]}",
        f"{later}.{digest}",  # pushed into the future to live longer
        digest,
        "0" * 32,  # the unexpiring kind zapsync used to issue
        "é",
        "ação.✓",
        "",
    ]
    for bad in tampered:
        resp = await client.get(f"/api/v1/media/{name}", params={"sig": bad})
        assert resp.status_code == 403, (bad, resp.text)
        assert "signature is not valid" in problem_of(resp)["detail"]
    raw = await client.get(f"/api/v1/media/{name}?sig=%FF%FE.%C3")
    assert raw.status_code == 403, raw.text
    assert (await client.get(f"/api/v1/media/{name}", params={"sig": sig})).content == PNG


async def test_uploads_and_bodies_of_the_wrong_kind_are_refused_with_a_reason(
    app: FastAPI, client: httpx.AsyncClient, tenant: Tenant, settings: Settings
) -> None:
    conversation_id = await a_conversation(app, client, tenant)
    url = f"/api/v1/conversations/{conversation_id}/messages"
    uploads: list[tuple[dict[str, Any], dict[str, str], int, str]] = [
        ({"file": ("notes.txt", b"hello", "text/plain")}, {"type": "image"}, 415, "image takes"),
        ({"file": ("fake.png", b"GIF89a" + bytes(50), "image/png")}, {}, 415, "not a image/png"),
        ({"file": ("big.png", PNG + bytes(60_000), "image/png")}, {}, 413, "MB limit"),
        ({"file": ("x.png", PNG, "image/png")}, {"type": "text"}, 422, "not 'text'"),
        ({"other": ("x.png", PNG, "image/png")}, {}, 422, "field named 'file'"),
        ({"file": ("empty.pdf", b"", "application/pdf")}, {}, 415, "empty"),
    ]
    for files, data, status, reason in uploads:
        resp = await client.post(url, headers=tenant.headers, files=files, data=data)
        assert resp.status_code == status, (files, resp.text)
        assert reason in problem_of(resp)["detail"], resp.text
    bodies: list[tuple[dict[str, Any], int, str]] = [
        ({"type": "text", "content": "  "}, 422, "non-empty content"),
        ({"type": "image"}, 422, "needs the url"),
        ({"type": "image", "url": "ftp://x/y.png"}, 422, "http"),
        ({"type": "image", "url": "https://x/y.png", "mime_type": "application/pdf"}, 415, ""),
        ({"type": "video", "url": "https://x/clip.pdf"}, 415, "video takes"),
        ({"type": "sticker", "url": "https://x/y.webp"}, 422, "type"),
        ({"type": "text", "content": "x", "colour": "red"}, 422, "colour"),
    ]
    for body, status, reason in bodies:
        resp = await client.post(url, headers=tenant.headers, json=body)
        assert resp.status_code == status, (body, resp.text)
        assert reason in problem_of(resp)["detail"]
    plain = await client.post(
        url, headers={**tenant.headers, "content-type": "text/plain"}, content=b"hi"
    )
    assert plain.status_code == 415
    assert not list((settings.data_dir / "media").glob("*")), "refused uploads leave no file"
    assert outgoing(await messages_of(client, tenant, conversation_id)) == []


async def test_sends_during_an_outage_go_out_once_in_order_when_it_ends(
    app: FastAPI, client: httpx.AsyncClient, tenant: Tenant, ctx: AppContext
) -> None:
    conversation_id = await a_conversation(app, client, tenant)
    ctx.world.fault = Fault.ERROR
    for text in ("um", "dois", "três"):
        resp = await send(client, tenant, conversation_id, type="text", content=text)
        assert resp.status_code == 202
    # the first is retried; the two behind it wait their turn
    await eventually(lambda: outbox_attempts(ctx), lambda a: a[0] >= 2, timeout=5)
    assert {m["ack"] for m in outgoing(await messages_of(client, tenant, conversation_id))} == {
        "pending"
    }
    ctx.world.fault = Fault.NONE
    out = await until_acked(client, tenant, conversation_id, "sent", count=3)
    inst = instance(app, out[0]["session_id"])
    assert [m.body for m in inst.sent] == ["um", "dois", "três"]
    await settle(app)
    assert len(outgoing(await messages_of(client, tenant, conversation_id))) == 3


async def test_a_send_shows_failed_with_the_reason_after_the_last_retry(
    app: FastAPI, client: httpx.AsyncClient, tenant: Tenant, ctx: AppContext
) -> None:
    conversation_id = await a_conversation(app, client, tenant)
    updates = collect(ctx, "message_updated")
    ctx.world.fault = Fault.ERROR
    resp = await send(client, tenant, conversation_id, type="text", content="alô?")
    (failed,) = await until_acked(client, tenant, conversation_id, "failed")
    assert failed["id"] == resp.json()["id"]
    assert "sandbox gateway error 500" in failed["error"]
    assert "after 4 attempts" in failed["error"]
    assert await outbox_attempts(ctx) == [4]
    assert instance(app, failed["session_id"]).sent == []
    await ctx.bus.drain()
    assert [(e.data["id"], e.data["ack"]) for e in updates] == [(failed["id"], "failed")]
    assert updates[0].data["error"] == failed["error"]


async def test_a_gateway_refusal_fails_at_once_with_its_reason(
    app: FastAPI, client: httpx.AsyncClient, tenant: Tenant, ctx: AppContext
) -> None:
    conversation_id = await a_conversation(app, client, tenant)
    (conversation,) = await conversations_of(client, tenant)
    ctx.world.delete(f"zapsync-{conversation['session_id']}")  # the gateway lost the instance
    await send(client, tenant, conversation_id, type="text", content="oi")
    (failed,) = await until_acked(client, tenant, conversation_id, "failed")
    assert "does not exist" in failed["error"]
    assert await outbox_attempts(ctx) == [1]


async def test_a_restart_resumes_what_was_queued(
    app: FastAPI, client: httpx.AsyncClient, tenant: Tenant, ctx: AppContext, settings: Settings
) -> None:
    conversation_id = await a_conversation(app, client, tenant)
    await app.state.outbox.stop()  # this process dies before handing the message over
    resp = await send(client, tenant, conversation_id, type="text", content="depois do reinício")
    assert resp.status_code == 202
    await asyncio.sleep(0.1)
    assert await outbox_attempts(ctx) == [0]

    slower = settings.model_copy(update={"outbox_max_attempts": 8})
    restarted = create_app(slower)
    async with LifespanManager(restarted), outbox_jobs_worked(restarted):
        transport = httpx.ASGITransport(app=restarted)
        async with httpx.AsyncClient(transport=transport, base_url="http://zapsync.test") as c2:
            sid = resp.json()["session_id"]
            # the restarted sandbox gateway shows a QR again; sends wait until it is paired
            await c2.post(f"/api/v1/sandbox/sessions/{sid}/scan", headers=tenant.headers)
            (sent,) = await until_acked(c2, tenant, conversation_id, "sent")
            assert [m.body for m in instance(restarted, sid).sent] == ["depois do reinício"]
            assert sent["provider_message_id"] == instance(restarted, sid).sent[0].id
            # let the import the pairing started finish rather than cancel it on shutdown
            await restarted.state.ctx.tasks.drain()
            await settle(restarted)


async def test_an_echo_stored_before_the_answer_is_adopted_not_sent_twice(
    app: FastAPI, client: httpx.AsyncClient, tenant: Tenant, ctx: AppContext
) -> None:
    conversation_id = await a_conversation(app, client, tenant)
    await app.state.outbox.stop()
    queued = (await send(client, tenant, conversation_id, type="text", content="eco")).json()
    # An earlier attempt reached the gateway but its answer was lost (a timeout): the message
    # went out, and the gateway's webhook for it was stored as a message of its own.
    inst = instance(app, queued["session_id"])
    echo = ctx.world.send(inst, f"{CUSTOMER}@s.whatsapp.net", "eco")
    await settle(app)
    assert len(outgoing(await messages_of(client, tenant, conversation_id))) == 2
    async with ctx.db.session() as db:
        await db.execute(update(OutboxItem).values(attempts=1))
        await db.commit()
    updates = collect(ctx, "message_updated")

    report = await deliver_due(ctx)

    assert report.delivered == 1
    (only,) = outgoing(await messages_of(client, tenant, conversation_id))
    assert (only["id"], only["provider_message_id"], only["ack"]) == (queued["id"], echo.id, "sent")
    assert [m.id for m in inst.sent] == [echo.id], "not sent a second time"
    await ctx.bus.drain()
    assert updates[0].data["replaces_message_id"] != queued["id"]
    async with ctx.db.session() as db:
        assert await db.scalar(select(func.count()).select_from(Message)) == 2
