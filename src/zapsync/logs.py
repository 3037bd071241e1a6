"""structlog set-up: readable lines by default, JSON with ZAPSYNC_LOG_FORMAT=json.

Every line carries the request id bound in `api/request_id.py`; secrets are masked. zapsync's
own lines and the libraries' (uvicorn, httpx, SQLAlchemy, Socket.IO…) leave through one
stdlib handler whose structlog `ProcessorFormatter` masks and renders both alike, so a JSON
log is JSON on every line. `ZAPSYNC_LOG_LEVEL` sets zapsync's level; a library says more
than INFO (and the chatty ones more than WARNING) only when named in
`ZAPSYNC_DEBUG_LOGGERS`: their debug output holds SQL parameters, packets and bodies."""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Collection, MutableMapping
from typing import Any, TextIO

import structlog

_SECRET_KEYS = re.compile(r"(token|secret|password|api_?key|authorization|credential)", re.I)

# Secrets inside free text (a library's message, an exception, a URL): a key-like name and its
# value, a Bearer credential, zapsync's own tokens, and SHA-256 hex digests (token hashes).
_SECRET_TEXT = re.compile(
    r"(?P<keyed>(?:token|secret|password|passwd|api[_-]?key|authorization|credential|hmac"
    r"|signature)[\w-]*['\"]?\s*[:=]\s*['\"]?(?:bearer\s+)?)[^\s'\"&,;)}\]]+"
    r"|(?P<bearer>\bbearer\s+)[^\s'\"&,;)}\]]+"
    r"|\bzs_[\w-]{8,}"
    r"|\b[0-9a-f]{64}\b",
    re.I,
)

# Libraries that narrate every packet, request or job at INFO: WARNING unless named.
_CHATTY = ("apscheduler", "httpx", "httpcore", "socketio", "engineio", "aiosqlite", "sqlalchemy")


def _mask_text(text: str) -> str:
    def replace(match: re.Match[str]) -> str:
        prefix = match.group("keyed") or match.group("bearer") or ""
        return f"{prefix}***"

    return _SECRET_TEXT.sub(replace, text)


def _mask_secrets(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for key, value in list(event.items()):
        if key != "event" and _SECRET_KEYS.search(key):
            event[key] = "***"
        elif isinstance(value, str):
            event[key] = _mask_text(value)
    return event


class _NoStoredData(logging.Filter):
    """Libraries asked for by name still never print stored data: SQLAlchemy's result rows
    (messages, hashes; its parameters are hidden by the engines) and the arguments aiosqlite
    prints with each call (the SQL parameters again)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name.startswith("sqlalchemy.engine") and str(record.msg).startswith(
            ("Row ", "Col ")
        ):
            return False
        if record.name.startswith("aiosqlite") and record.args:
            record.args = tuple(_callable_name(arg) for arg in record.args)
        return True


def _callable_name(value: object) -> str:
    target = getattr(value, "func", value)  # functools.partial
    return str(getattr(target, "__qualname__", type(target).__name__))


class _StdoutHandler(logging.StreamHandler[TextIO]):
    """Writes to the `sys.stdout` of the moment (a test's capture, a redirected stream)."""

    def __init__(self) -> None:
        super().__init__()

    @property
    def stream(self) -> TextIO:
        return sys.stdout

    @stream.setter
    def stream(self, _: TextIO) -> None:
        pass


def _level(name: str) -> int:
    value = logging.getLevelName(name.upper())
    return value if isinstance(value, int) else logging.INFO


def configure_logging(
    fmt: str = "console", level: str = "INFO", debug_loggers: Collection[str] = ()
) -> None:
    own_level = _level(level)
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    if fmt == "json":  # tracebacks as one string field (the console renderer draws its own)
        shared.append(structlog.processors.format_exc_info)
    shared.append(_mask_secrets)
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.make_filtering_bound_logger(own_level),
        cache_logger_on_first_use=False,
    )
    handler = _StdoutHandler()
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
        )
    )
    handler.addFilter(_NoStoredData())
    handler._zapsync = True  # type: ignore[attr-defined]
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, "_zapsync", False)]:
        root.removeHandler(old)  # configured again (another app in the same process)
    root.addHandler(handler)
    root.setLevel(max(own_level, logging.INFO))
    logging.getLogger("zapsync").setLevel(own_level)
    named = {name.strip() for name in debug_loggers if name.strip()}
    for name in _named_before - named:
        logging.getLogger(name).setLevel(logging.NOTSET)
    _named_before.clear()
    _named_before.update(named)
    for name in _CHATTY:
        if name not in named:
            logging.getLogger(name).setLevel(max(own_level, logging.WARNING))
    for name in named:
        logging.getLogger(name).setLevel(logging.DEBUG)


_named_before: set[str] = set()
