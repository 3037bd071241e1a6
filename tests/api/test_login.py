"""The web login: an e-mail and a password give a token that works for the API and the
socket; wrong credentials get a reason, repeated failures a wait, and logout ends the token
and its sockets."""

from __future__ import annotations

import httpx
import pytest

from tests.api.test_realtime import server, socket
from tests.api.test_realtime_revocation import closed
from tests.conftest import Tenant, problem_of
from zapsync.runtime.context import AppContext
from zapsync.services import accounts, logins
from zapsync.settings import Settings

PASSWORD = "correct horse battery"


@pytest.fixture
async def with_password(ctx: AppContext, tenant: Tenant) -> Tenant:
    async with ctx.db.session() as db:
        user = await db.get_one(accounts.User, tenant.user_id)
        await logins.set_password(db, user, PASSWORD)
        await db.commit()
    return tenant


async def test_the_right_password_gives_a_token_for_the_api(
    client: httpx.AsyncClient, with_password: Tenant
) -> None:
    resp = await client.post(
        "/api/v1/auth/login", json={"email": " Admin@Acme.test ", "password": PASSWORD}
    )
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["user"] == {
        "id": with_password.user_id,
        "email": "admin@acme.test",
        "name": None,
        "role": "admin",
    }
    assert body["organization"] == {"id": with_password.organization_id, "name": "Acme"}
    me = await client.get("/api/v1/me", headers={"Authorization": f"Bearer {body['token']}"})
    assert me.status_code == 200 and me.json()["email"] == "admin@acme.test"


@pytest.mark.parametrize(
    ("email", "password"),
    [("admin@acme.test", "wrong password"), ("nobody@acme.test", PASSWORD)],
)
async def test_a_wrong_password_or_unknown_email_is_refused_alike(
    client: httpx.AsyncClient, with_password: Tenant, email: str, password: str
) -> None:
    resp = await client.post("/api/v1/auth/login", json={"email": email, "password": password})
    assert resp.status_code == 401
    assert problem_of(resp)["detail"] == "the e-mail or the password is wrong"


async def test_a_user_without_a_password_cannot_log_in(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    resp = await client.post(
        "/api/v1/auth/login", json={"email": "admin@acme.test", "password": "anything at all"}
    )
    assert resp.status_code == 401


async def test_repeated_failures_are_refused_with_a_wait_even_with_the_right_password(
    settings: Settings, with_password: Tenant, client: httpx.AsyncClient
) -> None:
    limit = int(settings.login_failure_limit.split("/")[0])
    for _ in range(limit):
        wrong = await client.post(
            "/api/v1/auth/login", json={"email": "admin@acme.test", "password": "guess"}
        )
        assert wrong.status_code == 401
    blocked = await client.post(
        "/api/v1/auth/login", json={"email": "admin@acme.test", "password": PASSWORD}
    )
    assert blocked.status_code == 429
    assert int(blocked.headers["Retry-After"]) >= 1
    assert "too many failed logins" in problem_of(blocked)["detail"]


async def test_failures_from_one_address_block_other_emails_from_it(
    settings: Settings, with_password: Tenant, client: httpx.AsyncClient
) -> None:
    limit = int(settings.login_failure_limit.split("/")[0])
    for n in range(limit):
        await client.post(
            "/api/v1/auth/login", json={"email": f"guess{n}@acme.test", "password": "guess"}
        )
    blocked = await client.post(
        "/api/v1/auth/login", json={"email": "admin@acme.test", "password": PASSWORD}
    )
    assert blocked.status_code == 429


async def test_logout_ends_the_token_and_closes_its_socket(
    settings: Settings, with_password: Tenant
) -> None:
    slow_recheck = settings.model_copy(update={"socket_recheck_seconds": 3600.0})
    async with server(slow_recheck) as url, httpx.AsyncClient(base_url=url) as http:
        login = await http.post(
            "/api/v1/auth/login", json={"email": "admin@acme.test", "password": PASSWORD}
        )
        token = login.json()["token"]
        headers = {"Authorization": f"Bearer {token}"}
        async with socket(url, auth={"token": token}) as (sock, _):
            out = await http.post("/api/v1/auth/logout", headers=headers)
            assert out.status_code == 204
            assert await closed(sock, timeout=2.0) < 2.0
        assert (await http.get("/api/v1/me", headers=headers)).status_code == 401
        # The admin's other tokens (the CLI's) still work.
        assert (await http.get("/api/v1/me", headers=with_password.headers)).status_code == 200
