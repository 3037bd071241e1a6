"""Where the shared payload samples live: `../shared/contracts` beside the repository."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

CONTRACTS = Path(__file__).resolve().parents[2].parent / "shared" / "contracts"


def sample(relative: str) -> Any:
    return json.loads((CONTRACTS / relative).read_text())


def sample_bytes(relative: str) -> bytes:
    return (CONTRACTS / relative).read_bytes()
