"""Content fingerprints of mapped records, for any connector's anti-duplication.

A pull stores the fingerprint beside the external ref; the next pull maps the record again and
compares: the same fingerprint means nothing that zapsync keeps has changed (skip), a different
one means update. The hash covers values only as mapped, so key order, JSON spacing or fields
zapsync does not keep never count as a change."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Mapping
from datetime import datetime
from enum import Enum
from typing import Any

import orjson

# sha256 hex: exactly the width of `external_refs.fingerprint`.
FINGERPRINT_LENGTH = 64


def content_fingerprint(record: Any, *, exclude: frozenset[str] = frozenset()) -> str:
    """A stable hash of a mapped record (a dataclass or a mapping), keys sorted at every depth."""
    fields = _as_mapping(record)
    kept = {k: v for k, v in fields.items() if k not in exclude} if exclude else fields
    return hashlib.sha256(_canonical(kept)).hexdigest()


def _canonical(fields: Mapping[str, Any]) -> bytes:
    """Compact JSON, keys sorted, UTF-8: orjson's bytes, which are `json.dumps`'s for what
    records hold (tests/connectors/test_fingerprints.py) at a tenth of its cost; what orjson
    refuses (an int beyond 64 bits, a key that is not text) is written by `json`."""
    try:
        return orjson.dumps(fields, default=_plain, option=orjson.OPT_SORT_KEYS)
    except (TypeError, orjson.JSONEncodeError):
        text = json.dumps(
            fields, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=_plain
        )
        return text.encode("utf-8")


def _as_mapping(record: Any) -> Mapping[str, Any]:
    if type(record) is dict:  # the common case, before the costlier dataclass check
        return record
    if dataclasses.is_dataclass(record) and not isinstance(record, type):
        return {f.name: getattr(record, f.name) for f in dataclasses.fields(record)}
    if isinstance(record, Mapping):
        return record
    raise TypeError(f"cannot fingerprint a {type(record).__name__}")


def _plain(value: Any) -> Any:
    """JSON for what `json` cannot write itself; tuples and lists already agree."""
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, datetime):
        return value.isoformat()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dict(_as_mapping(value))
    if isinstance(value, (set, frozenset)):
        return sorted(value, key=repr)
    raise TypeError(f"cannot fingerprint a {type(value).__name__}")
