"""The built-in `sandbox` gateway: the simulated world in this process, no HTTP.

Its events do not travel as webhooks; `payloads.events_of` turns a WorldEvent into the same
typed events a webhook parser returns, and the app feeds them to the same service."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import UTC, datetime

from zapsync.domain.gateway import (
    Chat,
    InstanceInfo,
    LiveState,
    Message,
    QrCode,
    SentMessage,
    WebhookEvent,
)
from zapsync.providers.base import (
    UNSIGNED,
    DownloadedMedia,
    ForeignWebhook,
    GatewayRejected,
    GatewayUnavailable,
    InstanceGone,
    MediaGone,
    MediaRef,
    MediaTooLarge,
    MediaToSend,
    SignatureCheck,
    WebhookRejected,
    WebhookTarget,
)
from zapsync.providers.sandbox.payloads import status_of, to_domain
from zapsync.sandbox.world import Fault, LinkState, SimInstance, World


class SandboxGateway:
    provider = "sandbox"

    def __init__(self, world: World, instance: str) -> None:
        self.world = world
        self.instance = instance

    async def _enter(self) -> None:
        """Apply the world's injected latency and faults, as the HTTP dialects do."""
        if self.world.out_of_reach:
            # Unavailable, not gone: the session is fine in the process that holds it.
            raise GatewayUnavailable(self.world.out_of_reach)
        if self.world.latency_ms:
            await asyncio.sleep(self.world.latency_ms / 1000)
        if self.world.fault is Fault.TIMEOUT:
            raise GatewayUnavailable("sandbox gateway timed out")
        if self.world.fault is Fault.ERROR:
            raise GatewayUnavailable("sandbox gateway error 500", status_code=500)
        if self.world.fault is Fault.MALFORMED:
            raise GatewayUnavailable("sandbox gateway sent a body that is not JSON")

    def _inst(self) -> SimInstance:
        inst = self.world.get(self.instance)
        if inst is None:
            raise InstanceGone(f"sandbox instance {self.instance} does not exist", status_code=404)
        return inst

    async def create_instance(self, webhook: WebhookTarget) -> InstanceInfo:
        await self._enter()
        inst = self.world.get(self.instance) or self.world.create(self.instance)
        if inst.state is LinkState.STOPPED:
            self.world.start(inst)
        qr = QrCode(inst.qr_code) if inst.qr_code else None
        return InstanceInfo(self.instance, status_of(inst), qr)

    async def register_webhook(self, webhook: WebhookTarget) -> None:
        await self._enter()

    async def foreign_webhook(self, ours: WebhookTarget) -> ForeignWebhook | None:
        return None  # events reach zapsync in process, not by webhook

    async def remove_webhook(self, ours: WebhookTarget, restore: ForeignWebhook | None) -> None:
        await self._enter()

    async def get_qr(self) -> QrCode:
        await self._enter()
        inst = self._inst()
        if inst.state is LinkState.OPEN:
            raise GatewayRejected("the session is already connected; no QR code to scan")
        # Reading never starts pairing: only `connect` does.
        return QrCode(inst.qr_code if inst.state is LinkState.QR else None)

    async def identity(self) -> str | None:
        return None

    async def get_state(self) -> LiveState:
        await self._enter()
        inst = self._inst()
        return LiveState(status_of(inst), inst.state.value, phone=inst.phone)

    async def connect(self) -> QrCode | None:
        await self._enter()
        inst = self._inst()
        self.world.start(inst)
        return QrCode(inst.qr_code) if inst.state is LinkState.QR and inst.qr_code else None

    async def logout(self) -> None:
        await self._enter()
        self.world.logout(self._inst())

    async def delete(self) -> None:
        await self._enter()
        self.world.delete(self.instance)

    async def list_chats(self, page_size: int = 100) -> AsyncIterator[list[Chat]]:
        await self._enter()
        chats = sorted(self._inst().chats.values(), key=lambda c: c.last_timestamp, reverse=True)
        for start in range(0, len(chats), page_size):
            yield [
                Chat(
                    jid=c.jid,
                    name=c.name,
                    is_group=c.is_group,
                    alt_jid=c.alt_jid,
                    unread_count=c.unread,
                    last_message_at=(
                        datetime.fromtimestamp(c.last_timestamp, UTC) if c.messages else None
                    ),
                )
                for c in chats[start : start + page_size]
            ]

    async def list_messages(
        self, chat_jid: str, since: datetime | None = None, page_size: int = 100
    ) -> AsyncIterator[list[Message]]:
        await self._enter()
        chat = self._inst().chats.get(chat_jid)
        if chat is None:
            return
        floor = since.timestamp() if since else 0
        newest_first = [m for m in reversed(chat.messages) if m.timestamp >= floor]
        for start in range(0, len(newest_first), page_size):
            yield [to_domain(m) for m in newest_first[start : start + page_size]]

    async def send_text(self, to_jid: str, text: str) -> SentMessage:
        await self._enter()
        try:
            msg = self.world.send(self._inst(), to_jid, text)
        except ConnectionError as exc:
            raise GatewayUnavailable(f"sandbox gateway: {exc}") from None
        return SentMessage(msg.id)

    async def send_media(self, to_jid: str, media: MediaToSend) -> SentMessage:
        await self._enter()
        try:
            msg = self.world.send(
                self._inst(),
                to_jid,
                media.caption,
                type=media.type,
                media_url=media.url,
                mime_type=media.mime_type,
                file_name=media.file_name,
            )
        except ConnectionError as exc:
            raise GatewayUnavailable(f"sandbox gateway: {exc}") from None
        return SentMessage(msg.id)

    async def mark_read(self, chat_jid: str, message_ids: Sequence[str]) -> bool:
        await self._enter()
        try:
            self.world.read(self._inst(), chat_jid, message_ids)
        except ConnectionError as exc:
            raise GatewayUnavailable(f"sandbox gateway: {exc}") from None
        return True

    async def download_media(self, ref: MediaRef, max_bytes: int) -> DownloadedMedia:
        await self._enter()
        found = self.world.download_media(self._inst(), ref.provider_message_id)
        if found is None:
            raise MediaGone("the sandbox gateway no longer has this message's media")
        msg, data = found
        if len(data) > max_bytes:
            raise MediaTooLarge(f"the media is larger than {max_bytes} bytes")
        return DownloadedMedia(data, msg.mime_type, msg.file_name)

    def verify_webhook(
        self, headers: Mapping[str, str], body: bytes, signing_key: str
    ) -> SignatureCheck:
        return UNSIGNED

    def parse_webhook(self, body: bytes) -> list[WebhookEvent]:
        raise WebhookRejected("the sandbox provider delivers its events in process, not by webhook")

    async def aclose(self) -> None:
        return None
