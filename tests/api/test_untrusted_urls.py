"""URLs users give zapsync: a session's base_url (zapsync calls it) and a send's media URL (the
gateway beside zapsync downloads it) never reach cloud metadata or link-local addresses, and
what a base_url answers is bounded in size and time and never echoed beyond a short reason.
Over real HTTP: local servers that redirect to 169.254.169.254, answer an HTML page, stream
too much, or trickle."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Route

from tests.api.test_messaging import a_conversation, outgoing, send
from tests.conftest import Tenant, problem_of
from tests.support.counts import table_counts
from tests.support.gateways import create_session, running_sandbox
from tests.support.inbox import messages_of
from tests.support.servers import serve_in_thread
from tests.support.sessions import insert_session
from zapsync.api.app import create_app
from zapsync.providers.http import MAX_BODY_BYTES
from zapsync.runtime.context import AppContext
from zapsync.settings import Settings

METADATA_URLS = [
    "http://169.254.169.254",
    "http://169.254.170.2:80/v2/credentials",
    "http://[fe80::a9fe:a9fe]:8080",
    "http://[fd00:ec2::254]",
    "http://[::ffff:169.254.169.254]",
    "http://100.100.100.200",
    "http://metadata.google.internal",
    "http://METADATA.google.internal./computeMetadata/v1",
    "http://2852039166",  # 169.254.169.254 as one number: refused once resolved
    "http://0xA9FEA9FE",
]
PAGE_SECRET = "aws-secret-access-key-0123456789"


def evolution_config(base_url: str) -> dict[str, str]:
    return {"base_url": base_url, "api_key": "k", "instance": "vendas"}


async def create(client: httpx.AsyncClient, tenant: Tenant, base_url: str) -> httpx.Response:
    return await client.post(
        "/api/v1/sessions",
        headers=tenant.headers,
        json={"name": "Loja", "provider": "evolution", "config": evolution_config(base_url)},
    )


class Seen:
    """Requests one of the misbehaving servers below received."""

    def __init__(self) -> None:
        self.paths: list[str] = []


def misbehaving(seen: Seen) -> Starlette:
    async def redirect(request: Request) -> Response:
        seen.paths.append(request.url.path)
        return RedirectResponse("http://169.254.169.254/latest/meta-data/iam/", status_code=307)

    async def html(request: Request) -> Response:
        seen.paths.append(request.url.path)
        page = f"<html><body><h1>Internal</h1><pre>{PAGE_SECRET}</pre></body></html>"
        return HTMLResponse(page * 20, status_code=502)

    async def endless(request: Request) -> Response:
        seen.paths.append(request.url.path)

        async def chunks() -> AsyncIterator[bytes]:
            block = b"[" + b"0," * (512 * 1024)
            for _ in range(MAX_BODY_BYTES // len(block) + 16):
                yield block

        return StreamingResponse(chunks(), media_type="application/json")

    async def trickle(request: Request) -> Response:
        seen.paths.append(request.url.path)

        async def drops() -> AsyncIterator[bytes]:
            for _ in range(300):  # a byte every 0.1 s: no read ever waits for the timeout
                yield b" "
                await asyncio.sleep(0.1)

        return StreamingResponse(drops(), media_type="application/json")

    return Starlette(
        routes=[
            Route("/redirect/{rest:path}", redirect, methods=["GET", "POST", "DELETE", "PUT"]),
            Route("/html/{rest:path}", html, methods=["GET", "POST", "DELETE", "PUT"]),
            Route("/endless/{rest:path}", endless, methods=["GET", "POST"]),
            Route("/trickle/{rest:path}", trickle, methods=["GET", "POST"]),
        ]
    )


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[str, Seen]]:
    seen = Seen()
    with serve_in_thread(misbehaving(seen)) as url:
        yield url, seen


async def test_a_base_url_at_a_metadata_or_link_local_address_is_refused_storing_nothing(
    client: httpx.AsyncClient, tenant: Tenant, ctx: AppContext
) -> None:
    before = await table_counts(ctx)
    for url in METADATA_URLS:
        resp = await create(client, tenant, url)
        assert resp.status_code == 422, (url, resp.text)
        detail = problem_of(resp)["detail"]
        assert "config.base_url" in detail and ("metadata" in detail or "link-local" in detail)
    assert await table_counts(ctx) == before


async def test_loopback_gateways_stay_allowed(client: httpx.AsyncClient, tenant: Tenant) -> None:
    with running_sandbox("evolution") as gateway:
        assert gateway.base_url.startswith("http://127.0.0.1:")
        await create_session(client, tenant, gateway, gateway.new_instance())


async def test_a_gateway_redirecting_to_the_metadata_address_is_not_followed(
    client: httpx.AsyncClient, tenant: Tenant, ctx: AppContext, server: tuple[str, Seen]
) -> None:
    url, seen = server
    before = await table_counts(ctx)
    resp = await create(client, tenant, f"{url}/redirect")
    assert resp.status_code == 422, resp.text
    detail = problem_of(resp)["detail"]
    assert "redirect" in detail and "169.254" not in detail
    assert await table_counts(ctx) == before
    assert seen.paths and all(p.startswith("/redirect/") for p in seen.paths)


async def test_a_stored_base_url_now_at_the_metadata_address_is_not_called(
    client: httpx.AsyncClient, tenant: Tenant, ctx: AppContext
) -> None:
    # Stored before the rule, or a name that resolved elsewhere when the session was made:
    # every connection is checked where it goes.
    for url in (
        "http://169.254.169.254",
        "http://[fd00:ec2::254]",
        "http://metadata.google.internal",
    ):
        sid = await insert_session(ctx, tenant, "evolution", config=evolution_config(url))
        resp = await client.get(f"/api/v1/sessions/{sid}/status", headers=tenant.headers)
        assert resp.status_code == 422, (url, resp.text)
        assert "zapsync does not call" in problem_of(resp)["detail"], url


async def test_an_error_page_is_not_echoed_back(
    client: httpx.AsyncClient, tenant: Tenant, ctx: AppContext, server: tuple[str, Seen]
) -> None:
    url, _ = server
    sid = await insert_session(ctx, tenant, "evolution", config=evolution_config(f"{url}/html"))
    resp = await client.get(f"/api/v1/sessions/{sid}/status", headers=tenant.headers)
    assert resp.status_code == 422, resp.text
    detail = problem_of(resp)["detail"]
    assert "502" in detail
    assert PAGE_SECRET not in detail and "<" not in detail and len(detail) < 300


async def test_a_body_past_the_bound_is_cut_off(
    client: httpx.AsyncClient, tenant: Tenant, ctx: AppContext, server: tuple[str, Seen]
) -> None:
    url, _ = server
    sid = await insert_session(ctx, tenant, "evolution", config=evolution_config(f"{url}/endless"))
    resp = await client.get(f"/api/v1/sessions/{sid}/status", headers=tenant.headers)
    assert resp.status_code == 422, resp.text
    assert f"more than {MAX_BODY_BYTES // 2**20} MB" in problem_of(resp)["detail"]


async def test_a_trickling_gateway_times_out_in_twice_the_timeout(
    client: httpx.AsyncClient,
    tenant: Tenant,
    ctx: AppContext,
    settings: Settings,
    server: tuple[str, Seen],
) -> None:
    url, _ = server
    sid = await insert_session(ctx, tenant, "evolution", config=evolution_config(f"{url}/trickle"))
    started = time.monotonic()
    resp = await client.get(f"/api/v1/sessions/{sid}/status", headers=tenant.headers)
    took = time.monotonic() - started
    assert resp.status_code == 422, resp.text
    assert "timed out" in problem_of(resp)["detail"]
    assert took < 2 * settings.gateway_timeout + 2, took


async def test_media_urls_at_metadata_addresses_are_refused_queuing_nothing(
    app: Any, client: httpx.AsyncClient, tenant: Tenant
) -> None:
    conversation_id = await a_conversation(app, client, tenant)
    for base in METADATA_URLS:
        resp = await send(client, tenant, conversation_id, type="image", url=f"{base}/a.png")
        assert resp.status_code == 422, (base, resp.text)
        detail = problem_of(resp)["detail"]
        assert detail.startswith("zapsync does not reach url:"), detail
    assert outgoing(await messages_of(client, tenant, conversation_id)) == []
    lan = await send(client, tenant, conversation_id, type="image", url="http://10.0.0.7/a.png")
    assert lan.status_code == 202, lan.text


async def test_an_allowed_network_lets_such_urls_through(
    app: Any, client: httpx.AsyncClient, tenant: Tenant, settings: Settings
) -> None:
    conversation_id = await a_conversation(app, client, tenant)
    allowing = create_app(settings.model_copy(update={"url_allow_networks": "169.254.0.0/16"}))
    async with LifespanManager(allowing):
        transport = httpx.ASGITransport(app=allowing)
        async with httpx.AsyncClient(transport=transport, base_url="http://z.test") as other:
            url = "http://169.254.10.20/foto.png"
            resp = await send(other, tenant, conversation_id, type="image", url=url)
            assert resp.status_code == 202, resp.text
            still = await send(
                other, tenant, conversation_id, type="image", url="http://[fe80::1]/a.png"
            )
            assert still.status_code == 422, still.text
