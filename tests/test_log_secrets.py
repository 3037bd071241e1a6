"""`zapsync serve` at DEBUG with JSON logs: every line is JSON, and no line holds a token, its
hash, a webhook secret, a gateway key or a message body, whatever the libraries say."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import httpx
import socketio

from tests.conftest import Tenant
from tests.support.gateways import KEYS, serving_dialect
from tests.support.servers import free_port
from zapsync.security.tokens import hash_token
from zapsync.settings import Settings

T = TypeVar("T")

CUSTOMER = "5511987654321"
INBOUND = "corpo-de-entrada-confidencial"
OUTBOUND = "corpo-de-saida-confidencial"


async def until(probe: Callable[[], Awaitable[T | None]], timeout: float = 60.0) -> T:
    # generous: this server logs every SQL statement at DEBUG, and CI runs two workers at once
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        found = await probe()
        if found is not None:
            return found
        await asyncio.sleep(0.2)  # each probe logs dozens of DEBUG lines: poll gently
    raise AssertionError(f"nothing after {timeout} s")


def start_serving(settings: Settings, port: int, output: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "DATABASE_URL": settings.database_url,
        "ZAPSYNC_SECRET_KEY": "test-secret-key",
        "ZAPSYNC_DATA_DIR": str(settings.data_dir),
        "ZAPSYNC_PUBLIC_URL": f"http://127.0.0.1:{port}",
        "ZAPSYNC_SCHEDULER": "false",
        "ZAPSYNC_LOG_LEVEL": "DEBUG",
        "ZAPSYNC_LOG_FORMAT": "json",
        # asked for by name: their lines must come, masked like the rest
        "ZAPSYNC_DEBUG_LOGGERS": "httpx,sqlalchemy.engine,aiosqlite",
    }
    with output.open("wb") as sink:
        return subprocess.Popen(
            [sys.executable, "-m", "zapsync.cli.main", "serve", "--port", str(port)],
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )


async def exercise(base: str, gateway: str, tenant: Tenant) -> str:
    """A session paired over webhooks, a customer message in, a reply out, a socket with a
    token; returns the session's webhook secret."""
    async with httpx.AsyncClient(base_url=base) as http, httpx.AsyncClient() as gw:

        async def healthy() -> bool | None:
            try:
                return (await http.get("/health")).status_code == 200 or None
            except httpx.HTTPError:
                return None

        await until(healthy)
        instance = "vendas-logs"
        config = {"base_url": gateway, "api_key": KEYS["evolution"], "instance": instance}
        created = await http.post(
            "/api/v1/sessions",
            headers=tenant.headers,
            json={"name": "Vendas", "provider": "evolution", "config": config},
        )
        assert created.status_code == 201, created.text
        session_id = created.json()["id"]
        hook = (
            await gw.get(
                f"{gateway}/webhook/find/{instance}", headers={"apikey": KEYS["evolution"]}
            )
        ).json()
        secret: str = next(v for k, v in hook["headers"].items() if "token" in k.lower())

        sio = socketio.AsyncClient(reconnection=False)
        await sio.connect(base, auth={"token": tenant.token}, transports=["websocket"])
        try:
            scan = await gw.post(
                f"{gateway}/_sandbox/instances/{instance}/scan", json={"phone": "5511900000001"}
            )
            scan.raise_for_status()

            async def connected() -> bool | None:
                resp = await http.get(f"/api/v1/sessions/{session_id}", headers=tenant.headers)
                if resp.json()["status"] == "connected":
                    return True
                # The gateway posts its webhooks concurrently: a `connecting` processed after
                # the `open` leaves the session behind; reconciling on demand, as a user would
                # with "Sincronizar status", reads the gateway's own state.
                await http.post(
                    f"/api/v1/sessions/{session_id}/status-sync", headers=tenant.headers
                )
                return None

            await until(connected)
            inbound = await gw.post(
                f"{gateway}/_sandbox/instances/{instance}/messages",
                json={"chat_jid": f"{CUSTOMER}@s.whatsapp.net", "body": INBOUND},
            )
            inbound.raise_for_status()

            async def conversation() -> int | None:
                resp = await http.get("/api/v1/conversations", headers=tenant.headers)
                items = resp.json()["items"]
                return next((c["id"] for c in items if c["last_message_preview"]), None)

            conversation_id = await until(conversation)
            sent = await http.post(
                f"/api/v1/conversations/{conversation_id}/messages",
                headers=tenant.headers,
                json={"type": "text", "content": OUTBOUND},
            )
            assert sent.status_code in (200, 201, 202), sent.text

            async def delivered() -> bool | None:
                state = (await gw.get(f"{gateway}/_sandbox/instances/{instance}")).json()
                return any(m["body"] == OUTBOUND for m in state["sent"]) or None

            await until(delivered)
            # a delivery with the secret in its query string, as some gateways send them
            again = await http.post(
                f"/api/v1/webhooks/evolution/{session_id}",
                params={"token": secret},
                json={"event": "presence.update", "instance": instance, "data": {}},
            )
            assert again.status_code < 300, again.text
        finally:
            await sio.disconnect()
        return secret


def diagnosis(output: Path) -> str:
    """The lines that explain a stall: every request but the polls, and every warning."""
    kept = []
    for line in output.read_text().splitlines():
        if '"logger": "aiosqlite"' in line or '"logger": "sqlalchemy' in line:
            continue
        if '"GET", "path": "/api/v1/sessions/' in line or '"path": "/api/v1/conversations"' in line:
            continue
        kept.append(line[:400])
    return "\n".join(kept[-80:])


async def test_debug_json_logs_hold_no_secret_and_no_body(
    settings: Settings, tenant: Tenant, tmp_path: Path
) -> None:
    port = free_port()
    output = tmp_path / "serve.log"
    with serving_dialect("evolution") as gateway:
        proc = start_serving(settings, port, output)
        try:
            secret = await exercise(f"http://127.0.0.1:{port}", gateway, tenant)
        except AssertionError as exc:
            raise AssertionError(f"{exc}; the server said:\n{diagnosis(output)}") from exc
        finally:
            proc.terminate()
            proc.wait(timeout=20)
    text = output.read_text()
    lines = [line for line in text.splitlines() if line.strip()]
    records = []
    for line in lines:
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            raise AssertionError(f"not a JSON line: {line!r}") from None
    loggers = {r.get("logger") for r in records}
    assert any(r.get("level") == "debug" or r.get("logger") == "httpx" for r in records)
    assert {"httpx", "sqlalchemy.engine.Engine"} <= loggers, "the libraries named speak"
    assert not loggers & {"httpcore", "engineio.server", "socketio.server"}, "unnamed: quiet"
    for needle in (
        tenant.token,
        hash_token(tenant.token),
        secret,
        KEYS["evolution"],
        INBOUND,
        OUTBOUND,
    ):
        assert needle not in text, f"{needle!r} is in the log"
