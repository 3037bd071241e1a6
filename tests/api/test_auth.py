"""Every protected route refuses a missing, wrong or revoked token with 401 and writes nothing."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI

from tests.conftest import Tenant, problem_of
from tests.support.counts import table_counts
from tests.support.routes import fill, protected_routes
from zapsync.runtime.context import AppContext
from zapsync.services import accounts


async def _assert_all_refused(
    app: FastAPI, client: httpx.AsyncClient, ctx: AppContext, headers: dict[str, str]
) -> None:
    routes = protected_routes(app)
    assert routes, "the app has protected routes"
    before = await table_counts(ctx)
    for method, path in routes:
        resp = await client.request(method, fill(path, 1), headers=headers, json={})
        assert resp.status_code == 401, f"{method} {path} -> {resp.status_code}"
        problem_of(resp)
        assert resp.headers["www-authenticate"] == "Bearer"
    assert await table_counts(ctx) == before


async def test_no_token_is_401_everywhere(
    app: FastAPI, client: httpx.AsyncClient, ctx: AppContext, tenant: Tenant
) -> None:
    await _assert_all_refused(app, client, ctx, {})


@pytest.mark.parametrize("value", ["Bearer zs_wrong", "Bearer ", "Basic dXNlcjpwdw==", "zs_raw"])
async def test_wrong_token_is_401_everywhere(
    app: FastAPI, client: httpx.AsyncClient, ctx: AppContext, tenant: Tenant, value: str
) -> None:
    await _assert_all_refused(app, client, ctx, {"Authorization": value})


async def test_revoked_token_is_401_everywhere(
    app: FastAPI, client: httpx.AsyncClient, ctx: AppContext, tenant: Tenant
) -> None:
    assert (await client.get("/api/v1/me", headers=tenant.headers)).status_code == 200
    async with ctx.db.session() as db:
        await accounts.revoke_token(db, tenant.token_id)
        await db.commit()
    await _assert_all_refused(app, client, ctx, tenant.headers)
    resp = await client.get("/api/v1/me", headers=tenant.headers)
    assert "revoked" in problem_of(resp)["detail"]


async def test_token_is_scoped_to_its_organization(
    client: httpx.AsyncClient, tenant: Tenant, other_tenant: Tenant
) -> None:
    mine = (await client.get("/api/v1/me", headers=tenant.headers)).json()
    theirs = (await client.get("/api/v1/me", headers=other_tenant.headers)).json()
    assert mine["organization"] == "Acme"
    assert theirs["organization"] == "Globex"
