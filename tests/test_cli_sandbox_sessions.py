"""`zapsync status-sync` and `sync-conversations` from a terminal leave sandbox sessions to the
running server (their phone lives in its memory), say so in one line, and still do the rest."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import httpx

from tests.conftest import Tenant
from tests.support.gateways import SandboxGateway, create_session, running_sandbox
from zapsync.settings import Settings


async def zapsync_cli(
    settings: Settings, tmp_path: Path, *args: str
) -> subprocess.CompletedProcess[str]:
    """The `zapsync` command in its own process, on the test app's database; run off the
    test's loop, whose app shares the database."""
    env = {
        **os.environ,
        "DATABASE_URL": settings.database_url,
        "ZAPSYNC_SECRET_KEY": "test-secret-key",
        "ZAPSYNC_DATA_DIR": str(tmp_path / "cli-data"),
        "ZAPSYNC_PUBLIC_URL": settings.public_url,
        "ZAPSYNC_GATEWAY_TIMEOUT": "10",
    }
    command = [sys.executable, "-m", "zapsync.cli.main", *args]
    return await asyncio.to_thread(
        subprocess.run, command, env=env, capture_output=True, text=True, timeout=120
    )


async def sandbox_session(client: httpx.AsyncClient, tenant: Tenant) -> dict[str, object]:
    resp = await client.post(
        "/api/v1/sessions",
        headers=tenant.headers,
        json={"name": "Demo", "provider": "sandbox", "config": {}},
    )
    assert resp.status_code == 201, resp.text
    body: dict[str, object] = resp.json()
    return body


async def paired_session(client: httpx.AsyncClient, tenant: Tenant, gateway: SandboxGateway) -> int:
    """An Evolution session whose phone is scanned at the gateway; zapsync has not seen it."""
    name = gateway.new_instance()
    sid = int((await create_session(client, tenant, gateway, name))["id"])
    gateway.scan(name)
    return sid


async def status_of(client: httpx.AsyncClient, tenant: Tenant, sid: object) -> str:
    resp = await client.get(f"/api/v1/sessions/{sid}", headers=tenant.headers)
    assert resp.status_code == 200, resp.text
    return str(resp.json()["status"])


def one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    assert "Traceback" not in result.stderr, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    return lines[0]


async def test_status_sync_skips_sandbox_sessions_and_syncs_the_others(
    client: httpx.AsyncClient,
    tenant: Tenant,
    other_tenant: Tenant,
    settings: Settings,
    tmp_path: Path,
) -> None:
    with running_sandbox("evolution") as gateway:
        demo = await sandbox_session(client, tenant)
        beside_demo = await paired_session(client, tenant, gateway)  # same organization
        elsewhere = await paired_session(client, other_tenant, gateway)
        demo_status = await status_of(client, tenant, demo["id"])

        result = await zapsync_cli(settings, tmp_path, "status-sync")

        assert result.returncode == 1
        line = one_error_line(result)
        assert f"session {demo['id']} skipped" in line and "zapsync serve" in line
        assert f"POST /api/v1/sessions/{demo['id']}/status-sync" in line
        assert "checked 2" in result.stdout
        assert await status_of(client, tenant, beside_demo) == "connected"
        assert await status_of(client, other_tenant, elsewhere) == "connected"
        # not marked gone nor unreachable by a process that cannot see its phone
        assert await status_of(client, tenant, demo["id"]) == demo_status


async def test_one_sandbox_session_asked_for_by_id_is_refused_in_one_line(
    client: httpx.AsyncClient, tenant: Tenant, settings: Settings, tmp_path: Path
) -> None:
    demo = await sandbox_session(client, tenant)
    before = await status_of(client, tenant, demo["id"])

    synced = await zapsync_cli(settings, tmp_path, "status-sync", "--session", str(demo["id"]))
    assert synced.returncode == 1
    assert "zapsync serve" in one_error_line(synced)

    imported = await zapsync_cli(settings, tmp_path, "sync-conversations", str(demo["id"]))
    assert imported.returncode == 1
    line = one_error_line(imported)
    assert f"POST /api/v1/sessions/{demo['id']}/sync-conversations" in line

    assert await status_of(client, tenant, demo["id"]) == before
