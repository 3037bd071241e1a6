"""Search as Brazilians type: names without accents or case ("joao" finds "João"), phones
in any spelling (with or without +55, the ninth digit, spaces, dashes), on both engines and
whatever wrote the name (a live message, the import); a NUL in `q` is refused."""

from __future__ import annotations

import time

import httpx
import pytest
from fastapi import FastAPI

from tests.conftest import Tenant, problem_of
from tests.support.inbox import connected_session, customer_writes, settle
from zapsync.runtime.context import AppContext
from zapsync.sandbox.world import SimMessage

JOAO = "5531987651234"  # +55 31 98765-1234, a mobile with the ninth digit
ANA = "5511912345678"


async def found(client: httpx.AsyncClient, tenant: Tenant, route: str, q: str) -> list[str]:
    resp = await client.get(f"/api/v1/{route}", headers=tenant.headers, params={"q": q})
    assert resp.status_code == 200, resp.text
    items = resp.json()["items"]
    return sorted(str(item["name"]) for item in items)


@pytest.fixture
async def inbox(app: FastAPI, client: httpx.AsyncClient, tenant: Tenant) -> int:
    sid = await connected_session(app, client, tenant)
    await customer_writes(app, sid, JOAO, "Bom dia", name="João Conceição")
    await customer_writes(app, sid, ANA, "Olá", name="Ana Lúcia")
    return sid


@pytest.mark.parametrize("q", ["joao", "JOÃO", "João", "conceicao", "CONCEIÇÃO", "joão c"])
@pytest.mark.parametrize("route", ["conversations", "contacts"])
async def test_names_are_found_without_accents_or_case(
    inbox: int, client: httpx.AsyncClient, tenant: Tenant, route: str, q: str
) -> None:
    assert await found(client, tenant, route, q) == ["João Conceição"]


@pytest.mark.parametrize(
    "q",
    [
        "+55 31 98765-1234",
        "+5531987651234",
        "5531987651234",
        "31987651234",
        "3187651234",  # without the ninth digit
        "31 8765-1234",
        "(31) 98765-1234",
        "98765-1234",
        "8765-1234",
    ],
)
@pytest.mark.parametrize("route", ["conversations", "contacts"])
async def test_phone_fragments_in_any_spelling_find_the_number(
    inbox: int, client: httpx.AsyncClient, tenant: Tenant, route: str, q: str
) -> None:
    assert await found(client, tenant, route, q) == ["João Conceição"]


async def test_names_written_by_the_import_are_found_without_accents(
    app: FastAPI, client: httpx.AsyncClient, ctx: AppContext, tenant: Tenant
) -> None:
    created = await client.post(
        "/api/v1/sessions",
        headers=tenant.headers,
        json={"name": "Loja", "provider": "sandbox", "config": {}},
    )
    sid = created.json()["id"]
    inst = ctx.world.get(f"zapsync-{sid}")
    assert inst is not None
    chat = ctx.world.add_chat(inst, f"{JOAO}@s.whatsapp.net", name="Conceição Araújo")
    ctx.world.add_message(
        inst,
        SimMessage(id="H1", chat_jid=chat.jid, from_me=False, timestamp=int(time.time())),
        notify=False,
    )
    await client.post(f"/api/v1/sandbox/sessions/{sid}/scan", headers=tenant.headers)
    await settle(app)
    assert await found(client, tenant, "conversations", "araujo") == ["Conceição Araújo"]
    assert await found(client, tenant, "conversations", "CONCEICAO ARAUJO") == ["Conceição Araújo"]


@pytest.mark.parametrize("q", ["\x00", "jo\x00ao", " \x00 "])
@pytest.mark.parametrize("route", ["conversations", "contacts"])
async def test_a_nul_in_q_is_refused_not_read_as_no_filter(
    inbox: int, client: httpx.AsyncClient, tenant: Tenant, route: str, q: str
) -> None:
    resp = await client.get(f"/api/v1/{route}", headers=tenant.headers, params={"q": q})
    assert resp.status_code == 422, resp.text
    assert "NUL" in problem_of(resp)["detail"]
