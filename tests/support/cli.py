"""The `zapsync` command line run as a user runs it: its own process, an environment of its own."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ZAPSYNC = [sys.executable, "-m", "zapsync.cli.main"]


def cli_env(tmp_path: Path, url: str, **extra: str) -> dict[str, str]:
    """This machine's environment with zapsync pointed at `url` and a data folder of its own,
    no scheduler, and a terminal wide enough for Rich's tables to keep each row on one line."""
    return {
        **os.environ,
        "DATABASE_URL": url,
        "ZAPSYNC_DATA_DIR": str(tmp_path / "data"),
        "ZAPSYNC_SCHEDULER": "false",
        "COLUMNS": "160",
        **extra,
    }


def run_cli(
    args: list[str], env: dict[str, str], *, check: bool = False, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*ZAPSYNC, *args], env=env, capture_output=True, text=True, check=check, timeout=timeout
    )
