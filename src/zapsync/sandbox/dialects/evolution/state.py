"""What an Evolution server keeps about each instance beside the live socket: its database row
(with the stale `connectionStatus` column) and its webhook settings."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from zapsync.sandbox.dialects.evolution.shapes import BAILEYS, db_id, iso
from zapsync.sandbox.world import SimInstance, WebhookConfig

# Every event Evolution can send (the `Events` enum in src/api/types/wa.types.ts), in the
# config-list spelling. An enabled webhook with an empty list subscribes to all of them.
ALL_EVENTS = (
    "APPLICATION_STARTUP",
    "INSTANCE_CREATE",
    "INSTANCE_DELETE",
    "QRCODE_UPDATED",
    "CONNECTION_UPDATE",
    "STATUS_INSTANCE",
    "MESSAGES_SET",
    "MESSAGES_UPSERT",
    "MESSAGES_EDITED",
    "MESSAGES_UPDATE",
    "MESSAGES_DELETE",
    "SEND_MESSAGE",
    "SEND_MESSAGE_UPDATE",
    "CONTACTS_SET",
    "CONTACTS_UPSERT",
    "CONTACTS_UPDATE",
    "PRESENCE_UPDATE",
    "CHATS_SET",
    "CHATS_UPDATE",
    "CHATS_UPSERT",
    "CHATS_DELETE",
    "GROUPS_UPSERT",
    "GROUP_UPDATE",
    "GROUP_PARTICIPANTS_UPDATE",
    "CALL",
    "LABELS_EDIT",
    "LABELS_ASSOCIATION",
    "LOGOUT_INSTANCE",
    "REMOVE_INSTANCE",
)

DEFAULT_SETTINGS: dict[str, Any] = {
    "rejectCall": False,
    "msgCall": "",
    "groupsIgnore": False,
    "alwaysOnline": False,
    "readMessages": False,
    "readStatus": False,
    "syncFullHistory": False,
    "wavoipToken": "",
}


@dataclass
class HookMeta:
    """The Webhook row's fields that `WebhookConfig` (shared by all dialects) does not hold."""

    id: str
    enabled: bool
    by_events: bool
    base64: bool
    headers_given: bool
    created_at: float
    updated_at: float


@dataclass
class EvoInstance:
    inst: SimInstance
    instance_id: str
    integration: str = BAILEYS
    # The DB column `connectionStatus`: Prisma's default is `open` and only a final close or
    # an open writes it, so it lies after silent drops (the trap behind issue #1662).
    stored_status: str = "open"
    number: str | None = None
    owner_jid: str | None = None
    profile_name: str | None = None
    disconnection_code: int | None = None
    disconnection_at: float | None = None
    settings: dict[str, Any] = field(default_factory=lambda: dict(DEFAULT_SETTINGS))
    server_url: str = "http://127.0.0.1:8080"
    hook: HookMeta | None = None
    # Evolution's reconnect loop: on once the socket was started, off only after a logout
    # (by the API or the phone) or a delete. A refused (400) logout leaves it on.
    looping: bool = False
    announced_chats: set[str] = field(default_factory=set)
    known_contacts: set[str] = field(default_factory=set)
    created_at: float = field(default_factory=time.time)
    updated_at: float = field(default_factory=time.time)

    def webhook_row(self) -> dict[str, Any] | None:
        """`GET /webhook/find` and the answer of `POST /webhook/set`."""
        cfg, meta = self.inst.webhook, self.hook
        if cfg is None or meta is None:
            return None
        return {
            "id": meta.id,
            "url": cfg.url,
            "headers": dict(cfg.headers) if meta.headers_given else None,
            "enabled": meta.enabled,
            "events": list(cfg.events),
            "webhookByEvents": meta.by_events,
            "webhookBase64": meta.base64,
            "createdAt": iso(meta.created_at),
            "updatedAt": iso(meta.updated_at),
            "instanceId": self.instance_id,
        }

    def set_webhook(self, hook: dict[str, Any]) -> None:
        """Apply a `webhook` object from create or `webhook/set` (already validated)."""
        enabled = hook.get("enabled", True) is not False
        events = [str(e).upper() for e in hook.get("events") or []]
        if not enabled:
            events = []
        elif not events:
            events = list(ALL_EVENTS)
        headers = hook.get("headers")
        now = time.time()
        self.inst.webhook = WebhookConfig(
            url=str(hook["url"]),
            headers={str(k): str(v) for k, v in (headers or {}).items()},
            events=events,
        )
        self.hook = HookMeta(
            id=self.hook.id if self.hook else db_id(self.instance_id, "webhook"),
            enabled=enabled,
            by_events=bool(hook.get("byEvents", False)),
            base64=bool(hook.get("base64", False)),
            headers_given=isinstance(headers, dict),
            created_at=self.hook.created_at if self.hook else now,
            updated_at=now,
        )

    def db_row(self) -> dict[str, Any]:
        """One `fetchInstances` element (Prisma `Instance` with its relations)."""
        chats = self.inst.chats.values()
        created, updated = iso(self.created_at), iso(self.updated_at)
        return {
            "id": self.instance_id,
            "name": self.inst.name,
            "connectionStatus": self.stored_status,
            "ownerJid": self.owner_jid,
            "profileName": self.profile_name,
            "profilePicUrl": None,
            "integration": self.integration,
            "number": self.number,
            "businessId": None,
            "token": self.inst.token,
            "clientName": "evolution",
            "disconnectionReasonCode": self.disconnection_code,
            "disconnectionObject": (
                f'{{"error":{{"output":{{"statusCode":{self.disconnection_code}}}}}}}'
                if self.disconnection_code
                else None
            ),
            "disconnectionAt": iso(self.disconnection_at) if self.disconnection_at else None,
            "createdAt": created,
            "updatedAt": updated,
            "Chatwoot": None,
            "Proxy": None,
            "Rabbitmq": None,
            "Nats": None,
            "Sqs": None,
            "Websocket": None,
            "Setting": {
                "id": db_id(self.instance_id, "setting"),
                **self.settings,
                "createdAt": created,
                "updatedAt": created,
                "instanceId": self.instance_id,
            },
            "_count": {
                "Message": sum(len(c.messages) for c in chats),
                "Contact": sum(1 for c in chats if not c.is_group),
                "Chat": len(self.inst.chats),
            },
        }


class Registry:
    """Evolution-side state per world instance, created lazily for instances the world got
    some other way (the control API, the in-process sandbox provider)."""

    def __init__(self) -> None:
        self._by_name: dict[str, EvoInstance] = {}

    def add(self, inst: SimInstance, **fields: Any) -> EvoInstance:
        evo = EvoInstance(inst=inst, instance_id=str(uuid.uuid4()), **fields)
        self._by_name[inst.name] = evo
        return evo

    def of(self, inst: SimInstance) -> EvoInstance:
        evo = self._by_name.get(inst.name)
        # A name reused after a delete is a new instance: never inherit the old row.
        if evo is None or evo.inst is not inst:
            evo = EvoInstance(inst=inst, instance_id=str(uuid.uuid5(uuid.NAMESPACE_URL, inst.name)))
            self._by_name[inst.name] = evo
        return evo

    def forget(self, name: str) -> None:
        self._by_name.pop(name, None)

    def all(self) -> list[EvoInstance]:
        return list(self._by_name.values())
