"""Requests no route can serve are refused at the edge with a problem-details answer and a
reason, never a 500, and write nothing: ids beyond what the key columns hold, bodies of another
content type, bodies nested deeper than any the API takes, credentials in a base_url."""

from __future__ import annotations

import base64
import json
import re

import httpx
import pytest
from fastapi import FastAPI

from tests.conftest import Tenant, problem_of
from tests.support.counts import table_counts
from tests.support.gateways import serving_dialect
from tests.support.inbox import customer_conversation
from tests.support.integrations import chatwoot_records
from tests.support.routes import fill
from zapsync.runtime.context import AppContext

BEYOND = [2**31, 2**63, 2**64]  # past PostgreSQL INTEGER, past 64 bits, past both


def id_routes(app: FastAPI) -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    for path, operations in app.openapi()["paths"].items():
        if re.search(r"\{\w*id\}", path):
            found.extend((method.upper(), path) for method in operations)
    return found


def json_body_routes(app: FastAPI) -> list[tuple[str, str]]:
    found = []
    for path, operations in app.openapi()["paths"].items():
        for method, operation in operations.items():
            content = operation.get("requestBody", {}).get("content", {})
            if "application/json" in content:
                found.append((method.upper(), path))
    return found


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


@pytest.mark.parametrize("value", BEYOND)
async def test_ids_beyond_the_key_columns_are_422_on_every_route(
    app: FastAPI, client: httpx.AsyncClient, ctx: AppContext, tenant: Tenant, value: int
) -> None:
    # Messages' ids are 64-bit: 2**31 is one of theirs (404), only past 64 bits is refused.
    routes = [r for r in id_routes(app) if value >= 2**63 or "{message_id}" not in r[1]]
    assert len(routes) > 15
    before = await table_counts(ctx)
    for method, path in routes:
        resp = await client.request(method, fill(path, value), headers=tenant.headers, json={})
        assert resp.status_code == 422, f"{method} {path} -> {resp.status_code} {resp.text}"
        assert "less than or equal to" in problem_of(resp)["detail"]
    queries = [
        f"/api/v1/conversations?session_id={value}",
        f"/api/v1/conversations/1/messages?before={2**63 if value < 2**63 else value}",
    ]
    for url in queries:
        resp = await client.get(url, headers=tenant.headers)
        # The conversation is checked first only when the query is sound.
        assert resp.status_code == 422, f"{url} -> {resp.status_code} {resp.text}"
        problem_of(resp)
    assert await table_counts(ctx) == before


async def test_the_largest_ids_are_answered_404(client: httpx.AsyncClient, tenant: Tenant) -> None:
    largest = 2**31 - 1
    for url in [
        f"/api/v1/sessions/{largest}",
        f"/api/v1/conversations/{largest}",
        f"/api/v1/contacts/{largest}",
    ]:
        resp = await client.get(url, headers=tenant.headers)
        assert resp.status_code == 404, f"{url} -> {resp.status_code}"
    listed = await client.get(f"/api/v1/conversations?session_id={largest}", headers=tenant.headers)
    assert listed.status_code == 200 and listed.json()["items"] == []


async def test_a_cursor_naming_an_id_beyond_the_columns_is_422(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    for key, row_id in [(None, 2**63), ("2025-01-01T00:00:00+00:00", 2**40)]:
        cursor = base64.urlsafe_b64encode(json.dumps([key, row_id]).encode()).decode()
        for listing in ("/api/v1/conversations", "/api/v1/contacts"):
            resp = await client.get(listing, params={"cursor": cursor}, headers=tenant.headers)
            assert resp.status_code == 422, f"{listing} -> {resp.status_code}"
            assert "cursor" in problem_of(resp)["detail"]


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded", "application/xml"]
)
async def test_a_json_route_given_another_content_type_is_415(
    app: FastAPI,
    client: httpx.AsyncClient,
    ctx: AppContext,
    tenant: Tenant,
    content_type: str,
) -> None:
    routes = json_body_routes(app)
    assert ("POST", "/api/v1/sessions") in routes
    ids: dict[str, object] = {**await customer_conversation(app, client, tenant)}
    ids["integration_id"], ids["run_id"] = await chatwoot_records(app, tenant)
    before = await table_counts(ctx)
    for method, path in routes:
        resp = await client.request(
            method,
            path.format(**{p: ids[p] for p in re.findall(r"\{(\w+)\}", path)}),
            headers={**tenant.headers, "content-type": content_type},
            content=b"name=x&provider=sandbox&\xff\xfe",
        )
        assert resp.status_code == 415, f"{method} {path} -> {resp.status_code} {resp.text}"
        assert "application/json" in problem_of(resp)["detail"]
    assert await table_counts(ctx) == before


async def test_a_deeply_nested_body_is_422_with_the_reason(
    app: FastAPI, client: httpx.AsyncClient, ctx: AppContext, tenant: Tenant
) -> None:
    conversation = (await customer_conversation(app, client, tenant))["conversation_id"]
    bodies = {
        "/api/v1/sessions": lambda inner: (
            f'{{"name": "x", "provider": "sandbox", "config": {{"a": {inner}}}}}'
        ),
        f"/api/v1/conversations/{conversation}/messages": lambda inner: (
            f'{{"type": "text", "content": {inner}}}'
        ),
    }
    before = await table_counts(ctx)
    for url, body in bodies.items():
        for depth in (40, 100_000):  # past the cap; past what json.loads can recurse
            resp = await client.post(
                url,
                headers={**tenant.headers, "content-type": "application/json"},
                content=body(nested(depth)).encode(),
            )
            assert resp.status_code == 422, f"{url} at {depth} -> {resp.status_code} {resp.text}"
            assert "nests deeper than" in problem_of(resp)["detail"]
    patch = await client.patch(
        f"/api/v1/conversations/{conversation}",
        headers={**tenant.headers, "content-type": "application/json"},
        content=nested(100_000).encode(),
    )
    assert patch.status_code == 422 and "nests deeper" in problem_of(patch)["detail"]
    assert await table_counts(ctx) == before


async def test_credentials_in_a_base_url_are_422_and_never_sent(
    client: httpx.AsyncClient, ctx: AppContext, tenant: Tenant
) -> None:
    with serving_dialect("evolution") as base_url:
        authority = base_url.removeprefix("http://")
        before = await table_counts(ctx)
        for userinfo in ("user:pw@", "user@", ":pw@"):
            resp = await client.post(
                "/api/v1/sessions",
                headers=tenant.headers,
                json={
                    "name": "x",
                    "provider": "evolution",
                    "config": {
                        "base_url": f"http://{userinfo}{authority}",
                        "api_key": "sandbox-global-key",
                        "instance": "vendas",
                    },
                },
            )
            assert resp.status_code == 422, resp.text
            detail = problem_of(resp)["detail"]
            assert "credentials in base_url are not allowed" in detail
            assert "pw" not in resp.text
        assert await table_counts(ctx) == before
        async with httpx.AsyncClient(base_url=base_url, timeout=10) as gateway:
            instances = (await gateway.get("/_sandbox/instances")).json()
        assert instances == [], "nothing reached the gateway"
