"""`make run`'s demo: an organization, a token kept across restarts, a sandbox session that
pairs after a QR scan."""

from __future__ import annotations

import httpx
from asgi_lifespan import LifespanManager

from zapsync.api.app import create_app
from zapsync.settings import Settings


async def test_demo_loads_once_and_its_session_pairs_after_a_scan(settings: Settings) -> None:
    demo_settings = settings.model_copy(update={"demo": True})
    tokens = []
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
                await app.state.sandbox_pump.drain()
                session = (await client.get(f"/api/v1/sessions/{sid}", headers=headers)).json()
                assert session["status"] == "connected"
    assert tokens[0] == tokens[1]
