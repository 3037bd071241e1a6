"""Re-encrypt stored credentials under the current ZAPSYNC_SECRET_KEY, once at start-up.

Every column whose `info` is `store.models.ENCRYPTED` is read; a value written under an old
key (one of ZAPSYNC_OLD_SECRET_KEYS, or the sha256-derived key of earlier versions) is
rewritten under the current one. A value already current is left alone, so a second run
changes nothing. The write is conditional on the value still being the one read: a config
saved meanwhile (or another replica rotating at the same time) is never overwritten.
Values no key opens are counted and left as they are; no value is ever logged.
"""

from __future__ import annotations

from dataclasses import dataclass

import structlog
from sqlalchemy.exc import SQLAlchemyError

from zapsync.security.crypto import Cipher, CredentialsUnreadable
from zapsync.store.credentials import encrypted_columns, replace_token, stored_tokens
from zapsync.store.db import Database

log = structlog.get_logger(__name__)


@dataclass
class RotationReport:
    checked: int = 0
    rotated: int = 0
    unreadable: int = 0


async def rotate_stored_credentials(db: Database, cipher: Cipher) -> RotationReport:
    """Best effort: a database that cannot be read now leaves the values as they are (they
    still open under the old keys) and is tried again at the next start."""
    report = RotationReport()
    try:
        await _rotate(db, cipher, report)
    except SQLAlchemyError as exc:
        log.warning(
            "stored credentials not rotated: the database failed",
            error=f"{exc.__class__.__name__}: {str(exc).splitlines()[0][:200]}",
            rotated=report.rotated,
        )
        return report
    log.info(
        "stored credentials checked",
        checked=report.checked,
        rotated=report.rotated,
        unreadable=report.unreadable,
    )
    return report


async def _rotate(db: Database, cipher: Cipher, report: RotationReport) -> None:
    for column in encrypted_columns():
        async with db.session() as session:
            for row_id, token in await stored_tokens(session, column):
                report.checked += 1
                if cipher.is_current(token):
                    continue
                try:
                    fresh = cipher.rotate(token)
                except CredentialsUnreadable:
                    report.unreadable += 1
                    log.warning(
                        "stored credentials unreadable with every configured key",
                        table=column.table_name,
                        row_id=row_id,
                    )
                    continue
                await replace_token(session, column, row_id, token, fresh)
                report.rotated += 1
            await session.commit()
