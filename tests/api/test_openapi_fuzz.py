"""Schemathesis over the whole OpenAPI document, against a real server: every operation, with
an admin token, an agent token and none, answers no 5xx, no status it does not document and no
body that contradicts its declared schema.

Bounded and repeatable: a few dozen derandomized examples per operation and token. Generated
ids mostly name nothing, so half the cases of an operation with ids use the ids of a real
sandbox session, its conversation and contact (and a real job's name). The only rewrite of
generated data: a session for a real gateway is pointed at a closed loopback port, so no
generated URL is ever called. Nothing is excluded."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import Case, GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.conftest import Tenant, make_tenant
from tests.support.servers import serve_in_thread
from zapsync.api.app import create_app
from zapsync.runtime.context import AppContext
from zapsync.services import accounts
from zapsync.settings import Settings

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
EXAMPLES = {"admin": 12, "agent": 6, "none": 2}  # per generation mode (positive, negative)
GATEWAYS = ("evolution", "waha", "megaapi")
CLOSED_PORT = "http://127.0.0.1:9"


async def _tokens(settings: Settings) -> dict[str, Tenant]:
    ctx = AppContext.create(settings)
    try:
        admin = await make_tenant(ctx, "Acme", "admin@acme.test", "admin")
        async with ctx.db.session() as db:
            org = await db.get_one(accounts.Organization, admin.organization_id)
            user = await accounts.create_user(db, org, "agent@acme.test", "agent")
            token, plain = await accounts.create_token(db, user)
            await db.commit()
        agent = Tenant(admin.organization_id, user.id, plain, token.id)
        return {"admin": admin, "agent": agent}
    finally:
        await ctx.aclose()


def _seed(url: str, admin: Tenant) -> dict[str, int]:
    """A paired sandbox session with one conversation a customer started."""
    with httpx.Client(base_url=url, headers=admin.headers, timeout=10) as http:
        created = http.post("/api/v1/sessions", json={"name": "fuzz", "provider": "sandbox"})
        assert created.status_code == 201, created.text
        sid = created.json()["id"]
        assert http.post(f"/api/v1/sandbox/sessions/{sid}/scan").is_success
        inbound = http.post(f"/api/v1/sandbox/sessions/{sid}/inbound", json={"body": "oi"})
        assert inbound.is_success, inbound.text
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            items = http.get("/api/v1/conversations").json()["items"]
            if items:
                return {
                    "session_id": sid,
                    "conversation_id": items[0]["id"],
                    "contact_id": items[0]["contact_id"],
                }
            time.sleep(0.02)
    raise AssertionError("the customer's conversation never appeared")


@pytest.fixture
def live(settings: Settings) -> Iterator[tuple[str, dict[str, Tenant], dict[str, int]]]:
    tenants = asyncio.run(_tokens(settings))
    # A log line per request would cost more than the request (and no test reads them).
    quiet = settings.model_copy(update={"log_level": "WARNING"})
    with serve_in_thread(create_app(quiet)) as url:
        yield url, tenants, _seed(url, tenants["admin"])


# Framing headers the HTTP server reads before zapsync does: a drawn `content-length: +0.0`
# is refused by uvicorn's parser (400, "Invalid HTTP request received"), not by the app.
FRAMING = ("content-length", "transfer-encoding", "host", "connection", "expect", "upgrade")


def _no_outside_calls(case: Case) -> None:
    """Sessions for a real gateway and Chatwoot connections talk to a closed loopback port,
    whatever URL was drawn (a host on the internet answers, or not, at its own pace); the
    request's framing is left to the client."""
    for key in [k for k in case.headers or {} if k.lower() in FRAMING]:
        del case.headers[key]
    body = case.body
    if not isinstance(body, dict):
        return
    config = body.get("config")
    if case.path.startswith("/api/v1/integrations") and isinstance(config, dict):
        config["api_url"] = CLOSED_PORT
        return
    if case.path == "/api/v1/sync/connections" and isinstance(config, dict):
        config.pop("api_url", None)
        config["apiUrl"] = CLOSED_PORT
        return
    if case.method != "POST" or case.path != "/api/v1/sessions":
        return
    config = body.get("config")
    if body.get("provider") in GATEWAYS and isinstance(config, dict):
        config["base_url"] = CLOSED_PORT


def _run(operation: Any, strategy: Any, examples: int, call: Callable[[Case], None]) -> None:
    @settings(
        max_examples=examples,
        derandomize=True,
        deadline=None,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=strategy)
    def test(case: Case) -> None:
        call(case)

    test()


def test_the_openapi_document_holds_for_every_operation_and_token(
    live: tuple[str, dict[str, Tenant], dict[str, int]],
) -> None:
    url, tenants, ids = live
    schema = schemathesis.openapi.from_dict(httpx.get(f"{url}/openapi.json").json())
    results = list(schema.get_all_operations())
    assert all(isinstance(r, Ok) for r in results), "the document has no invalid operation"
    operations = [r.ok() for r in results if isinstance(r, Ok)]
    assert len(operations) > 25
    failures: list[str] = []
    headers = {name: t.headers for name, t in tenants.items()} | {"none": {}}
    for operation in operations:
        names = [p.name for p in operation.path_parameters]
        # Negative data needs something to get wrong: a parameter or a body.
        takes_input = any(True for _ in operation.iter_parameters()) or bool(operation.body)
        modes = [GenerationMode.POSITIVE] + ([GenerationMode.NEGATIVE] if takes_input else [])
        known: dict[str, object] = {**ids}
        if operation.path.startswith(("/api/v1/jobs/", "/api/v1/cron/")):
            known["name"] = "status-sync"  # a real job, so its report is checked too
        real = {p: known[p] for p in names if p in known} or None
        for who, auth in headers.items():

            def call(case: Case, auth: dict[str, str] = auth) -> None:
                _no_outside_calls(case)
                for key in [k for k in case.headers if k.lower() == "authorization"]:
                    del case.headers[key]
                case.headers.update(auth)
                case.call_and_validate(base_url=url, checks=CHECKS, timeout=30)

            for mode in modes:
                strategy = operation.as_strategy(generation_mode=mode)
                if real is not None:
                    strategy = st.one_of(
                        strategy, operation.as_strategy(generation_mode=mode, path_parameters=real)
                    )
                try:
                    _run(operation, strategy, EXAMPLES[who], call)
                except BaseException as exc:  # every operation is tried; all failures reported
                    if not isinstance(exc, Exception | BaseExceptionGroup):
                        raise
                    failures.append(f"{operation.label} as {who} ({mode.value}): {exc}")
    assert not failures, "\n\n".join(failures)
