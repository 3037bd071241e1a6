"""Chatwoot integrations end to end over real HTTP: zapsync's API in process, the sandbox's
Chatwoot dialect served on a free port. Connections are tested before they are stored;
contacts pull with fingerprints (created, then skipped, then updated); a push links a
contact Chatwoot already has; seed 004's routes answer in its envelope."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy import func, select

from tests.conftest import Tenant, problem_of
from tests.connectors.conftest import ChatwootSandbox
from zapsync.runtime.context import AppContext
from zapsync.runtime.wiring import Runtime
from zapsync.sandbox.dialects.chatwoot.state import SANDBOX_ACCOUNT_ID, SANDBOX_TOKEN
from zapsync.store.models import Contact, ExternalRef, Integration, SyncRun


def body_for(chatwoot: ChatwootSandbox, **config: Any) -> dict[str, Any]:
    return {
        "provider": "chatwoot",
        "api_key": config.pop("api_key", SANDBOX_TOKEN),
        "config": {"account_id": str(SANDBOX_ACCOUNT_ID), "api_url": chatwoot.url, **config},
    }


async def connect(client: httpx.AsyncClient, tenant: Tenant, chatwoot: ChatwootSandbox) -> int:
    resp = await client.post(
        "/api/v1/integrations", headers=tenant.headers, json=body_for(chatwoot)
    )
    assert resp.status_code == 201, resp.text
    return int(resp.json()["id"])


async def count(ctx: AppContext, model: type[Any], org: int) -> int:
    async with ctx.db.session() as db:
        query = select(func.count()).select_from(model).where(model.organization_id == org)
        return int(await db.scalar(query) or 0)


async def test_a_bad_token_is_refused_with_chatwoots_reason_and_nothing_is_stored(
    client: httpx.AsyncClient, ctx: AppContext, tenant: Tenant, chatwoot: ChatwootSandbox
) -> None:
    resp = await client.post(
        "/api/v1/integrations", headers=tenant.headers, json=body_for(chatwoot, api_key="wrong")
    )
    assert resp.status_code == 422
    assert "Connection test failed" in problem_of(resp)["detail"]
    assert "Invalid Access Token" in problem_of(resp)["detail"]
    unknown_account = body_for(chatwoot)
    unknown_account["config"]["account_id"] = "999"
    resp = await client.post("/api/v1/integrations", headers=tenant.headers, json=unknown_account)
    assert resp.status_code == 422 and "999" in problem_of(resp)["detail"]
    assert await count(ctx, Integration, tenant.organization_id) == 0


async def test_an_integration_keeps_its_key_secret_and_gives_the_webhook_url(
    client: httpx.AsyncClient,
    ctx: AppContext,
    tenant: Tenant,
    agent: Tenant,
    chatwoot: ChatwootSandbox,
) -> None:
    refused = await client.post(
        "/api/v1/integrations", headers=agent.headers, json=body_for(chatwoot)
    )
    assert refused.status_code == 403
    created = await client.post(
        "/api/v1/integrations",
        headers=tenant.headers,
        json=body_for(chatwoot, inbox_id="create", webhook_secret="cw-secret"),
    )
    assert created.status_code == 201, created.text
    view = created.json()
    assert SANDBOX_TOKEN not in created.text and "cw-secret" not in created.text
    assert view["signed"] is True and view["connection"]["inboxes"] >= 0
    assert view["webhook_url"].startswith(
        f"{ctx.settings.public_url}/api/v1/integrations/{view['id']}/webhook?token="
    )
    inbox_id = view["config"]["inbox_id"]
    state = await chatwoot.do("GET", "/state")
    made = next(i for i in state["inboxes"] if i["id"] == inbox_id)
    assert made["channel_type"] == "Channel::Api"
    listed = await client.get("/api/v1/integrations", headers=agent.headers)
    assert [i["id"] for i in listed.json()] == [view["id"]]
    assert listed.json()[0]["webhook_url"] == view["webhook_url"]
    async with ctx.db.session() as db:
        stored = await db.get_one(Integration, view["id"])
        assert SANDBOX_TOKEN not in stored.credentials_encrypted
    again = await client.post(
        "/api/v1/integrations", headers=tenant.headers, json=body_for(chatwoot)
    )
    assert again.status_code == 409
    changed = await client.patch(
        f"/api/v1/integrations/{view['id']}", headers=tenant.headers, json={"api_key": "wrong"}
    )
    assert changed.status_code == 422 and "Invalid Access Token" in changed.text
    gone = await client.delete(f"/api/v1/integrations/{view['id']}", headers=tenant.headers)
    assert gone.status_code == 204
    assert await count(ctx, Integration, tenant.organization_id) == 0


async def test_contacts_pull_creates_then_skips_then_updates_what_changed(
    client: httpx.AsyncClient, ctx: AppContext, tenant: Tenant, chatwoot: ChatwootSandbox
) -> None:
    await chatwoot.do("POST", "/contacts/seed", json={"count": 1234})
    integration_id = await connect(client, tenant, chatwoot)
    await chatwoot.do("POST", "/throttle", json={"count": 4})  # 429s on the way

    first = await client.post(f"/api/v1/integrations/{integration_id}/sync", headers=tenant.headers)
    assert first.status_code == 200, first.text
    report = first.json()
    assert (report["created"], report["updated"], report["skipped"], report["errors"]) == (
        1234, 0, 0, 0,
    )  # fmt: skip
    assert report["status"] == "succeeded" and report["report"]["throttled"] == 4
    assert await count(ctx, Contact, tenant.organization_id) == 1234
    async with ctx.db.session() as db:
        contact = await db.scalar(select(Contact).where(Contact.name == "Seeded 7"))
        assert contact is not None and contact.phone_e164 == "+5511900000007"
        assert contact.email == "seeded7@example.com"
        assert contact.custom_fields["chatwoot_additional_attributes"] == {"city": "São Paulo"}
        refs_before = (await db.execute(select(ExternalRef.id, ExternalRef.updated_at))).all()

    second = (
        await client.post(f"/api/v1/integrations/{integration_id}/sync", headers=tenant.headers)
    ).json()
    assert (second["created"], second["updated"], second["skipped"]) == (0, 0, 1234)
    async with ctx.db.session() as db:
        refs_after = (await db.execute(select(ExternalRef.id, ExternalRef.updated_at))).all()
    assert sorted(refs_after) == sorted(refs_before), "an unchanged pull writes nothing"

    changed = await chatwoot.do("POST", "/contacts/touch", json={"count": 10})
    third = (
        await client.post(f"/api/v1/integrations/{integration_id}/sync", headers=tenant.headers)
    ).json()
    assert (third["created"], third["updated"], third["skipped"]) == (0, 10, 1224)
    async with ctx.db.session() as db:
        ref = await db.scalar(
            select(ExternalRef).where(ExternalRef.external_id == str(changed["changed"][0]))
        )
        assert ref is not None
        renamed = await db.get_one(Contact, ref.internal_id)
        assert renamed.name is not None and renamed.name.endswith("(changed)")

    runs = await client.get(
        "/api/v1/sync/runs", params={"integration_id": integration_id}, headers=tenant.headers
    )
    assert [r["created"] for r in runs.json()["data"]] == [0, 0, 1234]
    assert runs.json()["data"][0]["cursor"]["complete"] is True


async def test_a_chatwoot_contact_of_a_whatsapp_contact_becomes_one_person(
    client: httpx.AsyncClient, ctx: AppContext, tenant: Tenant, chatwoot: ChatwootSandbox
) -> None:
    async with ctx.db.session() as db:
        # as a WhatsApp message made it: the number before the ninth digit, folded to it
        db.add(Contact(organization_id=tenant.organization_id, phone_e164="+5511987654321",
                       name="Maria (WhatsApp)", custom_fields={"source": "whatsapp"}))  # fmt: skip
        await db.commit()
    await chatwoot.do(
        "POST",
        "/contacts",
        json={"fields": {"name": "Maria Souza", "phone_number": "+551187654321",
                         "email": "maria@example.com"}},
    )  # fmt: skip
    integration_id = await connect(client, tenant, chatwoot)
    report = (
        await client.post(f"/api/v1/integrations/{integration_id}/sync", headers=tenant.headers)
    ).json()
    assert (report["created"], report["report"]["linked"]) == (0, 1), report
    async with ctx.db.session() as db:
        people = (await db.scalars(select(Contact))).all()
    assert len(people) == 1
    assert people[0].name == "Maria (WhatsApp)" and people[0].email == "maria@example.com"
    assert people[0].custom_fields["source"] == "whatsapp"


async def test_pushing_a_contact_whose_phone_chatwoot_has_links_it(
    client: httpx.AsyncClient, ctx: AppContext, tenant: Tenant, chatwoot: ChatwootSandbox
) -> None:
    existing = await chatwoot.do(
        "POST",
        "/contacts",
        json={"fields": {"name": "Já no Chatwoot", "phone_number": "+5521999990000"}},
    )
    async with ctx.db.session() as db:
        db.add_all(
            [
                Contact(organization_id=tenant.organization_id, phone_e164="+5521999990000",
                        name="Same phone", custom_fields={}),
                Contact(organization_id=tenant.organization_id, phone_e164="+5531988887777",
                        name="New person", custom_fields={}),
                Contact(organization_id=tenant.organization_id, lid="123@lid", custom_fields={}),
            ]
        )  # fmt: skip
        await db.commit()
    await connect(client, tenant, chatwoot)
    before = (await chatwoot.do("GET", "/state"))["contacts"]
    pushed = await client.post(
        "/api/v1/sync/run",
        headers=tenant.headers,
        json={"provider": "chatwoot", "entityType": "contacts", "direction": "push"},
    )
    assert pushed.status_code == 200, pushed.text
    data = pushed.json()["data"]
    assert pushed.json()["success"] is True
    assert (data["created"], data["updated"], data["errors"]) == (1, 1, 0), data
    assert (await chatwoot.do("GET", "/state"))["contacts"] == before + 1, "no duplicate"
    async with ctx.db.session() as db:
        linked = await db.scalar(
            select(ExternalRef.external_id)
            .join(Contact, Contact.id == ExternalRef.internal_id)
            .where(Contact.phone_e164 == "+5521999990000")
        )
    assert linked == str(existing["id"])
    again = await client.post(
        "/api/v1/sync/run",
        headers=tenant.headers,
        json={"entity_type": "contacts", "direction": "push"},
    )
    assert (again.json()["data"]["created"], again.json()["data"]["updated"]) == (0, 0)


async def test_seed_routes_keep_working(
    client: httpx.AsyncClient, ctx: AppContext, tenant: Tenant, chatwoot: ChatwootSandbox
) -> None:
    await chatwoot.do("POST", "/contacts/seed", json={"count": 20})
    created = await client.post(
        "/api/v1/sync/connections",
        headers=tenant.headers,
        json={"provider": "chatwoot", "apiKey": SANDBOX_TOKEN,
              "config": {"accountId": str(SANDBOX_ACCOUNT_ID), "apiUrl": chatwoot.url}},
    )  # fmt: skip
    assert created.status_code == 201, created.text
    envelope = created.json()
    assert envelope["success"] is True and envelope["data"]["status"] == "connected"
    connection_id = envelope["data"]["id"]
    listed = (await client.get("/api/v1/sync/connections", headers=tenant.headers)).json()
    assert [c["id"] for c in listed["data"]] == [connection_id]
    synced = await client.post(
        f"/api/v1/sync/connections/{connection_id}/sync", headers=tenant.headers
    )
    data = synced.json()["data"]
    assert (data["synced"], data["created"], data["errors"], data["errorMessages"]) == (
        20,
        20,
        0,
        [],
    )
    run = await client.get(f"/api/v1/sync/runs/{data['runId']}", headers=tenant.headers)
    assert run.json()["data"]["kind"] == "chatwoot_contacts_pull"
    assert run.json()["data"]["cursor"]["last_page"] == 2
    bad = await client.post(
        "/api/v1/sync/connections",
        headers=tenant.headers,
        json={"apiKey": "nope", "config": {"accountId": "1", "apiUrl": chatwoot.url}},
    )
    assert bad.status_code in (409, 422)


async def test_a_run_cut_off_resumes_after_its_last_page(
    client: httpx.AsyncClient, ctx: AppContext, tenant: Tenant, chatwoot: ChatwootSandbox
) -> None:
    await chatwoot.do("POST", "/contacts/seed", json={"count": 300})
    integration_id = await connect(client, tenant, chatwoot)
    async with ctx.db.session() as db:
        # what a process killed after ten pages leaves behind
        db.add(SyncRun(organization_id=tenant.organization_id, integration_id=integration_id,
                       kind="chatwoot_contacts_pull", trigger="manual", status="running",
                       synced=150, created=150, updated=0, skipped=0, errors=0,
                       error_messages=[], report={}, cursor={"last_page": 10}))  # fmt: skip
        await db.commit()
    # The next start of zapsync shows it failed at once, before any new run.
    runtime = Runtime(ctx)
    await runtime.start()
    try:
        await runtime.settle()
    finally:
        await runtime.stop()
    runs = await client.get("/api/v1/sync/runs", headers=tenant.headers)
    (shown,) = runs.json()["data"]
    assert shown["status"] == "failed" and "interrupted" in shown["errorMessages"][-1]
    resumed = (
        await client.post(f"/api/v1/integrations/{integration_id}/sync", headers=tenant.headers)
    ).json()
    assert resumed["report"]["first_page"] == 11
    assert resumed["created"] == 150  # pages 11-20
    async with ctx.db.session() as db:
        old = await db.scalar(select(SyncRun).order_by(SyncRun.id).limit(1))
        assert old is not None and old.status == "failed"
        assert any("interrupted" in m for m in old.error_messages)


async def test_the_scheduled_pull_brings_missed_changes_for_the_admins_organization_only(
    client: httpx.AsyncClient,
    ctx: AppContext,
    tenant: Tenant,
    other_tenant: Tenant,
    chatwoot: ChatwootSandbox,
) -> None:
    await chatwoot.do("POST", "/contacts/seed", json={"count": 20})
    ours = await connect(client, tenant, chatwoot)
    theirs = await connect(client, other_tenant, chatwoot)

    resp = await client.post("/api/v1/jobs/chatwoot-pull/run", headers=tenant.headers)

    assert resp.status_code == 200, resp.text
    runs = resp.json()["runs"]
    assert [(r["integration_id"], r["kind"]) for r in runs] == [
        (ours, "contacts"), (ours, "conversations"), (ours, "messages"),
    ]  # fmt: skip
    run = runs[0]
    assert (run["created"], run["status"]) == (20, "succeeded")
    assert await count(ctx, Contact, tenant.organization_id) == 20
    assert await count(ctx, Contact, other_tenant.organization_id) == 0
    async with ctx.db.session() as db:
        recorded = (await db.scalars(select(SyncRun).where(SyncRun.integration_id == ours))).all()
        assert {r.trigger for r in recorded} == {"manual"}
        assert not (await db.scalars(select(SyncRun).where(SyncRun.integration_id == theirs))).all()

    await chatwoot.do("POST", "/contacts/touch", json={"count": 3})
    again = (await client.post("/api/v1/jobs/chatwoot-pull/run", headers=tenant.headers)).json()
    assert (again["runs"][0]["updated"], again["runs"][0]["skipped"]) == (3, 17)
