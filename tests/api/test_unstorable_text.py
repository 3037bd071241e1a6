"""Messages that could never be stored are stored: a lone surrogate or a NUL in a body or a
push name, and webhook JSON nested far deeper than any gateway nests an event, posted over
real HTTP to the webhook route in each gateway's dialect, on both engines. Before, each was a
500 the gateway retried forever while the customer's message was lost."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from tests.api.test_messaging import a_conversation, until_acked
from tests.conftest import Tenant, problem_of
from tests.support.dialect_payloads import DIALECTS, message_body, nested, paired_instance
from tests.support.inbox import instance
from tests.support.servers import serve_in_thread
from tests.support.sessions import insert_session
from zapsync.api.app import create_app
from zapsync.runtime.context import AppContext
from zapsync.sandbox.world import SimMessage
from zapsync.settings import Settings
from zapsync.store.models import Contact, Conversation, Message

SECRET = {"X-Zapsync-Token": "hook-secret", "Content-Type": "application/json"}
CUSTOMER = "5511987654321@s.whatsapp.net"


@pytest.fixture
def served(settings: Settings) -> Iterator[str]:
    """zapsync on a real port, on the test's database."""
    with serve_in_thread(create_app(settings)) as url:
        yield url


def customer_message(body: str, push_name: str) -> SimMessage:
    return SimMessage(
        id="3EB0C431D8F2A1B7",
        chat_jid=CUSTOMER,
        from_me=False,
        timestamp=int(time.time()),
        body=body,
        push_name=push_name,
    )


async def post(served: str, dialect: str, sid: int, body: bytes) -> httpx.Response:
    async with httpx.AsyncClient(timeout=10) as client:
        return await client.post(
            f"{served}/api/v1/webhooks/{dialect}/{sid}", content=body, headers=SECRET
        )


async def stored(ctx: AppContext) -> tuple[list[str | None], list[str | None], list[str | None]]:
    async with ctx.db.session() as db:
        bodies = (await db.scalars(select(Message.body))).all()
        names = (await db.scalars(select(Contact.name))).all()
        previews = (await db.scalars(select(Conversation.last_message_preview))).all()
    return list(bodies), list(names), list(previews)


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_lone_surrogates_and_nuls_are_replaced_and_the_message_stored(
    served: str, ctx: AppContext, tenant: Tenant, dialect: str
) -> None:
    sid = await insert_session(ctx, tenant, dialect, status="connected")
    # Half an emoji cut by the client, and a NUL, in the text and in the person's name.
    message = customer_message("Oi \ud83d tudo\x00 bem?", "Jo\x00ão \udc00")
    body = message_body(dialect, paired_instance(), message)
    assert b"\\ud83d" in body and b"\\u0000" in body

    resp = await post(served, dialect, sid, body)

    assert resp.status_code == 200, resp.text
    assert await stored(ctx) == (
        ["Oi \ufffd tudo bem?"],
        ["João \ufffd"],
        ["Oi \ufffd tudo bem?"],
    )
    # The gateway retries until it gets a 2xx: a repeat is the same message, stored once.
    assert (await post(served, dialect, sid, body)).status_code == 200
    assert len((await stored(ctx))[0]) == 1


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_json_nested_a_thousand_deep_still_stores_the_message(
    served: str, ctx: AppContext, tenant: Tenant, dialect: str
) -> None:
    sid = await insert_session(ctx, tenant, dialect, status="connected")
    message = customer_message("Oi, vocês entregam amanhã?", "Maria Souza")
    body = message_body(dialect, paired_instance(), message, deep=1000)

    resp = await post(served, dialect, sid, body)

    assert resp.status_code == 200, resp.text
    assert (await stored(ctx))[0] == ["Oi, vocês entregam amanhã?"]


@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize(
    "body",
    [
        nested(1000).encode(),  # nothing but nesting
        b'{"event": "messages.upsert", "data": ' + b"[" * 5000,  # never closed
    ],
    ids=["only-nesting", "unclosed"],
)
async def test_a_body_that_is_only_deep_nesting_is_a_400_with_a_reason(
    served: str, ctx: AppContext, tenant: Tenant, dialect: str, body: bytes
) -> None:
    sid = await insert_session(ctx, tenant, dialect, status="connected")

    resp = await post(served, dialect, sid, body)

    assert resp.status_code == 400, resp.text
    assert "JSON" in problem_of(resp)["detail"]
    assert await stored(ctx) == ([], [], [])


async def test_a_send_with_a_lone_surrogate_or_nul_is_stored_shown_and_sent_as_one_text(
    app: FastAPI, client: httpx.AsyncClient, tenant: Tenant
) -> None:
    conversation_id = await a_conversation(app, client, tenant)
    raw = json.dumps({"type": "text", "content": "Olá\x00 \ud83d!"}).encode()

    resp = await client.post(
        f"/api/v1/conversations/{conversation_id}/messages",
        headers={**tenant.headers, "Content-Type": "application/json"},
        content=raw,
    )

    assert resp.status_code == 202, resp.text
    assert resp.json()["body"] == "Olá \ufffd!"
    (sent,) = await until_acked(client, tenant, conversation_id, "sent")
    assert sent["body"] == "Olá \ufffd!"
    assert [m.body for m in instance(app, sent["session_id"]).sent] == ["Olá \ufffd!"]
