"""The store's text rules: what the databases cannot hold is replaced, the rest kept; names
compare without accents or case."""

from __future__ import annotations

import pytest

from zapsync.providers.webhook_json import MAX_DEPTH, NotJson, loads_bounded
from zapsync.store.text import search_key, storable_text


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("Oi, tudo bem?", "Oi, tudo bem?"),
        ("a\x00b", "ab"),
        ("meio emoji \ud83d", "meio emoji \ufffd"),
        ("\udc00 e \ud83d\ude00", "\ufffd e \ufffd\ufffd"),  # halves stay halves: never joined
        ("emoji inteiro 😀 e ção", "emoji inteiro 😀 e ção"),
    ],
)
def test_storable_text_replaces_only_what_cannot_be_stored(given: str, stored: str) -> None:
    assert storable_text(given) == stored
    stored.encode("utf-8")  # what SQLite and PostgreSQL take


@pytest.mark.parametrize(
    ("name", "key"),
    [
        ("João", "joao"),
        ("JOÃO  CONCEIÇÃO ", "joao conceicao"),
        ("Ângela Müller", "angela muller"),
        ("Straße", "strasse"),
        ("", None),
        (None, None),
    ],
)
def test_search_key_drops_accents_and_case(name: str | None, key: str | None) -> None:
    assert search_key(name) == key


def test_nesting_past_the_limit_is_read_as_null_and_the_rest_kept() -> None:
    deep = "[" * (MAX_DEPTH + 500) + "]" * (MAX_DEPTH + 500)
    doc = loads_bounded(f'{{"a": "[{{ \\" ]", "deep": {deep}, "b": [1, {{"c": 2}}]}}'.encode())
    assert doc["a"] == '[{ " ]' and doc["b"] == [1, {"c": 2}]
    # The object is level 1: its arrays fill levels 2..MAX_DEPTH, the next one is null.
    level, arrays = doc["deep"], 0
    while isinstance(level, list):
        (level,) = level
        arrays += 1
    assert (arrays, level) == (MAX_DEPTH - 1, None)


@pytest.mark.parametrize("body", [b"[" * 5000, b"]" + b"[]" * 100, b'{"a": "' + b"[" * 100])
def test_unbalanced_nesting_is_not_json(body: bytes) -> None:
    with pytest.raises(NotJson):
        loads_bounded(body)
