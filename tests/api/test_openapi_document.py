"""The OpenAPI document is enough for a generated client: every operation declares the shape
of its answer, every error is documented as problem details, and `/docs` works offline (its
Swagger UI comes from the package, not a CDN)."""

from __future__ import annotations

import re
from typing import Any

import httpx
from fastapi import FastAPI

from tests.conftest import Tenant
from tests.support.gateways import serving_dialect
from tests.support.inbox import customer_conversation

PROBLEM = "application/problem+json"
PROBLEM_REF = "#/components/schemas/ProblemDetails"


def operations(app: FastAPI) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method.upper(), path, operation)
        for path, ops in app.openapi()["paths"].items()
        for method, operation in ops.items()
    ]


def resolve(doc: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = doc["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return schema


def test_every_json_answer_declares_its_fields(app: FastAPI) -> None:
    doc = app.openapi()
    for method, path, operation in operations(app):
        ok = {s: r for s, r in operation["responses"].items() if s.startswith("2")}
        assert ok, f"{method} {path} documents no success"
        for status, response in ok.items():
            content = response.get("content", {})
            if "application/json" not in content:
                continue  # a file (media, QR images)
            schema = resolve(doc, content["application/json"]["schema"])
            if schema.get("type") == "array":
                schema = resolve(doc, schema["items"])
            assert schema.get("properties") or schema.get("description"), (
                f"{method} {path} {status} answers an undeclared object: {schema}"
            )


def test_every_error_is_documented_as_problem_details(app: FastAPI) -> None:
    doc = app.openapi()
    problem = doc["components"]["schemas"]["ProblemDetails"]
    assert {"type", "title", "status", "detail"} <= set(problem["properties"])
    assert "HTTPValidationError" not in doc["components"]["schemas"]
    for method, path, operation in operations(app):
        responses = operation["responses"]
        role = operation.get("x-zapsync-role")
        expected = {"401"} if role else set()
        if role == "admin":
            expected.add("403")
        if re.search(r"\{\w+\}", path):
            expected |= {"404", "422"}
        assert expected <= set(responses), f"{method} {path} leaves out {expected - set(responses)}"
        for status, response in responses.items():
            if int(status) < 400 or path == "/health/ready":
                continue
            assert response["content"] == {PROBLEM: {"schema": {"$ref": PROBLEM_REF}}}, (
                f"{method} {path} {status}"
            )


async def test_docs_load_only_local_assets(client: httpx.AsyncClient) -> None:
    await assert_docs_offline(client)


async def test_the_sandbox_servers_docs_load_only_local_assets() -> None:
    with serving_dialect("waha") as base_url:
        async with httpx.AsyncClient(base_url=base_url, timeout=10) as client:
            await assert_docs_offline(client)


async def assert_docs_offline(client: httpx.AsyncClient) -> None:
    page = await client.get("/docs")
    assert page.status_code == 200
    assert "text/html" in page.headers["content-type"]
    assets = re.findall(r"""(?:src|href)=["']([^"']+)["']""", page.text)
    urls = re.findall(r"""url: ?["']([^"']+)["']""", page.text)
    assert assets and urls
    for link in assets + urls:
        assert link.startswith("/") and not link.startswith("//"), f"{link} is not local"
    assert not re.search(r"https?://", page.text), "no absolute URL: nothing from the internet"
    for link in assets + urls:
        resp = await client.get(link)
        assert resp.status_code == 200, link
        assert len(resp.content) > 100, link
    types = {
        link.rsplit(".", 1)[-1]: (await client.get(link)).headers["content-type"] for link in assets
    }
    assert types["js"].startswith(("application/javascript", "text/javascript"))
    assert types["css"].startswith("text/css")


async def test_answers_keep_exactly_the_keys_they_had(
    app: FastAPI, client: httpx.AsyncClient, tenant: Tenant
) -> None:
    """Response models drop internal columns but add nothing: a key a view leaves out (a
    contact's conversations embed no contact) stays out, and none reads `null` instead."""
    ids = await customer_conversation(app, client, tenant)
    contact = await client.get(f"/api/v1/contacts/{ids['contact_id']}", headers=tenant.headers)
    assert contact.status_code == 200
    (conversation,) = contact.json()["conversations"]
    assert "contact" not in conversation
    listed = (await client.get("/api/v1/conversations", headers=tenant.headers)).json()
    assert set(listed["items"][0]) == set(conversation) | {"contact"}
    session = await client.get(f"/api/v1/sessions/{ids['session_id']}", headers=tenant.headers)
    assert not {"config_encrypted", "webhook_secret", "gateway_key"} & set(session.json())


BINARY = {"type": "string", "format": "binary"}


def test_every_success_answer_has_a_schema(app: FastAPI) -> None:
    """A generated client knows what every route answers: each 2xx has a content type and a
    schema for it (a 204 has no body; files, QR images and metrics are binary or text)."""
    missing = []
    for method, path, operation in operations(app):
        for status, response in operation["responses"].items():
            if not status.startswith("2") or status == "204":
                continue
            content = response.get("content") or {}
            if not content:
                missing.append(f"{method} {path} {status}: no content type")
            for media_type, body in content.items():
                if not body.get("schema"):
                    missing.append(f"{method} {path} {status} {media_type}: no schema")
                elif media_type != "application/json" and "json" not in media_type:
                    assert body["schema"] == BINARY or body["schema"].get("type") == "string", (
                        f"{method} {path} {status} {media_type}: {body['schema']}"
                    )
    assert not missing, "\n".join(missing)


def test_a_no_content_answer_declares_no_body(app: FastAPI) -> None:
    for method, path, operation in operations(app):
        if "204" in operation["responses"]:
            assert not operation["responses"]["204"].get("content"), f"{method} {path}"
