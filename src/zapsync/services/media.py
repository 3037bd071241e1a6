"""Media agents send: which types WhatsApp takes, uploaded files kept under
`data_dir/media/`, and the signature of the URL a gateway fetches them from.

The gateway downloads the file itself and cannot carry a zapsync token, so an upload is
reachable by a signed URL (the API builds it, `api/media_urls.py`): the name is random and the
signature (itsdangerous' timestamped HMAC of the name under the secret key) proves zapsync
issued it, for `ZAPSYNC_MEDIA_URL_HOURS` (a leaked URL stops working). A token of the owning
organization opens it at any time.
"""

from __future__ import annotations

import asyncio
import mimetypes
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import BinaryIO
from urllib.parse import urlsplit

from itsdangerous import BadSignature, SignatureExpired, TimestampSigner

from zapsync.services.errors import (
    Forbidden,
    Gone,
    Invalid,
    NotFound,
    ServiceError,
    TooLarge,
    UnsupportedMedia,
)
from zapsync.settings import Settings

MEDIA_TYPES = ("image", "video", "audio", "document")
# What WhatsApp accepts per message type; a document may be any file.
ALLOWED: dict[str, frozenset[str]] = {
    "image": frozenset({"image/jpeg", "image/png", "image/webp"}),
    "video": frozenset({"video/mp4", "video/3gpp"}),
    "audio": frozenset(
        {"audio/ogg", "audio/opus", "audio/mpeg", "audio/mp4", "audio/aac", "audio/amr"}
    ),
}
_MAGIC = {
    "image/jpeg": (b"\xff\xd8\xff",),
    "image/png": (b"\x89PNG\r\n\x1a\n",),
}
_MIME = re.compile(r"^[a-z0-9][\w.+-]*/[\w.+-]+$")
NAME = re.compile(r"^(?P<org>\d+)-[A-Za-z0-9_-]{22}(\.[a-z0-9]{1,10})?$")
CHUNK = 1024 * 1024


@dataclass(frozen=True, slots=True)
class StoredMedia:
    name: str
    url: str
    mime_type: str
    size: int


def max_bytes(settings: Settings) -> int:
    return int(settings.max_upload_mb * 1024 * 1024)


def media_dir(settings: Settings) -> Path:
    return settings.data_dir / "media"


def normalize_mime(value: str | None) -> str | None:
    """`Image/PNG; charset=x` -> `image/png`; None for empty or malformed values."""
    if not value:
        return None
    mime = value.split(";", 1)[0].strip().lower()
    return mime if _MIME.match(mime) else None


def guess_mime(file_name: str | None) -> str | None:
    return normalize_mime(mimetypes.guess_type(file_name)[0]) if file_name else None


def kind_of(mime: str | None) -> str:
    """The message type a file of `mime` is sent as when the client did not say."""
    for kind, allowed in ALLOWED.items():
        if mime in allowed:
            return kind
    return "document"


def check_type(kind: str, mime: str | None) -> None:
    """Refuse (UnsupportedMedia) a file WhatsApp would not take as a `kind` message."""
    if kind not in MEDIA_TYPES:
        raise Invalid(f"a file is sent as one of {', '.join(MEDIA_TYPES)}, not {kind!r}")
    allowed = ALLOWED.get(kind)
    if allowed is None:
        return
    if mime not in allowed:
        given = f"a {mime} file" if mime else "a file of unknown type"
        raise UnsupportedMedia(
            f"{given} cannot be sent as {kind}; {kind} takes {', '.join(sorted(allowed))}"
        )


def check_url_media(kind: str, url: str, mime: str | None) -> str | None:
    """The MIME type of media sent by URL (as given, else guessed from the URL's path)."""
    mime = normalize_mime(mime) or guess_mime(PurePosixPath(urlsplit(url).path).name)
    if mime is not None:
        check_type(kind, mime)
    return mime


_SALT = "zapsync.media-url"


class _IssuedAt(TimestampSigner):
    """A signer whose clock is given: URLs issued at a known time (tests, and nothing else)."""

    def __init__(self, secret_key: str, issued_at: int) -> None:
        super().__init__(secret_key, salt=_SALT)
        self._issued_at = issued_at

    def get_timestamp(self) -> int:
        return self._issued_at


def _signer(secret_key: str, issued_at: int | None = None) -> TimestampSigner:
    if issued_at is None:
        return TimestampSigner(secret_key, salt=_SALT)
    return _IssuedAt(secret_key, issued_at)


def sign(secret_key: str, name: str, *, issued_at: int | None = None) -> str:
    """The `sig` of a media URL: `<timestamp>.<hmac>` (the name is the URL's path)."""
    token = _signer(secret_key, issued_at).sign(name).decode()
    return token[len(name) + 1 :]


def signature_refusal(
    secret_key: str, name: str, sig: str, max_age_seconds: int
) -> ServiceError | None:
    """None for a URL zapsync issued less than `max_age_seconds` ago; else why not: Gone
    (expired) or Forbidden (anything else: forged, cut, another file's, not even ASCII)."""
    try:
        _signer(secret_key).unsign(f"{name}.{sig}", max_age=max_age_seconds)
    except SignatureExpired:
        return Gone(
            "this media URL has expired (ZAPSYNC_MEDIA_URL_HOURS); "
            "open it with a token or send the file again"
        )
    except BadSignature:
        return Forbidden("this media URL's signature is not valid")
    return None


def url_lifetime_seconds(settings: Settings) -> int:
    return int(settings.media_url_hours * 3600)


def owner_of(name: str) -> int | None:
    found = NAME.match(name)
    return int(found["org"]) if found else None


def path_of(settings: Settings, name: str) -> Path:
    """The stored file called `name`; 404 for anything else (no path ever leaves the folder)."""
    path = media_dir(settings) / name
    if owner_of(name) is None or not path.is_file():
        raise NotFound(f"no media called {name!r}")
    return path


def _extension(mime: str, file_name: str | None) -> str:
    ext = mimetypes.guess_extension(mime) or ""
    if not ext and file_name:
        ext = PurePosixPath(file_name).suffix.lower()
    return ext if re.fullmatch(r"\.[a-z0-9]{1,10}", ext) else ""


def _copy(source: BinaryIO, target: Path, limit: int, mime: str) -> int:
    """Copy at most `limit` bytes; refuse a bigger file or an image that is not one."""
    size = 0
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        with target.open("xb") as out:
            while chunk := source.read(CHUNK):
                if size == 0 and mime in _MAGIC and not chunk.startswith(_MAGIC[mime]):
                    raise UnsupportedMedia(f"the file is not a {mime} image")
                if mime == "image/webp" and size == 0 and chunk[8:12] != b"WEBP":
                    raise UnsupportedMedia("the file is not an image/webp image")
                size += len(chunk)
                if size > limit:
                    raise TooLarge(
                        f"the file is larger than the {limit / 1024 / 1024:g} MB limit "
                        "(ZAPSYNC_MAX_UPLOAD_MB)"
                    )
                out.write(chunk)
    except BaseException:
        target.unlink(missing_ok=True)
        raise
    if size == 0:
        target.unlink(missing_ok=True)
        raise UnsupportedMedia("the file is empty")
    return size


async def store_upload(
    settings: Settings,
    url_of: Callable[[str], str],
    organization_id: int,
    source: BinaryIO,
    *,
    kind: str,
    mime: str,
    file_name: str | None,
) -> StoredMedia:
    """Keep an uploaded file (after `check_type`) and return the URL to send it by
    (`url_of(name)`: the caller knows where files are served)."""
    name = f"{organization_id}-{secrets.token_urlsafe(16)}{_extension(mime, file_name)}"
    target = media_dir(settings) / name
    size = await asyncio.to_thread(_copy, source, target, max_bytes(settings), mime)
    url = url_of(name)
    return StoredMedia(name=name, url=url, mime_type=mime, size=size)


def discard(settings: Settings, name: str) -> None:
    (media_dir(settings) / name).unlink(missing_ok=True)
