"""deploy/: the compose file and the systemd units run commands zapsync has, with settings
zapsync reads and accepts (the scaled-out mode: PostgreSQL, Redis, Procrastinate workers), and
at least two replicas and two workers."""

from __future__ import annotations

import configparser
import shlex
from pathlib import Path
from typing import Any

import yaml
from typer.testing import CliRunner

from zapsync.cli.main import app
from zapsync.settings import load_settings

DEPLOY = Path(__file__).parents[1] / "deploy"


def _runs(argv: list[str]) -> None:
    """The command exists and takes these options (its --help, not the command itself)."""
    assert argv[0].endswith("zapsync"), argv
    words = [a for a in argv[1:] if not a.startswith("-")]
    command = [w for w in words if not w[0].isdigit() and w not in ("0.0.0.0", "127.0.0.1")]
    result = CliRunner().invoke(app, [*command[:2], "--help"])
    assert result.exit_code == 0, (argv, result.output)
    for option in (a for a in argv if a.startswith("--")):
        assert option in result.output, (option, argv)


def _settings_of(env: dict[str, str]) -> None:
    values = {k: v for k, v in env.items() if "${" not in v}
    values.setdefault("ZAPSYNC_SECRET_KEY", "x" * 32)
    settings = load_settings(**values)
    assert settings.jobs == "procrastinate"
    assert settings.database_url.startswith("postgresql+psycopg://")
    assert settings.redis_url is not None and settings.redis_url.startswith("redis://")


def test_the_compose_file_runs_two_replicas_and_two_workers() -> None:
    compose: dict[str, Any] = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    services = compose["services"]
    commands = {name: s["command"] for name, s in services.items() if "command" in s}
    serving = [n for n, c in commands.items() if c[:2] == ["zapsync", "serve"]]
    working = [n for n, c in commands.items() if c[:2] == ["zapsync", "worker"]]
    assert len(serving) >= 2 and len(working) >= 2, commands
    assert commands["migrate"] == ["zapsync", "db", "upgrade"]
    for command in commands.values():
        _runs(command)
    for name in [*serving, *working]:
        _settings_of(services[name]["environment"])
        assert "migrate" in services[name]["depends_on"]


def test_the_systemd_units_run_zapsync_with_a_scaled_out_environment() -> None:
    env = dict(
        line.split("=", 1)
        for line in (DEPLOY / "systemd" / "zapsync.env.example").read_text().splitlines()
        if line and not line.startswith("#")
    )
    _settings_of(env)
    for unit in ("zapsync-serve@.service", "zapsync-worker@.service"):
        parser = configparser.ConfigParser(interpolation=None, strict=False)
        parser.read(DEPLOY / "systemd" / unit)
        service = parser["Service"]
        assert service["EnvironmentFile"] == "/etc/zapsync/zapsync.env"
        _runs(shlex.split(service["ExecStart"].replace("%i", "8000")))
        assert parser["Install"]["WantedBy"] == "multi-user.target"
