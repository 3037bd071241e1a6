"""Fixtures: a migrated database per backend (SQLite and PostgreSQL), the app over ASGI,
and organizations with tokens."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI

from tests.support.databases import backends, migrated_database, wipe
from tests.support.job_worker import outbox_jobs_worked
from tests.support.receiver import Receiver, receiving
from zapsync.api.app import create_app
from zapsync.runtime.context import AppContext
from zapsync.services import accounts
from zapsync.settings import Settings


@pytest.fixture(scope="session", params=backends())
def database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    with migrated_database(request.param, tmp_path_factory.mktemp(request.param)) as url:
        yield url


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    wipe(database_url)
    return Settings(
        database_url=database_url,
        ZAPSYNC_SECRET_KEY="test-secret-key",
        CRON_SECRET="test-cron-secret",
        ZAPSYNC_DATA_DIR=tmp_path,
        ZAPSYNC_SCHEDULER=False,
        ZAPSYNC_HEAL_BASE_DELAY=0,
        ZAPSYNC_GATEWAY_TIMEOUT=2.0,
        # Where sandbox gateways post webhooks: nowhere (the discard port), never into a
        # zapsync the developer runs on the default :8000 beside the suite.
        ZAPSYNC_PUBLIC_URL="http://127.0.0.1:9",
        # `ZAPSYNC_TEST_JOBS=procrastinate` runs a suite in the scaled-out mode (PostgreSQL).
        ZAPSYNC_JOBS=_jobs_mode(database_url),
    )


def _jobs_mode(database_url: str) -> str:
    wanted = os.environ.get("ZAPSYNC_TEST_JOBS", "embedded")
    return wanted if database_url.startswith("postgresql") else "embedded"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A real HTTP receiver for a sandbox gateway's webhooks, at `{url}/hook`."""
    with receiving("/hook") as rec:
        yield rec


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[FastAPI]:
    application = create_app(settings)
    async with LifespanManager(application), outbox_jobs_worked(application):
        yield application


@pytest.fixture
def ctx(app: FastAPI) -> AppContext:
    context: AppContext = app.state.ctx
    return context


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://zapsync.test") as c:
        yield c


@dataclass
class Tenant:
    organization_id: int
    user_id: int
    token: str
    token_id: int

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


async def make_tenant(ctx: AppContext, org: str, email: str, role: str = "admin") -> Tenant:
    async with ctx.db.session() as db:
        organization = await accounts.create_organization(db, org)
        user = await accounts.create_user(db, organization, email, role)
        token, plain = await accounts.create_token(db, user)
        await db.commit()
        return Tenant(organization.id, user.id, plain, token.id)


@pytest.fixture
async def tenant(ctx: AppContext) -> Tenant:
    return await make_tenant(ctx, "Acme", "admin@acme.test", "admin")


@pytest.fixture
async def other_tenant(ctx: AppContext) -> Tenant:
    return await make_tenant(ctx, "Globex", "admin@globex.test", "admin")


@pytest.fixture
async def agent(ctx: AppContext, tenant: Tenant) -> Tenant:
    async with ctx.db.session() as db:
        org = await db.get_one(accounts.Organization, tenant.organization_id)
        user = await accounts.create_user(db, org, "agent@acme.test", "agent")
        token, plain = await accounts.create_token(db, user)
        await db.commit()
        return Tenant(tenant.organization_id, user.id, plain, token.id)


def problem_of(resp: httpx.Response) -> dict[str, Any]:
    assert resp.headers["content-type"].startswith("application/problem+json"), resp.text
    body: dict[str, Any] = resp.json()
    assert body["status"] == resp.status_code and body["detail"]
    return body
