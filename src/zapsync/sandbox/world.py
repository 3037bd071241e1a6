"""A simulated WhatsApp world: instances (phones), their connection, chats and messages.

Dialect front ends (`sandbox/dialects/`) render this world in one gateway's HTTP shapes;
the in-process `sandbox` provider reads it directly. State changes are announced to
listeners as neutral `WorldEvent`s, which each dialect turns into its own webhooks.
"""

from __future__ import annotations

import itertools
import secrets
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class LinkState(StrEnum):
    """The simulated socket between a gateway instance and WhatsApp."""

    STOPPED = "stopped"  # never started, dropped, or logged out
    STARTING = "starting"
    QR = "qr"  # waiting for a scan
    OPEN = "open"
    FAILED = "failed"


class Fault(StrEnum):
    NONE = "none"
    TIMEOUT = "timeout"  # the gateway never answers in time
    ERROR = "error"  # 5xx
    MALFORMED = "malformed"  # 200 with a body that is not the contract


# Slots: a seeded world holds every message (200k in the import benchmark), and an import
# reads each one; slotted, they take less memory and are quicker to read.
@dataclass(slots=True)
class SimMessage:
    id: str
    chat_jid: str
    from_me: bool
    timestamp: int  # seconds
    type: str = (
        "text"  # text|image|video|audio|ptt|document|sticker|location|contact|reaction|<other>
    )
    body: str | None = None
    ack: int = 1  # 0 pending, 1 server, 2 device, 3 read, 4 played, -1 error
    sender_jid: str | None = None
    push_name: str | None = None
    chat_alt_jid: str | None = None
    media_url: str | None = None
    mime_type: str | None = None
    file_name: str | None = None
    reaction_to: str | None = None


@dataclass
class SimChat:
    jid: str
    name: str | None = None
    is_group: bool = False
    alt_jid: str | None = None  # the phone JID of an @lid chat, when WhatsApp shares it
    messages: list[SimMessage] = field(default_factory=list)  # oldest first

    @property
    def last_timestamp(self) -> int:
        return self.messages[-1].timestamp if self.messages else 0

    @property
    def unread(self) -> int:
        """Incoming messages after our last reply that nobody read yet (what the phone shows)."""
        count = 0
        for msg in reversed(self.messages):
            if msg.from_me:
                break
            if msg.ack < 3:
                count += 1
        return count


@dataclass
class WebhookConfig:
    url: str
    headers: dict[str, str] = field(default_factory=dict)
    hmac_key: str | None = None
    events: list[str] = field(default_factory=list)


@dataclass
class WorldEvent:
    instance: SimInstance
    kind: str  # status | qr | message | ack | edit | revoke | contact | chat | history
    data: dict[str, Any]


@dataclass
class SimInstance:
    name: str
    token: str = field(default_factory=lambda: secrets.token_hex(16))
    phone: str | None = None  # the paired phone number, digits only
    push_name: str = "Sandbox"
    state: LinkState = LinkState.STOPPED
    logged_out: bool = True  # no paired device yet
    qr_code: str | None = None
    qr_count: int = 0
    zombie: bool = False  # reports OPEN, sends nothing, emits nothing
    chats: dict[str, SimChat] = field(default_factory=dict)
    webhook: WebhookConfig | None = None
    sent: list[SimMessage] = field(default_factory=list)
    # The phone's address book: saved names by JID (a chat's own name is what WhatsApp said).
    contacts: dict[str, str] = field(default_factory=dict)
    created_at: float = field(default_factory=time.time)
    # The files of media messages by message id, as the gateway keeps them; one taken away
    # is media the gateway "no longer has". `media_downloads` counts what was handed out.
    media: dict[str, bytes] = field(default_factory=dict)
    media_downloads: int = 0


Listener = Callable[[WorldEvent], None]

_ids = itertools.count(1)


def new_message_id() -> str:
    return f"3EB0{next(_ids):012X}{secrets.token_hex(2).upper()}"


class World:
    """All simulated instances of one sandbox, plus its fault and latency knobs."""

    def __init__(self) -> None:
        self.instances: dict[str, SimInstance] = {}
        self.listeners: list[Listener] = []
        self.fault: Fault = Fault.NONE
        self.latency_ms: int = 0
        # A wait after the request was handled, before its answer: the gateway did the work
        # (a send went out) and the caller may die or time out before it learns so.
        self.answer_latency_ms: int = 0
        self.hang_seconds: float = 30.0  # how long a TIMEOUT fault keeps a request waiting
        self.requests: int = 0
        # Set in a process that does not hold the world its sessions were made in (a
        # `zapsync worker`): why its gateway cannot answer, rather than "no such instance".
        self.out_of_reach: str | None = None

    # --- events -------------------------------------------------------------

    def subscribe(self, listener: Listener) -> None:
        self.listeners.append(listener)

    def emit(self, inst: SimInstance, kind: str, **data: Any) -> None:
        if inst.zombie and kind != "status":
            return
        for listener in self.listeners:
            listener(WorldEvent(inst, kind, data))

    # --- instances ----------------------------------------------------------

    def create(self, name: str, token: str | None = None) -> SimInstance:
        inst = SimInstance(name=name)
        if token:
            inst.token = token
        self.instances[name] = inst
        return inst

    def get(self, name: str) -> SimInstance | None:
        return self.instances.get(name)

    def delete(self, name: str) -> None:
        self.instances.pop(name, None)

    def _set_state(self, inst: SimInstance, state: LinkState, reason: int | None = None) -> None:
        inst.state = state
        self.emit(inst, "status", state=state.value, reason=reason)

    def start(self, inst: SimInstance) -> None:
        """Open the socket: straight to OPEN if a device is paired, else show a QR."""
        if inst.state is LinkState.OPEN:
            return
        if not inst.logged_out:
            self._set_state(inst, LinkState.OPEN, 200)
            return
        inst.qr_count += 1
        inst.qr_code = f"2@{secrets.token_urlsafe(24)},{secrets.token_urlsafe(16)},{inst.qr_count}"
        self._set_state(inst, LinkState.QR)
        self.emit(inst, "qr", code=inst.qr_code)

    def scan(self, inst: SimInstance, phone: str = "5511900000001", push_name: str = "") -> None:
        """A person scans the QR with their phone: the instance pairs and opens."""
        if inst.state is not LinkState.QR:
            raise ValueError(f"instance {inst.name} shows no QR code (state {inst.state})")
        inst.phone = phone
        inst.push_name = push_name or inst.push_name
        inst.logged_out = False
        inst.qr_code = None
        self._set_state(inst, LinkState.OPEN, 200)

    def drop(self, inst: SimInstance, *, silent: bool = True) -> None:
        """The link to WhatsApp is lost without a logout (network, phone off, 428/515)."""
        inst.state = LinkState.STOPPED
        if not silent:
            self.emit(inst, "status", state=LinkState.STOPPED.value, reason=428)

    def logout(self, inst: SimInstance) -> None:
        inst.logged_out = True
        inst.qr_code = None
        self._set_state(inst, LinkState.STOPPED, 401)

    def set_zombie(self, inst: SimInstance, zombie: bool) -> None:
        inst.zombie = zombie
        if zombie:
            inst.state = LinkState.OPEN

    # --- chats and messages -------------------------------------------------

    def save_contact(self, inst: SimInstance, jid: str, name: str) -> None:
        """The phone's owner saves `jid` in their address book as `name`."""
        inst.contacts[jid] = name
        self.emit(inst, "contact", jid=jid, name=name)

    def add_chat(
        self, inst: SimInstance, jid: str, name: str | None = None, alt_jid: str | None = None
    ) -> SimChat:
        chat = inst.chats.get(jid)
        if chat is None:
            chat = SimChat(jid=jid, name=name, is_group=jid.endswith("@g.us"), alt_jid=alt_jid)
            inst.chats[jid] = chat
        return chat

    def add_message(self, inst: SimInstance, msg: SimMessage, *, notify: bool = True) -> SimMessage:
        chat = self.add_chat(inst, msg.chat_jid, msg.push_name if not msg.from_me else None)
        if msg.chat_alt_jid is None:
            msg.chat_alt_jid = chat.alt_jid
        chat.messages.append(msg)
        if notify:
            self.emit(inst, "message", message=msg)
        return msg

    def inbound(self, inst: SimInstance, chat_jid: str, body: str, **extra: Any) -> SimMessage:
        msg = SimMessage(
            id=extra.pop("id", None) or new_message_id(),
            chat_jid=chat_jid,
            from_me=False,
            timestamp=extra.pop("timestamp", None) or int(time.time()),
            body=body,
            ack=2,
            **extra,
        )
        return self.add_message(inst, msg)

    def send(self, inst: SimInstance, to_jid: str, body: str | None, **extra: Any) -> SimMessage:
        """A message sent through the gateway's API. Raises when the link is not open."""
        if inst.state is not LinkState.OPEN or inst.zombie:
            raise ConnectionError("Connection Closed")
        msg = SimMessage(
            id=new_message_id(),
            chat_jid=to_jid,
            from_me=True,
            timestamp=int(time.time()),
            body=body,
            ack=1,
            **extra,
        )
        inst.sent.append(msg)
        self.add_message(inst, msg)
        return msg

    def read(
        self, inst: SimInstance, chat_jid: str, ids: Iterable[str] | None = None
    ) -> list[SimMessage]:
        """Read receipts sent through the gateway's API: the chat's incoming messages (those in
        `ids`, or every unread one) become read, and are returned. Raises when the link is not
        open."""
        if inst.state is not LinkState.OPEN or inst.zombie:
            raise ConnectionError("Connection Closed")
        wanted = None if ids is None else set(ids)
        chat = inst.chats.get(chat_jid)
        read: list[SimMessage] = []
        for msg in chat.messages if chat else []:
            if not msg.from_me and msg.ack < 3 and (wanted is None or msg.id in wanted):
                msg.ack = 3
                read.append(msg)
        return read

    def attach_media(self, inst: SimInstance, message_id: str, data: bytes) -> None:
        inst.media[message_id] = data

    def forget_media(self, inst: SimInstance, message_id: str) -> None:
        """The gateway loses the file (WhatsApp's CDN expired it); the message stays."""
        inst.media.pop(message_id, None)

    def download_media(self, inst: SimInstance, message_id: str) -> tuple[SimMessage, bytes] | None:
        """A media message and its file, as a gateway's download route hands them out."""
        data = inst.media.get(message_id)
        msg = next((m for c in inst.chats.values() for m in c.messages if m.id == message_id), None)
        if data is None or msg is None:
            return None
        inst.media_downloads += 1
        return msg, data

    def set_ack(self, inst: SimInstance, chat_jid: str, message_id: str, ack: int) -> None:
        chat = inst.chats.get(chat_jid)
        if chat is not None:
            for msg in chat.messages:
                if msg.id == message_id:
                    msg.ack = ack
        self.emit(inst, "ack", chat_jid=chat_jid, message_id=message_id, ack=ack)

    def seed(
        self,
        inst: SimInstance,
        *,
        chats: int,
        groups: int = 0,
        empty: int = 0,
        messages: int = 0,
        status_broadcast: bool = False,
        days: int = 10,
    ) -> None:
        """Fill an instance with `chats` chats (of which `groups` are groups and `empty` have no
        message) and `messages` messages spread over the non-empty chats within `days` days."""
        now = int(time.time())
        jids: list[str] = []
        for i in range(chats):
            jid = f"1203630{i:011d}@g.us" if i < groups else f"55119{i:08d}@s.whatsapp.net"
            chat = self.add_chat(inst, jid, name=f"Chat {i}")
            if i >= chats - empty:
                continue
            jids.append(chat.jid)
        if status_broadcast:
            jids.append(self.add_chat(inst, "status@broadcast", name="status").jid)
        if not jids:
            return
        span = max(days * 86400 - 60, 1)
        for n in range(messages):
            jid = jids[n % len(jids)]
            ts = now - span + (n * span) // max(messages, 1)
            chat = inst.chats[jid]
            chat.messages.append(
                SimMessage(
                    id=f"SEED{inst.name[:6]}{n:08d}",
                    chat_jid=jid,
                    from_me=n % 3 == 0,
                    timestamp=ts,
                    body=f"message {n}",
                    ack=3,
                    sender_jid=f"55119{n % 97:08d}@s.whatsapp.net" if chat.is_group else None,
                    push_name=chat.name,
                )
            )
