"""Content fingerprints: the hash stored beside every external ref must not change when nothing
the record holds changed, across releases too: a fingerprint that came out differently after an
upgrade would make the next pull rewrite every contact as "updated"."""

from __future__ import annotations

import hashlib
import json
import random
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum
from typing import Any

import pytest

from zapsync.connectors.fingerprints import content_fingerprint


def _json_fingerprint(fields: dict[str, Any]) -> str:
    """How every fingerprint stored so far was made: `json.dumps`, sorted and compact."""
    text = json.dumps(fields, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


RECORDS = [
    {"id": "1", "name": "João da Silva", "email": None, "phone_number": "+5511987654321"},
    {"name": 'Ana "Aninha" \\ Souza', "tags": ["vip", "são paulo"], "count": 3, "ok": True},
    {"nested": {"b": {"z": 1, "a": [1, 2, {"y": None, "x": False}]}, "a": ""}},
    {"text": "linha 1\nlinha 2\ttab\r\x00\x01\x1f\x7f fim", "emoji": "🙂👍🏽", "zw": "a\u200bb"},
    {"floats": [0.1, 1.5, -2.25, 3.0, 1234.5678, 0.0], "big": 2**62, "neg": -(2**40)},
    {"line_separators": "\u2028\u2029", "html": "<b>&amp;</b>", "slash": "a/b"},
    {},
]


@pytest.mark.parametrize("record", RECORDS)
def test_a_fingerprint_is_the_one_json_made(record: dict[str, Any]) -> None:
    assert content_fingerprint(record) == _json_fingerprint(record)


def test_random_text_fingerprints_are_the_ones_json_made() -> None:
    rng = random.Random(13)
    alphabet = [chr(c) for c in range(0, 0x250)] + ["🙂", "\u2028", "\ufeff", "ç", "ã"]
    for _ in range(500):
        record = {
            "".join(rng.choices(alphabet, k=rng.randint(1, 6))): "".join(
                rng.choices(alphabet, k=rng.randint(0, 30))
            )
            for _ in range(rng.randint(1, 5))
        }
        assert content_fingerprint(record) == _json_fingerprint(record), record


def test_key_order_and_spacing_never_count_as_a_change() -> None:
    one = {"a": 1, "b": {"c": [1, 2], "d": "x"}}
    other = json.loads('{ "b" : { "d" : "x", "c" : [ 1, 2 ] }, "a" : 1 }')
    assert content_fingerprint(one) == content_fingerprint(other)
    assert content_fingerprint(one) != content_fingerprint({**one, "a": 2})


class Status(Enum):
    OPEN = "open"


@dataclass(frozen=True)
class Mapped:
    name: str
    status: Status
    seen_at: datetime
    labels: frozenset[str]


def test_mapped_records_hash_their_values_as_written_before() -> None:
    seen = datetime(2026, 12, 1, 12, 30, 15, 123456, tzinfo=UTC)
    record = Mapped("Zé", Status.OPEN, seen, frozenset({"b", "a"}))
    as_before = {"name": "Zé", "status": "open", "seen_at": seen.isoformat(), "labels": ["a", "b"]}
    assert content_fingerprint(record) == _json_fingerprint(as_before)
    assert content_fingerprint(record, exclude=frozenset({"seen_at"})) == _json_fingerprint(
        {k: v for k, v in as_before.items() if k != "seen_at"}
    )


def test_what_orjson_refuses_is_still_fingerprinted() -> None:
    huge = {"id": 2**70, "name": "x"}
    assert content_fingerprint(huge) == _json_fingerprint(huge)
