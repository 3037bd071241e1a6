"""A webhook body read as JSON without recursion: subtrees nested past a depth are dropped.

`json.loads` recurses once per level and raises RecursionError past about a thousand, which
surfaced as a 500 the gateway retried forever. No gateway nests a real event that deep (a
message with quotes in quotes stays under twenty levels), so what lies deeper than
`MAX_DEPTH` is read as `null` before parsing: the event and its message, found at their
usual depth, are still stored. A body that cannot be balanced is not JSON (a 400).
"""

from __future__ import annotations

import json
import re
from typing import Any

MAX_DEPTH = 64

# A string (escapes included, so brackets inside it do not count) or a bracket.
_TOKENS = re.compile(rb'"(?:[^"\\]|\\.)*"|[\[\]{}]', re.DOTALL)
_OPENERS = frozenset(b"[{")


class NotJson(ValueError):
    """The body is not JSON (or its brackets do not balance)."""


def loads_bounded(body: bytes, max_depth: int = MAX_DEPTH) -> Any:
    """`body` parsed as JSON, with every array or object nested deeper than `max_depth`
    read as `null`; NotJson when it is not JSON."""
    try:
        return json.loads(_pruned(body, max_depth))
    except (ValueError, UnicodeDecodeError, RecursionError):
        # RecursionError only for a body the pruner cannot read (not UTF-8 JSON at all).
        raise NotJson("not JSON") from None


def _pruned(body: bytes, max_depth: int) -> bytes:
    if body.count(b"[") + body.count(b"{") <= max_depth:
        return body  # cannot be too deep: no scan
    pieces: list[bytes] = []
    depth = 0
    kept_to = 0  # body[kept_to:] is not in `pieces` yet
    cut_at: int | None = None  # where the subtree being dropped starts
    for match in _TOKENS.finditer(body):
        char = body[match.start()]
        if char == 0x22:  # a string: skipped whole
            continue
        if char in _OPENERS:
            depth += 1
            if depth == max_depth + 1:
                cut_at = match.start()
        else:
            if depth == max_depth + 1 and cut_at is not None:
                pieces += (body[kept_to:cut_at], b"null")
                kept_to, cut_at = match.end(), None
            depth -= 1
            if depth < 0:
                raise NotJson("unbalanced brackets")
    if cut_at is not None or depth != 0:
        raise NotJson("unbalanced brackets")
    if not pieces:
        return body
    pieces.append(body[kept_to:])
    return b"".join(pieces)
