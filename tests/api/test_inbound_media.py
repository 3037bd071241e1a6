"""Inbound media a browser can open: a customer's photo is fetched through its gateway (the
sandbox's Evolution, WAHA and MegaAPI dialects over real HTTP, and the built-in sandbox) on
first view, kept, served from disk after, refused past the size limit, shown as gone when the
gateway no longer has it, and opened only by a signed URL or a token of its organization."""

from __future__ import annotations

import asyncio
import base64
import os
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from tests.conftest import Tenant, problem_of
from tests.support.dialect_payloads import message_body, paired_instance
from tests.support.gateways import SandboxGateway, running_sandbox
from tests.support.inbox import connected_session, eventually, instance, messages_of, settle
from tests.support.sessions import insert_session
from zapsync.api.media_urls import inbound_media_url
from zapsync.runtime.context import AppContext
from zapsync.sandbox.world import SimMessage

SECRET = {"X-Zapsync-Token": "hook-secret", "Content-Type": "application/json"}
CUSTOMER = "5511987654321@s.whatsapp.net"
# A JPEG's first bytes, then filler: what the browser is handed back, byte for byte.
PHOTO = b"\xff\xd8\xff\xe0" + secrets.token_bytes(4096)


@pytest.fixture(scope="module", params=["evolution", "waha", "megaapi"])
def gateway(request: pytest.FixtureRequest) -> Iterator[SandboxGateway]:
    with running_sandbox(request.param) as gw:
        yield gw


def _media_url(gateway: SandboxGateway, name: str, message_id: str) -> str:
    if gateway.dialect == "waha":
        # WAHA names files by its own idea of its host, which zapsync may not reach.
        return f"http://localhost:3000/api/files/{name}/{message_id}.jpeg"
    return f"https://mmg.whatsapp.net/v/t62.7118-24/{message_id}.enc?ccb=11-4&oe=6800&mms3=true"


async def _inbound_photo(
    client: httpx.AsyncClient,
    ctx: AppContext,
    tenant: Tenant,
    gateway: SandboxGateway,
    name: str,
    sid: int,
    data: bytes = PHOTO,
) -> dict[str, Any]:
    """The gateway keeps a customer's photo; its webhook reaches zapsync; the stored message."""
    msg = SimMessage(
        id=f"3EB0{secrets.token_hex(6).upper()}",
        chat_jid=CUSTOMER,
        from_me=False,
        timestamp=int(time.time()),
        type="image",
        body="olha",
        push_name="Cliente",
        mime_type="image/jpeg",
    )
    msg.media_url = _media_url(gateway, name, msg.id)
    gateway.control(
        f"/instances/{name}/messages",
        {
            "chat_jid": CUSTOMER,
            "id": msg.id,
            "type": "image",
            "body": "olha",
            "mime_type": "image/jpeg",
            "media_url": msg.media_url,
            "media_base64": base64.b64encode(data).decode(),
            "notify": False,
        },
    )
    body = message_body(gateway.dialect, paired_instance(name), msg)
    resp = await client.post(
        f"/api/v1/webhooks/{gateway.dialect}/{sid}", content=body, headers=SECRET
    )
    assert resp.status_code == 200, resp.text
    conversation_id = await _conversation_of(client, tenant, sid)
    listed = await eventually(
        lambda: messages_of(client, tenant, conversation_id),
        lambda ms: any(m["provider_message_id"].endswith(msg.id) for m in ms),
    )
    return next(m for m in listed if m["provider_message_id"].endswith(msg.id))


async def _conversation_of(client: httpx.AsyncClient, tenant: Tenant, sid: int) -> int:
    async def listed() -> list[dict[str, Any]]:
        resp = await client.get("/api/v1/conversations", headers=tenant.headers)
        items: list[dict[str, Any]] = resp.json()["items"]
        return [c for c in items if c["session_id"] == sid]

    return int((await eventually(listed, bool))[0]["id"])


async def _session_on(ctx: AppContext, tenant: Tenant, gateway: SandboxGateway) -> tuple[str, int]:
    prefix = f"m{secrets.token_hex(3)}"
    gateway.control("/bulk", {"prefix": prefix, "count": 1})  # paired and open
    name = f"{prefix}-0"
    sid = await insert_session(
        ctx, tenant, gateway.dialect, status="connected", config=gateway.config(name)
    )
    return name, sid


def _downloads(gateway: SandboxGateway, name: str) -> int:
    return int(gateway.instance(name)["media_downloads"])


def _kept(ctx: AppContext) -> list[Path]:
    folder = ctx.settings.data_dir / "media" / "inbound"
    return sorted(folder.iterdir()) if folder.exists() else []


async def test_first_view_fetches_through_the_gateway_and_the_second_is_served_from_disk(
    client: httpx.AsyncClient, ctx: AppContext, tenant: Tenant, gateway: SandboxGateway
) -> None:
    name, sid = await _session_on(ctx, tenant, gateway)
    message = await _inbound_photo(client, ctx, tenant, gateway, name, sid)
    url = message["media_view_url"]
    assert url and url.startswith(f"/api/v1/messages/{message['id']}/media?sig=")

    # Two first views at once: the gateway is asked once.
    first, again = await asyncio.gather(client.get(url), client.get(url))

    for resp in (first, again):
        assert resp.status_code == 200, resp.text
        assert resp.content == PHOTO
        assert resp.headers["content-type"] == "image/jpeg"
    assert _downloads(gateway, name) == 1
    kept = _kept(ctx)
    assert [p.suffix for p in kept] == [".jpg"], kept

    later = await client.get(url)
    assert later.status_code == 200 and later.content == PHOTO
    assert _downloads(gateway, name) == 1, "served from disk, the gateway not asked again"


async def test_media_the_gateway_no_longer_has_is_a_gone_problem_with_the_reason(
    client: httpx.AsyncClient, ctx: AppContext, tenant: Tenant, gateway: SandboxGateway
) -> None:
    name, sid = await _session_on(ctx, tenant, gateway)
    message = await _inbound_photo(client, ctx, tenant, gateway, name, sid)
    pmid = message["provider_message_id"].rsplit("_", 1)[-1]
    async with httpx.AsyncClient(base_url=gateway.base_url) as raw:
        resp = await raw.delete(f"/_sandbox/instances/{name}/messages/{pmid}/media")
    assert resp.status_code == 200, resp.text

    gone = await client.get(message["media_view_url"])

    assert gone.status_code == 410, gone.text
    assert gone.headers["content-type"].startswith("application/problem+json")
    assert "no longer has this media" in problem_of(gone)["detail"]
    assert _kept(ctx) == []


async def test_media_past_the_limit_is_refused_and_nothing_is_kept(
    client: httpx.AsyncClient,
    ctx: AppContext,
    tenant: Tenant,
    gateway: SandboxGateway,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    name, sid = await _session_on(ctx, tenant, gateway)
    message = await _inbound_photo(client, ctx, tenant, gateway, name, sid)
    monkeypatch.setattr(ctx.settings, "inbound_media_max_mb", 1 / 1024)  # 1 KB

    refused = await client.get(message["media_view_url"])

    assert refused.status_code == 413, refused.text
    assert "ZAPSYNC_INBOUND_MEDIA_MAX_MB" in problem_of(refused)["detail"]
    assert _kept(ctx) == [], "no file, whole or half"


async def test_only_a_signed_url_or_a_token_of_the_organization_opens_it(
    client: httpx.AsyncClient,
    ctx: AppContext,
    tenant: Tenant,
    other_tenant: Tenant,
    gateway: SandboxGateway,
) -> None:
    name, sid = await _session_on(ctx, tenant, gateway)
    message = await _inbound_photo(client, ctx, tenant, gateway, name, sid)
    path = f"/api/v1/messages/{message['id']}/media"
    secret_key = ctx.settings.resolved_secret_key()

    forged = await client.get(f"{path}?sig=1234.abcd")
    another = inbound_media_url(secret_key, message["id"] + 1).split("?")[1]
    cross = await client.get(f"{path}?{another}")
    bare = await client.get(path)
    expired = await client.get(inbound_media_url(secret_key, message["id"], issued_at=1))
    foreign = await client.get(path, headers=other_tenant.headers)
    owner = await client.get(path, headers=tenant.headers)

    assert forged.status_code == 403, forged.text
    assert cross.status_code == 403, "another message's signature opens nothing else"
    assert bare.status_code == 401, bare.text
    assert expired.status_code == 410 and "expired" in problem_of(expired)["detail"]
    assert foreign.status_code == 404, "another organization's token finds nothing"
    assert owner.status_code == 200 and owner.content == PHOTO


async def _sandbox_photo(
    app: FastAPI, client: httpx.AsyncClient, ctx: AppContext, tenant: Tenant
) -> tuple[Any, int, str]:
    """A customer's photo on the built-in sandbox's phone: its instance, session and message
    id."""
    sid = await connected_session(app, client, tenant)
    inst = instance(app, sid)
    msg_id = f"3EB0{secrets.token_hex(6).upper()}"
    ctx.world.attach_media(inst, msg_id, PHOTO)
    ctx.world.inbound(inst, CUSTOMER, "", id=msg_id, type="image", mime_type="image/jpeg")
    return inst, sid, msg_id


async def test_the_builtin_sandbox_hands_its_media_over_too(
    app: FastAPI, client: httpx.AsyncClient, ctx: AppContext, tenant: Tenant
) -> None:
    inst, sid, msg_id = await _sandbox_photo(app, client, ctx, tenant)
    gone_id = f"3EB0{secrets.token_hex(6).upper()}"
    ctx.world.inbound(inst, CUSTOMER, "", id=gone_id, type="image", mime_type="image/jpeg")
    await settle(app)
    conversation_id = await _conversation_of(client, tenant, sid)
    by_id = {
        m["provider_message_id"]: m for m in await messages_of(client, tenant, conversation_id)
    }

    shown = await client.get(by_id[msg_id]["media_view_url"])
    again = await client.get(by_id[msg_id]["media_view_url"])
    gone = await client.get(by_id[gone_id]["media_view_url"])

    assert shown.status_code == 200 and shown.content == PHOTO
    assert again.status_code == 200 and inst.media_downloads == 1
    assert gone.status_code == 410, gone.text


async def test_kept_media_nobody_opened_for_a_month_is_forgotten_and_fetched_again(
    app: FastAPI, client: httpx.AsyncClient, ctx: AppContext, tenant: Tenant
) -> None:
    inst, sid, _ = await _sandbox_photo(app, client, ctx, tenant)
    await settle(app)
    conversation_id = await _conversation_of(client, tenant, sid)
    (message,) = await messages_of(client, tenant, conversation_id)
    assert (await client.get(message["media_view_url"])).status_code == 200
    (kept,) = _kept(ctx)
    # Another organization's file, as old: not this organization's cleanup to remove.
    foreign = kept.with_name(f"{tenant.organization_id + 1}-1-0000000000000000.jpg")
    foreign.write_bytes(PHOTO)
    month_ago = time.time() - 31 * 86400
    for path in (kept, foreign):
        os.utime(path, (month_ago, month_ago))

    # Viewed again now: its time is refreshed, and the cleanup keeps it.
    assert (await client.get(message["media_view_url"])).status_code == 200
    run = "/api/v1/jobs/cleanup-sessions/run"
    report = (await client.post(run, headers=tenant.headers)).json()
    assert report["inbound_media_removed"] == 0 and kept.exists()

    os.utime(kept, (month_ago, month_ago))
    report = (await client.post(run, headers=tenant.headers)).json()
    assert report["inbound_media_removed"] == 1
    assert not kept.exists() and foreign.exists()
    assert inst.media_downloads == 1

    shown = await client.get(message["media_view_url"])  # the gateway still has it
    assert shown.status_code == 200 and shown.content == PHOTO
    assert inst.media_downloads == 2 and kept.exists()
