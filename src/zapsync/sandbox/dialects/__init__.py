"""HTTP front ends that render the sandbox world in one gateway's dialect.

Each module exposes `build(world, sender) -> DialectFrontEnd`."""

from __future__ import annotations

import importlib
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


DIALECTS = ("evolution", "waha", "megaapi", "chatwoot")


def build_dialect(name: str, world: World, sender: WebhookSender) -> DialectFrontEnd:
    if name not in DIALECTS:
        raise ValueError(f"unknown sandbox dialect {name!r}; choose one of {', '.join(DIALECTS)}")
    module = importlib.import_module(f"zapsync.sandbox.dialects.{name}")
    front: DialectFrontEnd = module.build(world, sender)
    return front
