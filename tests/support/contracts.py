"""Where the gateways' captured payload samples live: `tests/fixtures/<gateway>/`.

Copied from the shared `contracts/` folder (samples from the gateways' public documentation
and captures of real servers), so the tests replay them without a folder outside the repo."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

CONTRACTS = Path(__file__).resolve().parents[1] / "fixtures"


def sample(relative: str) -> Any:
    return json.loads((CONTRACTS / relative).read_text())


def sample_bytes(relative: str) -> bytes:
    return (CONTRACTS / relative).read_bytes()
