"""The CLI a newcomer follows: create an org, a user and a token, then use the token."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.support.servers import free_port

ZAPSYNC = [sys.executable, "-m", "zapsync.cli.main"]


def run(
    args: list[str], env: dict[str, str], check: bool = True
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*ZAPSYNC, *args], env=env, capture_output=True, text=True, check=check, timeout=60
    )


@pytest.fixture
def cli_env(tmp_path: Path) -> dict[str, str]:
    return {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}",
        "ZAPSYNC_DATA_DIR": str(tmp_path / "data"),
        "ZAPSYNC_SCHEDULER": "false",
    }


def test_admin_commands_make_a_working_token(cli_env: dict[str, str]) -> None:
    run(["db", "upgrade"], cli_env)
    run(["admin", "create-org", "Acme"], cli_env)
    run(
        ["admin", "create-user", "--org", "Acme", "--email", "a@acme.test", "--role", "admin"],
        cli_env,
    )
    token = run(["admin", "create-token", "--email", "a@acme.test"], cli_env).stdout.strip()
    assert token.startswith("zs_")
    assert token not in (Path(cli_env["ZAPSYNC_DATA_DIR"]).parent / "cli.db").read_bytes().decode(
        "latin-1"
    )

    port = free_port()
    proc = subprocess.Popen(
        [*ZAPSYNC, "serve", "--port", str(port)],
        env=cli_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(200):
            try:
                if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            proc.wait(timeout=0.1) if proc.poll() is not None else None
            subprocess.run(["sleep", "0.1"], check=True)
        me = httpx.get(f"{base}/api/v1/me", headers={"Authorization": f"Bearer {token}"})
        assert me.status_code == 200
        assert me.json()["organization"] == "Acme"
        assert httpx.get(f"{base}/api/v1/me").status_code == 401
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_duplicate_org_is_one_clear_error(cli_env: dict[str, str]) -> None:
    run(["admin", "create-org", "Acme"], cli_env)
    again = run(["admin", "create-org", "Acme"], cli_env, check=False)
    assert again.returncode == 1
    assert "already exists" in again.stderr


def test_bad_setting_stops_with_its_name(cli_env: dict[str, str]) -> None:
    result = run(["db", "upgrade"], {**cli_env, "DATABASE_URL": "mysql://nope"}, check=False)
    assert result.returncode == 2
    assert "DATABASE_URL" in result.stderr


def test_version_prints_the_package_version(cli_env: dict[str, str]) -> None:
    from zapsync import __version__

    assert run(["version"], cli_env).stdout.strip() == __version__
