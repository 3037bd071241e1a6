"""`zapsync chatwoot connect|list|sync|runs` as a user runs them, against the sandbox's Chatwoot
dialect over HTTP: a bad token is refused with Chatwoot's reason, a pull shows its progress and
counts, a second pull skips everything, the runs are listed."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
from sqlalchemy import func, select
from sqlalchemy.orm import Session as DbSession

from tests.support.cli import cli_env, run_cli
from tests.support.servers import serve_in_thread
from zapsync.sandbox.dialects.chatwoot.state import SANDBOX_ACCOUNT_ID, SANDBOX_TOKEN
from zapsync.sandbox.server import build_sandbox_app
from zapsync.store.db import make_sync_engine
from zapsync.store.migrate import upgrade
from zapsync.store.models import Contact, Integration, Organization


def test_connect_sync_and_runs_from_the_command_line(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    env = cli_env(tmp_path, url, ZAPSYNC_SECRET_KEY="cli-secret")
    upgrade(url)
    engine = make_sync_engine(url)
    with DbSession(engine) as db:
        db.add(Organization(name="Acme"))
        db.commit()

    with serve_in_thread(build_sandbox_app("chatwoot")) as base_url:
        control = f"{base_url}/_sandbox/chatwoot"
        httpx.post(f"{control}/contacts/seed", json={"count": 40}).raise_for_status()
        where = ["--org", "Acme", "--api-url", base_url, "--account-id", str(SANDBOX_ACCOUNT_ID)]

        refused = run_cli(
            ["chatwoot", "connect", *where], {**env, "ZAPSYNC_CHATWOOT_API_KEY": "bad"}
        )
        assert refused.returncode == 1
        assert "Invalid Access Token" in refused.stderr and "Traceback" not in refused.stderr

        connected = run_cli(
            ["chatwoot", "connect", *where], {**env, "ZAPSYNC_CHATWOOT_API_KEY": SANDBOX_TOKEN}
        )
        assert connected.returncode == 0, connected.stderr
        assert "/webhook?token=" in connected.stdout
        assert SANDBOX_TOKEN not in connected.stdout + connected.stderr

        listed = run_cli(["chatwoot", "list", "--org", "Acme"], env)
        assert listed.returncode == 0 and base_url in listed.stdout

        pulled = run_cli(["chatwoot", "sync", "--org", "Acme", "--entity", "contacts"], env)
        assert pulled.returncode == 0, pulled.stderr
        assert "contacts pull" in pulled.stderr  # the progress bar
        again = run_cli(["chatwoot", "sync", "--org", "Acme", "--json"], env)
        second = json.loads(again.stdout)
        assert (second["created"], second["skipped"], second["status"]) == (0, 40, "succeeded")

        runs = run_cli(["chatwoot", "runs", "--org", "Acme"], env)
        assert runs.returncode == 0
        assert runs.stdout.count("chatwoot_contacts_pull") == 2 and "cli" in runs.stdout

        unknown = run_cli(["chatwoot", "runs", "--org", "Nobody"], env)
        assert unknown.returncode == 1 and "no organization named 'Nobody'" in unknown.stderr

    with DbSession(engine) as db:
        assert db.scalar(select(func.count()).select_from(Contact)) == 40
        integration = db.scalar(select(Integration))
        assert integration is not None and SANDBOX_TOKEN not in integration.credentials_encrypted
