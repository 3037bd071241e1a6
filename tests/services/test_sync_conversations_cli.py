"""`zapsync sync-conversations SESSION` against the Evolution dialect of the sandbox, over HTTP."""

from __future__ import annotations

from pathlib import Path

import httpx
from sqlalchemy import func, select
from sqlalchemy.orm import Session as DbSession

from tests.support.cli import cli_env, run_cli
from tests.support.servers import serve_in_thread
from zapsync.sandbox.server import build_sandbox_app
from zapsync.security.crypto import Cipher
from zapsync.store.db import make_sync_engine
from zapsync.store.migrate import upgrade
from zapsync.store.models import Message, Organization, Session, SyncRun

EVOLUTION_KEY = "sandbox-global-key"
SECRET = "cli-secret"


def test_cli_imports_a_session_with_a_progress_bar_and_a_summary(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    env = cli_env(tmp_path, url, ZAPSYNC_SECRET_KEY=SECRET)
    upgrade(url)
    engine = make_sync_engine(url)

    with serve_in_thread(build_sandbox_app("evolution")) as base_url:
        control = f"{base_url}/_sandbox"
        httpx.post(f"{control}/bulk", json={"prefix": "cli", "count": 1}).raise_for_status()
        httpx.post(
            f"{control}/instances/cli-0/seed", json={"chats": 12, "groups": 2, "messages": 300}
        ).raise_for_status()
        with DbSession(engine) as db:
            org = Organization(name="Acme")
            db.add(org)
            db.flush()
            config = {"base_url": base_url, "api_key": EVOLUTION_KEY, "instance": "cli-0"}
            session = Session(
                organization_id=org.id,
                name="Loja",
                provider="evolution",
                gateway_key=f"evolution:{base_url}:cli-0",
                config_encrypted=Cipher(SECRET).encrypt_json(config),
                webhook_secret_encrypted=Cipher(SECRET).encrypt_text("hook-secret"),
                status="connected",
                check_failures=0,
                heal_attempts=0,
            )
            db.add(session)
            db.commit()
            session_id = session.id

        done = run_cli(["sync-conversations", str(session_id)], env)

    assert done.returncode == 0, done.stderr
    assert "succeeded" in done.stdout
    assert "group 2" in done.stdout
    assert "importing chats" in done.stderr  # the progress bar
    with DbSession(engine) as db:
        sync_run = db.scalar(select(SyncRun))
        assert sync_run is not None
        assert (sync_run.trigger, sync_run.status, sync_run.created) == ("cli", "succeeded", 10)
        stored = db.scalar(select(func.count()).select_from(Message))
        assert stored == sync_run.report["messages"]["created"] > 0
    engine.dispose()

    missing = run_cli(["sync-conversations", "999"], env)
    assert missing.returncode == 1
    assert "session 999 not found" in missing.stderr
