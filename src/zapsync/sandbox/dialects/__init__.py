"""HTTP front ends that render the sandbox world in one gateway's dialect.

Each module exposes `build(world, sender) -> DialectFrontEnd`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from fastapi import APIRouter

from zapsync.sandbox.webhook_sender import WebhookSender
from zapsync.sandbox.world import World, WorldEvent


@dataclass
class DialectFrontEnd:
    name: str
    router: APIRouter
    on_event: Callable[[WorldEvent], None]


DIALECTS = ("evolution", "waha", "megaapi")


def build_dialect(name: str, world: World, sender: WebhookSender) -> DialectFrontEnd:
    if name == "evolution":
        from zapsync.sandbox.dialects import evolution as module
    elif name == "waha":
        from zapsync.sandbox.dialects import waha as module  # type: ignore[no-redef]
    elif name == "megaapi":
        from zapsync.sandbox.dialects import megaapi as module  # type: ignore[no-redef]
    else:
        raise ValueError(f"unknown sandbox dialect {name!r}; choose one of {', '.join(DIALECTS)}")
    return module.build(world, sender)
