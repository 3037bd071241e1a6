"""Text at the edge of the store: what the databases cannot hold, and the search form of names.

A gateway relays whatever a phone typed. JSON lets a body carry a lone UTF-16 surrogate
(`"\\ud83d"`, half an emoji cut by a client), which no UTF-8 database can encode, and a NUL
(`"\\u0000"`), which PostgreSQL's text type refuses. Refusing such a message would make the
gateway retry it forever and lose it; `storable_text` keeps everything else and replaces only
what cannot be stored. Every text column of the ingest tables is a `StorableText`/
`StorableString`, so each write (ORM, Core, bulk upsert, COPY) goes through it.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

from sqlalchemy import String, Text
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

REPLACEMENT = "\ufffd"
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def _replace(match: re.Match[str]) -> str:
    # A NUL carries nothing a reader sees; half a surrogate pair was a character once.
    return "" if match.group() == "\x00" else REPLACEMENT


def storable_text(value: str) -> str:
    """`value` with NULs removed and lone surrogates replaced by U+FFFD; the rest as is."""
    if value.isascii():  # O(1) in CPython: the common case costs one flag test
        return value.replace("\x00", "") if "\x00" in value else value
    return _UNSTORABLE.sub(_replace, value)


def storable_or_none(value: str | None) -> str | None:
    return storable_text(value) if value else value


def _bind(value: Any) -> Any:
    # Called for every text value of every row an import writes: the usual ASCII value
    # without a NUL costs two C calls here, nothing more.
    if type(value) is not str or (value.isascii() and "\x00" not in value):
        return value
    return storable_text(value)


class _Storable(TypeDecorator[str]):
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        return _bind(value)

    def bind_processor(self, dialect: Dialect) -> Any:
        # Neither type needs a driver-side processor of its own (plain TEXT and VARCHAR), so
        # `_bind` is the whole processor, without TypeDecorator's wrapping call per value.
        return _bind

    def coerce_compared_value(self, op: Any, value: Any) -> Any:
        return self


class StorableText(_Storable):
    """TEXT whose values are made storable on the way in (see `storable_text`)."""

    impl = Text
    cache_ok = True  # read from each class's own namespace


class StorableString(_Storable):
    """VARCHAR(n) whose values are made storable on the way in (see `storable_text`)."""

    impl = String
    cache_ok = True


_SPACES = re.compile(r"\s+")


def search_key(value: str | None) -> str | None:
    """A name as search compares it: accents dropped, case folded, spaces collapsed.

    "João", "JOÃO" and "joao" give "joao", on both engines alike (SQLite's lower() folds
    ASCII only, and neither engine drops accents without an extension).
    """
    if not value:
        return None
    decomposed = unicodedata.normalize("NFKD", storable_text(value))
    bare = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    key = _SPACES.sub(" ", bare.casefold()).strip()
    return key[:200] or None


def clip(value: str | None, length: int) -> str | None:
    """Fit a gateway string into its column (PostgreSQL refuses longer values)."""
    return value[:length] if value else value
