"""`make run`'s demo has a Chatwoot: the sandbox's Chatwoot dialect served beside the API, and
an integration bridged to the demo phone. Once the phone is paired its chats are mirrored into
the Chatwoot inbox, and an agent's reply there reaches the phone; a restart (a new, empty
sandbox Chatwoot) mirrors the history again and doubles nothing on the zapsync side."""

from __future__ import annotations

from typing import Any

import httpx

from tests.support.inbox import eventually
from tests.support.servers import free_port, serving_zapsync
from zapsync.settings import Settings


async def test_the_demo_phone_is_bridged_to_the_demo_chatwoot(settings: Settings) -> None:
    demo = settings.model_copy(
        update={"demo": True, "chatwoot_backoff_base": 0.002, "demo_chatwoot_port": free_port()}
    )
    for start in range(2):
        with serving_zapsync(demo) as url:
            token = (settings.data_dir / "demo-token.txt").read_text().strip()
            headers = {"Authorization": f"Bearer {token}"}
            async with httpx.AsyncClient(base_url=url, headers=headers, timeout=30) as api:
                integrations = (await api.get("/api/v1/integrations")).json()
                assert len(integrations) == 1
                chatwoot_url = f"http://127.0.0.1:{demo.demo_chatwoot_port}"
                assert integrations[0]["config"]["api_url"] == chatwoot_url
                control = f"{chatwoot_url}/_sandbox/chatwoot"

                async def mirrored(control: str = control) -> dict[str, Any]:
                    return dict((await api.get(f"{control}/state")).json())

                (session,) = (await api.get("/api/v1/sessions")).json()
                assert integrations[0]["config"]["session_ids"] == [session["id"]]
                scan = await api.post(f"/api/v1/sandbox/sessions/{session['id']}/scan")
                assert scan.status_code == 200, scan.text

                # the demo phone's five one-to-one chats, each a Chatwoot conversation
                state = await eventually(mirrored, lambda s: s["conversations"] >= 5)
                assert state["conversations"] == 5, state
                reply = await api.post(
                    f"{control}/conversations/1/agent_messages", json={"content": "Bom dia!"}
                )
                assert reply.status_code == 200, reply.text

                async def sent(session_id: int = session["id"]) -> list[str | None]:
                    phone = await api.get(f"/api/v1/sandbox/sessions/{session_id}")
                    return [s["body"] for s in phone.json()["sent"]]

                await eventually(sent, lambda bodies: "Bom dia!" in bodies)
                assert (await sent()).count("Bom dia!") == 1, f"start {start}"
