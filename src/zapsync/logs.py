"""structlog set-up: readable lines by default, JSON with ZAPSYNC_LOG_FORMAT=json.

Every line carries the request id bound in `api/request_id.py`; secrets are masked. The
libraries' lines (uvicorn, httpx, SQLAlchemy, Socket.IO…) reach the one root handler, whose
structlog `ProcessorFormatter` runs them through the same processors as zapsync's own lines
(masking included) and the same renderer, so a JSON log is JSON on every line. Both kinds
leave through one writer. `ZAPSYNC_LOG_LEVEL` sets zapsync's level; a library says more than
INFO (the chatty ones more than WARNING) only when named in `ZAPSYNC_DEBUG_LOGGERS`: their
debug output holds SQL parameters, packets and bodies."""

from __future__ import annotations

import logging
import re
import sys
import threading
from collections.abc import Collection, MutableMapping
from typing import Any

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

# Shorter strings cannot hold any of the above (the shortest: `token=` and 4 characters).
_SHORTEST_SECRET = 10

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
        elif isinstance(value, str) and len(value) >= _SHORTEST_SECRET:
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


class _Output:
    """The one writer of log lines, zapsync's and the libraries': under one lock, so lines
    from threads (aiosqlite's, a test server's) never interleave, to the `sys.stdout` of the
    moment (a redirected stream, a test's capture)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()

    def write(self, line: str) -> None:
        with self._lock:
            sys.stdout.write(line + "\n")
            sys.stdout.flush()


_OUTPUT = _Output()


class _LineLogger:
    """structlog's end of zapsync's own lines: straight to the output, not through `logging`
    (a stdlib record per line more than doubled the cost of a line)."""

    def msg(self, message: str) -> None:
        _OUTPUT.write(message)

    debug = info = warning = warn = error = critical = exception = fatal = log = msg


class _LibraryHandler(logging.Handler):
    """The root handler: library records, masked and rendered like zapsync's own lines."""

    _zapsync = True

    def emit(self, record: logging.LogRecord) -> None:
        try:
            _OUTPUT.write(self.format(record))
        except Exception:
            self.handleError(record)


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
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    if fmt == "json":  # tracebacks as one string field (the console renderer draws its own)
        shared.append(structlog.processors.format_exc_info)
    shared.append(_mask_secrets)
    structlog.configure(
        processors=[*shared, renderer],
        logger_factory=lambda *_: _LineLogger(),
        wrapper_class=structlog.make_filtering_bound_logger(own_level),
        cache_logger_on_first_use=False,
    )
    handler = _LibraryHandler()
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[structlog.stdlib.add_logger_name, *shared],
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
        )
    )
    handler.addFilter(_NoStoredData())
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, "_zapsync", False)]:
        root.removeHandler(old)  # configured again (another app in the same process)
    root.addHandler(handler)
    root.setLevel(max(own_level, logging.INFO))
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
