"""The CLI a newcomer follows: create an org, a user and a token, then use the token."""

from __future__ import annotations

import asyncio
import json
import os
import queue
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import pytest
from asgi_lifespan import LifespanManager

from tests.support.servers import free_port
from zapsync.api.app import create_app
from zapsync.settings import Settings

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


@pytest.mark.parametrize(
    "args",
    [["db", "upgrade"], ["admin", "create-org", "Acme"], ["status"], ["serve", "--port", "9"]],
)
def test_an_unreachable_database_is_one_line_naming_database_url(
    cli_env: dict[str, str], args: list[str]
) -> None:
    closed = free_port()  # nothing listens there
    url = f"postgresql://zapsync:hunter2-secret@127.0.0.1:{closed}/zapsync"
    result = run(args, {**cli_env, "DATABASE_URL": url}, check=False)
    assert result.returncode != 0
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: cannot reach the database at DATABASE_URL=postgresql")
    assert f"zapsync:***@127.0.0.1:{closed}/zapsync" in lines[0]
    assert "connection refused" in lines[0].lower()
    assert "hunter2" not in result.stderr + result.stdout


def test_an_unopenable_sqlite_file_is_one_line_naming_database_url(
    cli_env: dict[str, str], tmp_path: Path
) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the database's folder should be")
    env = {**cli_env, "DATABASE_URL": f"sqlite:///{blocker / 'zapsync.db'}"}
    result = run(["admin", "create-org", "Acme"], env, check=False)
    assert result.returncode != 0
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: cannot reach the database at DATABASE_URL=sqlite")
    assert str(blocker) in lines[0]


SANDBOX_AUTH = {
    # dialect: (a route that needs the key, the method, how the key is sent)
    "evolution": ("/instance/fetchInstances", "GET", lambda key: {"apikey": key}),
    "waha": ("/api/sessions", "GET", lambda key: {"X-Api-Key": key}),
    "megaapi": (
        "/rest/instance/init?instance_key=cli-test",
        "POST",
        lambda key: {"Authorization": f"Bearer {key}"},
    ),
}


@pytest.mark.parametrize("dialect", sorted(SANDBOX_AUTH))
def test_sandbox_serve_prints_the_key_its_gateway_accepts(
    cli_env: dict[str, str], dialect: str
) -> None:
    port = free_port()
    proc = subprocess.Popen(
        [*ZAPSYNC, "sandbox", "serve", "--dialect", dialect, "--port", str(port)],
        env=cli_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        for line in proc.stdout or ():
            lines.put(line)

    threading.Thread(target=pump, daemon=True).start()
    try:
        printed: dict[str, str] = {}
        while "session config" not in printed:
            line = lines.get(timeout=60)
            key, _, value = line.partition(": ")
            printed[key.strip()] = value.strip()
        api_key = printed["API key"]
        config = json.loads(printed["session config"])
        assert config["base_url"] == f"http://127.0.0.1:{port}"
        assert api_key in config.values()
        path, method, headers = SANDBOX_AUTH[dialect]
        base = config["base_url"]
        for _ in range(600):  # printed before uvicorn listens: wait for it
            try:
                wrong = httpx.request(method, base + path, headers=headers("wrong"), timeout=5)
                break
            except httpx.TransportError:
                subprocess.run(["sleep", "0.1"], check=True)
        assert wrong.status_code == 401
        right = httpx.request(method, base + path, headers=headers(api_key), timeout=5)
        assert right.status_code < 300, right.text
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_set_password_lets_the_user_log_in_on_the_web(cli_env: dict[str, str]) -> None:
    run(["db", "upgrade"], cli_env)
    run(["admin", "create-org", "Acme"], cli_env)
    run(["admin", "create-user", "--org", "Acme", "--email", "a@acme.test"], cli_env)
    short = subprocess.run(
        [*ZAPSYNC, "admin", "set-password", "--email", "a@acme.test"],
        env=cli_env,
        input="short\nshort\n",
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert short.returncode == 1 and "at least 8 characters" in short.stderr
    subprocess.run(
        [*ZAPSYNC, "admin", "set-password", "--email", "a@acme.test"],
        env=cli_env,
        input="a long secret\na long secret\n",
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert asyncio.run(logs_in(cli_env, "a@acme.test", "a long secret")) == 200


async def logs_in(cli_env: dict[str, str], email: str, password: str) -> int:
    """The status of a web login against the CLI's database."""
    settings = Settings(
        database_url=cli_env["DATABASE_URL"],
        ZAPSYNC_DATA_DIR=Path(cli_env["ZAPSYNC_DATA_DIR"]),
        ZAPSYNC_SCHEDULER=False,
    )
    app = create_app(settings)
    async with LifespanManager(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            login = await client.post(
                "/api/v1/auth/login", json={"email": email, "password": password}
            )
            return login.status_code
