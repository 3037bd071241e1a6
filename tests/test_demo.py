"""`make run`'s demo: an organization, a token kept across restarts, a sandbox session that
pairs after a QR scan and then shows its phone's conversations."""

from __future__ import annotations

import httpx
import pytest
from asgi_lifespan import LifespanManager

from tests.support.inbox import settle
from tests.support.servers import free_port
from zapsync.api.app import create_app
from zapsync.settings import Settings


async def test_demo_loads_once_and_its_session_pairs_after_a_scan(settings: Settings) -> None:
    demo_settings = settings.model_copy(update={"demo": True, "demo_chatwoot_port": free_port()})
    tokens = []
    shown: list[list[tuple[str, str, int]]] = []
    for _ in range(2):  # a restart reuses the token and does not add a second session
        app = create_app(demo_settings)
        async with LifespanManager(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                token = (settings.data_dir / "demo-token.txt").read_text().strip()
                tokens.append(token)
                headers = {"Authorization": f"Bearer {token}"}
                sessions = (await client.get("/api/v1/sessions", headers=headers)).json()
                assert [s["provider"] for s in sessions] == ["sandbox"]
                sid = sessions[0]["id"]
                qr = await client.get(f"/api/v1/sessions/{sid}/qr", headers=headers)
                assert qr.status_code == 200 and qr.json()["code"]
                scan = await client.post(f"/api/v1/sandbox/sessions/{sid}/scan", headers=headers)
                assert scan.status_code == 200
                await settle(app)  # pairing starts the import
                session = (await client.get(f"/api/v1/sessions/{sid}", headers=headers)).json()
                assert session["status"] == "connected"
                listed = (await client.get("/api/v1/conversations", headers=headers)).json()
                shown.append(
                    [
                        (c["contact"]["name"], c["contact"]["phone_e164"], c["unread_count"])
                        for c in listed["items"]
                    ]
                )
    assert tokens[0] == tokens[1]
    # Newest first, the old 8-digit mobile spelling read as the 9-digit number, unread what
    # came after the shop's last reply as on the phone; the second start imports the phone
    # again and nothing is doubled, not even the unread counts.
    assert (
        shown[0]
        == shown[1]
        == [
            ("Fernanda Rocha", "+5585988887777", 1),
            ("Carlos Mendes", "+5541991112222", 1),
            ("Ana Lima", "+5531987651234", 1),
            ("João Pereira", "+5521998765432", 1),
            ("Maria Souza", "+5511987654321", 0),
        ]
    )
    assert listed["items"][0]["last_message_preview"] == "Vocês abrem no feriado?"


async def test_the_demo_user_logs_in_with_the_password_kept_in_the_data_dir(
    settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    demo_settings = settings.model_copy(update={"demo": True, "demo_chatwoot_port": free_port()})
    password_file = settings.data_dir / "demo-password.txt"
    passwords = []
    for _ in range(2):  # a restart keeps the password
        app = create_app(demo_settings)
        async with LifespanManager(app):
            password = password_file.read_text().strip()
            passwords.append(password)
            assert password_file.stat().st_mode & 0o777 == 0o600
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                login = await client.post(
                    "/api/v1/auth/login",
                    json={"email": "demo@zapsync.local", "password": password},
                )
                assert login.status_code == 200, login.text
                assert login.json()["organization"]["name"] == "Demo"
        printed = capsys.readouterr().out
        assert "demo@zapsync.local" in printed and password in printed
    assert passwords[0] == passwords[1] and len(passwords[0]) >= 12
