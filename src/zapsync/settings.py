"""Settings from the environment and `.env` (pydantic-settings). A wrong value stops start-up
with one line naming it (see `load_settings`)."""

from __future__ import annotations

import ipaddress
import secrets
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from limits import parse_many
from pydantic import (
    AliasChoices,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

DATA_DIR = Path("data")


class SettingsError(RuntimeError):
    """A setting is missing or wrong; the message names it."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", populate_by_name=True)

    database_url: str = Field(default=f"sqlite+aiosqlite:///{DATA_DIR}/zapsync.db")
    redis_url: str | None = None
    # Who runs the jobs: this process (`embedded`: APScheduler, tasks in process) or
    # Procrastinate workers (`zapsync worker`) on PostgreSQL, scaled out.
    jobs: Literal["embedded", "procrastinate"] = Field(default="embedded", alias="ZAPSYNC_JOBS")
    # Scaled out: a worker silent this long (killed, its machine lost) has its running jobs
    # queued again for another; workers beat three times per period.
    jobs_stalled_seconds: int = Field(default=30, ge=3, alias="ZAPSYNC_JOBS_STALLED_SECONDS")
    secret_key: SecretStr | None = Field(default=None, alias="ZAPSYNC_SECRET_KEY")
    # Secrets ZAPSYNC_SECRET_KEY replaced, comma-separated: what they encrypted still opens
    # (and is re-encrypted under the new one at start-up).
    old_secret_keys: SecretStr | None = Field(default=None, alias="ZAPSYNC_OLD_SECRET_KEYS")
    cron_secret: SecretStr | None = None
    # the scraper's credential for /metrics (which spans every organization); unset: disabled
    metrics_token: SecretStr | None = Field(default=None, alias="ZAPSYNC_METRICS_TOKEN")
    # Where gateways post webhooks; unset: this server's own address (see `default_public_url`).
    public_url: str = Field(default="", alias="ZAPSYNC_PUBLIC_URL")
    host: str = Field(default="127.0.0.1", alias="ZAPSYNC_HOST")
    port: int = Field(default=8000, ge=1, le=65535, alias="ZAPSYNC_PORT")
    # Above the gateways' own keep-alive (Node's agent: 5 s), so they never reuse a connection
    # the server is closing (see api/server.py).
    keepalive_timeout: int = Field(default=75, ge=1, alias="ZAPSYNC_KEEPALIVE_TIMEOUT")
    data_dir: Path = Field(default=DATA_DIR, alias="ZAPSYNC_DATA_DIR")
    log_format: Literal["console", "json"] = Field(default="console", alias="ZAPSYNC_LOG_FORMAT")
    log_level: str = Field(default="INFO", alias="ZAPSYNC_LOG_LEVEL")
    # libraries whose debug output is wanted, comma-separated (it holds SQL, packets, bodies)
    debug_loggers: str = Field(default="", alias="ZAPSYNC_DEBUG_LOGGERS")

    # sessions and status
    max_sessions_per_user: int = Field(default=5, ge=1, alias="ZAPSYNC_MAX_SESSIONS_PER_USER")
    gateway_timeout: float = Field(default=10.0, gt=0, alias="ZAPSYNC_GATEWAY_TIMEOUT")
    # Networks a base_url or media URL may reach although security/urls.py refuses them.
    url_allow_networks: str = Field(default="", alias="ZAPSYNC_URL_ALLOW_NETWORKS")
    status_sync_concurrency: int = Field(default=50, ge=1, alias="ZAPSYNC_STATUS_SYNC_CONCURRENCY")
    status_sync_interval_minutes: int = Field(default=5, ge=1, alias="ZAPSYNC_STATUS_SYNC_MINUTES")
    unreachable_after_failures: int = Field(default=3, ge=1, alias="ZAPSYNC_UNREACHABLE_AFTER")
    heal_max_attempts: int = Field(default=5, ge=0, alias="ZAPSYNC_HEAL_MAX_ATTEMPTS")
    heal_base_delay_seconds: float = Field(default=30.0, ge=0, alias="ZAPSYNC_HEAL_BASE_DELAY")
    # relaying gateway events to the team's webhook that zapsync's replaced (`forward_to`)
    forward_max_attempts: int = Field(default=8, ge=1, alias="ZAPSYNC_FORWARD_MAX_ATTEMPTS")
    forward_base_delay: float = Field(default=2.0, ge=0, alias="ZAPSYNC_FORWARD_BASE_DELAY")

    # webhooks from gateways: bodies, replays, rate limits (`limits` syntax, e.g. "100/second")
    webhook_max_body_mb: float = Field(default=4.0, gt=0, alias="ZAPSYNC_WEBHOOK_MAX_BODY_MB")
    webhook_replay_window: int = Field(default=300, ge=1, alias="ZAPSYNC_WEBHOOK_REPLAY_WINDOW")
    webhook_rate_limit: str = Field(default="3000/second", alias="ZAPSYNC_WEBHOOK_RATE_LIMIT")
    webhook_refusal_limit: str = Field(default="60/minute", alias="ZAPSYNC_WEBHOOK_REFUSAL_LIMIT")
    # failed web logins, counted per e-mail and per client address (`limits` syntax)
    login_failure_limit: str = Field(
        default="5/minute;20/hour", alias="ZAPSYNC_LOGIN_FAILURE_LIMIT"
    )

    # which chats are stored: one rule for the import, webhooks and the sandbox alike
    skip_groups: bool = Field(
        default=True,
        # the old name, from when only the import read it, still works
        validation_alias=AliasChoices(
            "ZAPSYNC_SKIP_GROUPS", "ZAPSYNC_IMPORT_SKIP_GROUPS", "skip_groups"
        ),
    )

    # conversation import (chats and their history, when a session connects or on demand)
    import_skip_empty: bool = Field(default=True, alias="ZAPSYNC_IMPORT_SKIP_EMPTY")
    import_history_days: int = Field(default=30, ge=0, alias="ZAPSYNC_IMPORT_HISTORY_DAYS")

    # maintenance
    session_cleanup_days: int = Field(default=30, ge=1, alias="ZAPSYNC_SESSION_CLEANUP_DAYS")
    conversation_inactive_hours: int = Field(default=24, ge=1, alias="ZAPSYNC_INACTIVE_HOURS")
    scheduler_enabled: bool = Field(default=True, alias="ZAPSYNC_SCHEDULER")
    # the zone daily jobs keep their hour in (02:00 there, summer time or not)
    timezone: str = Field(default="America/Sao_Paulo", alias="ZAPSYNC_TIMEZONE")

    # sending: uploads, the outbox's retries, Socket.IO fan-out across replicas
    max_upload_mb: float = Field(default=16.0, gt=0, alias="ZAPSYNC_MAX_UPLOAD_MB")
    media_url_hours: float = Field(default=4.0, gt=0, alias="ZAPSYNC_MEDIA_URL_HOURS")
    # the largest inbound file zapsync fetches from a gateway to show (services/inbound_media.py)
    inbound_media_max_mb: float = Field(default=16.0, gt=0, alias="ZAPSYNC_INBOUND_MEDIA_MAX_MB")
    # a kept inbound file not viewed for this long is removed by the nightly cleanup (a cache)
    inbound_media_keep_days: float = Field(
        default=30.0, gt=0, alias="ZAPSYNC_INBOUND_MEDIA_KEEP_DAYS"
    )
    outbox_max_attempts: int = Field(default=6, ge=1, alias="ZAPSYNC_OUTBOX_MAX_ATTEMPTS")
    outbox_base_delay: float = Field(default=2.0, ge=0, alias="ZAPSYNC_OUTBOX_BASE_DELAY")
    read_receipts: bool = Field(default=True, alias="ZAPSYNC_READ_RECEIPTS")
    socketio_channel: str = Field(default="zapsync", alias="ZAPSYNC_SOCKETIO_CHANNEL")
    # how soon an open socket notices its token was revoked by another process (the CLI)
    socket_recheck_seconds: float = Field(default=5.0, gt=0, alias="ZAPSYNC_SOCKET_RECHECK_SECONDS")

    # Chatwoot: how long a call may take, the first wait after a 429 (doubled each time), and
    # how often every integration's contacts and conversations are pulled (webhooks missed)
    chatwoot_timeout: float = Field(default=15.0, gt=0, alias="ZAPSYNC_CHATWOOT_TIMEOUT")
    chatwoot_backoff_base: float = Field(default=1.0, ge=0, alias="ZAPSYNC_CHATWOOT_BACKOFF_BASE")
    chatwoot_pull_minutes: int = Field(default=15, ge=1, alias="ZAPSYNC_CHATWOOT_PULL_MINUTES")

    # the built-in sandbox gateway and its demo
    demo: bool = Field(default=False, alias="ZAPSYNC_DEMO")
    # Where the demo's sandbox Chatwoot listens; unset, on the port after ZAPSYNC_PORT.
    demo_chatwoot_port: int | None = Field(
        default=None, ge=1, le=65535, alias="ZAPSYNC_DEMO_CHATWOOT_PORT"
    )

    @field_validator("database_url")
    @classmethod
    def _async_driver(cls, value: str) -> str:
        """Accept the plain URLs people paste and pick the async driver zapsync uses."""
        if value.startswith("sqlite:///"):
            return "sqlite+aiosqlite:///" + value.removeprefix("sqlite:///")
        for prefix in ("postgres://", "postgresql://"):
            if value.startswith(prefix):
                return "postgresql+psycopg://" + value.removeprefix(prefix)
        if not value.startswith(("sqlite+aiosqlite://", "postgresql+psycopg://")):
            raise ValueError("must be an sqlite:/// or postgresql:// URL")
        return value

    @field_validator("webhook_rate_limit", "webhook_refusal_limit", "login_failure_limit")
    @classmethod
    def _rate(cls, value: str) -> str:
        try:
            parse_many(value)
        except ValueError:
            raise ValueError('must be a rate like "100/second" or "10/second;500/minute"') from None
        return value

    @field_validator("public_url")
    @classmethod
    def _no_trailing_slash(cls, value: str) -> str:
        if not value:
            return value  # derived from host and port once both are read
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/")

    @field_validator("url_allow_networks")
    @classmethod
    def _networks(cls, value: str) -> str:
        for item in filter(None, (part.strip() for part in value.split(","))):
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError:
                raise ValueError(f"{item!r} is not an IP network (like 10.0.0.0/8)") from None
        return value

    @model_validator(mode="after")
    def _procrastinate_needs_postgresql(self) -> Settings:
        if self.jobs == "procrastinate" and not self.database_url.startswith("postgresql"):
            raise ValueError(
                "ZAPSYNC_JOBS=procrastinate runs jobs in PostgreSQL: set DATABASE_URL to a "
                "postgresql+psycopg:// database (SQLite runs them embedded)"
            )
        return self

    @model_validator(mode="after")
    def _derive_public_url(self) -> Settings:
        if not self.public_url:
            self.public_url = default_public_url(self.host, self.port)
        return self

    def listening_on(self, host: str | None, port: int | None) -> Settings:
        """These settings for a server on `host`:`port` (`zapsync serve --host/--port`); a
        public URL that was derived from the old address follows the new one."""
        host, port = host or self.host, port or self.port
        update: dict[str, object] = {"host": host, "port": port}
        if self.public_url == default_public_url(self.host, self.port):
            update["public_url"] = default_public_url(host, port)
        return self.model_copy(update=update)

    @field_validator("timezone")
    @classmethod
    def _iana_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"{value!r} is not an IANA time zone (like America/Sao_Paulo or UTC)"
            ) from None
        return value

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def debug_logger_names(self) -> list[str]:
        return [name.strip() for name in self.debug_loggers.split(",") if name.strip()]

    @property
    def import_skip_groups(self) -> bool:
        """The old name of `skip_groups`, from when only the import read it."""
        return self.skip_groups

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    def sqlite_path(self) -> Path | None:
        if not self.is_sqlite:
            return None
        path = self.database_url.split(":///", 1)[1]
        return None if path in ("", ":memory:") else Path(path)

    def resolved_secret_key(self) -> str:
        """The credentials key: the setting, else a key kept in the data dir (made once)."""
        if self.secret_key is not None:
            return self.secret_key.get_secret_value()
        key_file = self.data_dir / "secret.key"
        if key_file.exists():
            return key_file.read_text().strip()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        key = secrets.token_urlsafe(32)
        key_file.write_text(key)
        key_file.chmod(0o600)
        return key

    def resolved_old_secret_keys(self) -> list[str]:
        if self.old_secret_keys is None:
            return []
        keys = self.old_secret_keys.get_secret_value().split(",")
        return [k.strip() for k in keys if k.strip()]


def default_public_url(host: str, port: int) -> str:
    """The URL that reaches a server listening on `host`:`port` from this machine: an
    all-interfaces address is reached through loopback."""
    if host in ("", "0.0.0.0", "::"):
        host = "127.0.0.1"
    elif ":" in host and not host.startswith("["):
        host = f"[{host}]"  # an IPv6 literal
    return f"http://{host}:{port}"


def load_settings(**overrides: object) -> Settings:
    """Settings, or a SettingsError whose one line names the wrong setting."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(str(p) for p in first["loc"])
        if not loc:  # a rule across settings: its message names them
            raise SettingsError(str(first["msg"]).removeprefix("Value error, ")) from None
        field = Settings.model_fields.get(loc)
        alias = field.alias if field else None
        if field and isinstance(field.validation_alias, AliasChoices):
            alias = str(field.validation_alias.choices[0])
        env = (alias or loc).upper()
        raise SettingsError(f"setting {env} is invalid: {first['msg']}") from None
