"""Forgetting inbound media nobody opened for a while: the files under `data_dir/media/inbound/`
are a cache of what the gateways hold, so one not viewed for `ZAPSYNC_INBOUND_MEDIA_KEEP_DAYS`
is removed by the nightly cleanup and fetched again if someone opens it later (while the
gateway still has it). A view refreshes the file's time (`inbound_media.touch_viewed`); a
download cut off mid-write leaves a `.part` file, removed once it is an hour old."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import structlog

from zapsync.runtime.context import AppContext
from zapsync.services.inbound_media import inbound_dir

log = structlog.get_logger(__name__)

PART_GRACE_SECONDS = 3600.0


async def prune_inbound_media(ctx: AppContext, organization_id: int | None) -> int:
    """Remove the organization's (or everyone's) inbound files not viewed within the keep
    window, and stale partial downloads; how many files were removed."""
    keep_seconds = ctx.settings.inbound_media_keep_days * 86400
    removed = await asyncio.to_thread(
        _prune, inbound_dir(ctx), organization_id, time.time(), keep_seconds
    )
    if removed:
        log.info("inbound media pruned", removed=removed, organization_id=organization_id)
    return removed


def _prune(folder: Path, organization_id: int | None, now: float, keep_seconds: float) -> int:
    if not folder.is_dir():
        return 0
    # Files are named `<organization>-<message>-<digest>.<ext>` (services/inbound_media.py).
    prefix = f"{organization_id}-" if organization_id is not None else ""
    removed = 0
    for entry in os.scandir(folder):
        if not entry.is_file():
            continue
        partial = entry.name.startswith(".") and entry.name.endswith(".part")
        if partial:
            if organization_id is not None or now - entry.stat().st_mtime < PART_GRACE_SECONDS:
                continue
        elif not entry.name.startswith(prefix) or now - entry.stat().st_mtime < keep_seconds:
            continue
        try:
            os.unlink(entry.path)
        except FileNotFoundError:
            continue
        removed += 1
    return removed
