"""What WAHA keeps about each session beside the live socket: its config as sent (webhooks
included) and its last status changes, which every `session.status` webhook carries."""

from __future__ import annotations

from typing import Any

from zapsync.sandbox.world import SimInstance, WebhookConfig


class WahaSessions:
    def __init__(self) -> None:
        self.configs: dict[str, dict[str, Any] | None] = {}
        self.history: dict[str, list[dict[str, Any]]] = {}

    def add(self, inst: SimInstance, config: dict[str, Any] | None) -> None:
        self.set_config(inst, config)
        self.history[inst.name] = []

    def forget(self, name: str) -> None:
        self.configs.pop(name, None)
        self.history.pop(name, None)

    def set_config(self, inst: SimInstance, config: dict[str, Any] | None) -> None:
        self.configs[inst.name] = config
        hooks = self.webhooks(inst.name)
        inst.webhook = None
        if hooks:
            first = hooks[0]
            inst.webhook = WebhookConfig(
                url=str(first.get("url")),
                headers={h["name"]: h["value"] for h in first.get("customHeaders") or []},
                hmac_key=(first.get("hmac") or {}).get("key"),
                events=list(first.get("events") or []),
            )

    def webhooks(self, name: str) -> list[dict[str, Any]]:
        config = self.configs.get(name) or {}
        hooks = config.get("webhooks") or []
        return [h for h in hooks if isinstance(h, dict) and h.get("url")]
