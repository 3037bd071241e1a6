from __future__ import annotations

import httpx

from tests.conftest import problem_of
from zapsync.runtime.context import AppContext
from zapsync.store.migrate import head_revision


async def test_health_answers_without_a_token(client: httpx.AsyncClient) -> None:
    resp = await client.get("/health")
    assert resp.status_code == 200
    assert resp.json()["status"] == "ok"
    assert resp.headers["x-request-id"]


async def test_ready_reports_database_and_migration_head(client: httpx.AsyncClient) -> None:
    resp = await client.get("/health/ready")
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["status"] == "ready"
    assert body["checks"]["migrations"]["current"] == head_revision()


async def test_ready_is_503_when_migrations_are_behind(
    client: httpx.AsyncClient, ctx: AppContext
) -> None:
    from sqlalchemy import text

    async with ctx.db.session() as db:
        await db.execute(text("UPDATE alembic_version SET version_num = 'old'"))
        await db.commit()
    try:
        resp = await client.get("/health/ready")
        assert resp.status_code == 503
        assert "zapsync db upgrade" in resp.json()["checks"]["reason"]
    finally:
        async with ctx.db.session() as db:
            await db.execute(
                text("UPDATE alembic_version SET version_num = :v"), {"v": head_revision()}
            )
            await db.commit()


async def test_request_id_is_echoed_when_given(client: httpx.AsyncClient) -> None:
    resp = await client.get("/health", headers={"X-Request-ID": "abc123"})
    assert resp.headers["x-request-id"] == "abc123"


async def test_unknown_route_is_a_problem_document(client: httpx.AsyncClient) -> None:
    resp = await client.get("/api/v1/nope")
    assert resp.status_code == 404
    problem_of(resp)
