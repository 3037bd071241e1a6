"""Telling "the database cannot be reached" apart from other failures, in one line that names
DATABASE_URL with its password masked."""

from __future__ import annotations

import re

_LAST_CLAUSE = re.compile(r".*:\s+")


def masked_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # unparseable: say nothing of it that could be a secret
        return "<unreadable URL>"


def connection_error(url: str) -> BaseException | None:
    """Why a fresh connection to `url` fails, or None when it opens."""
    from zapsync.store.db import make_sync_engine

    engine = make_sync_engine(url)
    try:
        with engine.connect():
            return None
    except Exception as exc:
        return exc
    finally:
        engine.dispose()


def reason(exc: BaseException) -> str:
    """The driver's own last words, short: "connection refused", "database "x" does not
    exist", "unable to open database file"."""
    cause = getattr(exc, "orig", None) or exc
    lines = str(cause).strip().splitlines() or [cause.__class__.__name__]
    short = _LAST_CLAUSE.sub("", lines[0]).strip() or lines[0].strip()
    return (short[:1].lower() + short[1:])[:200]


def unreachable_message(url: str, exc: BaseException) -> str:
    return f"cannot reach the database at DATABASE_URL={masked_url(url)} ({reason(exc)})"
