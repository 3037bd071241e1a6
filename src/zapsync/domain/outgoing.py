"""A message an agent asked to send, as the sending use case takes it (the API checks its
shape; the use case checks what needs the database or the network)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

OutgoingType = Literal["text", "image", "video", "audio", "document"]


@dataclass(frozen=True, slots=True)
class OutgoingMessage:
    """Text (`content`), or media the gateway fetches from `url`."""

    type: OutgoingType
    content: str | None = None
    url: str | None = None
    caption: str | None = None
    file_name: str | None = None
    mime_type: str | None = None
