"""Settings from the environment and `.env` (pydantic-settings). A wrong value stops start-up
with one line naming it (see `load_settings`)."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DATA_DIR = Path("data")


class SettingsError(RuntimeError):
    """A setting is missing or wrong; the message names it."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", populate_by_name=True)

    database_url: str = Field(default=f"sqlite+aiosqlite:///{DATA_DIR}/zapsync.db")
    redis_url: str | None = None
    secret_key: SecretStr | None = Field(default=None, alias="ZAPSYNC_SECRET_KEY")
    cron_secret: SecretStr | None = None
    public_url: str = Field(default="http://127.0.0.1:8000", alias="ZAPSYNC_PUBLIC_URL")
    host: str = Field(default="127.0.0.1", alias="ZAPSYNC_HOST")
    port: int = Field(default=8000, ge=1, le=65535, alias="ZAPSYNC_PORT")
    data_dir: Path = Field(default=DATA_DIR, alias="ZAPSYNC_DATA_DIR")
    log_format: Literal["console", "json"] = Field(default="console", alias="ZAPSYNC_LOG_FORMAT")
    log_level: str = Field(default="INFO", alias="ZAPSYNC_LOG_LEVEL")

    # sessions and status
    max_sessions_per_user: int = Field(default=5, ge=1, alias="ZAPSYNC_MAX_SESSIONS_PER_USER")
    gateway_timeout: float = Field(default=10.0, gt=0, alias="ZAPSYNC_GATEWAY_TIMEOUT")
    status_sync_concurrency: int = Field(default=50, ge=1, alias="ZAPSYNC_STATUS_SYNC_CONCURRENCY")
    status_sync_interval_minutes: int = Field(default=5, ge=1, alias="ZAPSYNC_STATUS_SYNC_MINUTES")
    unreachable_after_failures: int = Field(default=3, ge=1, alias="ZAPSYNC_UNREACHABLE_AFTER")
    heal_max_attempts: int = Field(default=5, ge=0, alias="ZAPSYNC_HEAL_MAX_ATTEMPTS")
    heal_base_delay_seconds: float = Field(default=30.0, ge=0, alias="ZAPSYNC_HEAL_BASE_DELAY")
    # relaying gateway events to the team's webhook that zapsync's replaced (`forward_to`)
    forward_max_attempts: int = Field(default=8, ge=1, alias="ZAPSYNC_FORWARD_MAX_ATTEMPTS")
    forward_base_delay: float = Field(default=2.0, ge=0, alias="ZAPSYNC_FORWARD_BASE_DELAY")

    # conversation import (chats and their history, when a session connects or on demand)
    import_skip_groups: bool = Field(default=True, alias="ZAPSYNC_IMPORT_SKIP_GROUPS")
    import_skip_empty: bool = Field(default=True, alias="ZAPSYNC_IMPORT_SKIP_EMPTY")
    import_history_days: int = Field(default=30, ge=0, alias="ZAPSYNC_IMPORT_HISTORY_DAYS")

    # maintenance
    session_cleanup_days: int = Field(default=30, ge=1, alias="ZAPSYNC_SESSION_CLEANUP_DAYS")
    conversation_inactive_hours: int = Field(default=24, ge=1, alias="ZAPSYNC_INACTIVE_HOURS")
    scheduler_enabled: bool = Field(default=True, alias="ZAPSYNC_SCHEDULER")

    # sending: uploads, the outbox's retries, Socket.IO fan-out across replicas
    max_upload_mb: float = Field(default=16.0, gt=0, alias="ZAPSYNC_MAX_UPLOAD_MB")
    outbox_max_attempts: int = Field(default=6, ge=1, alias="ZAPSYNC_OUTBOX_MAX_ATTEMPTS")
    outbox_base_delay: float = Field(default=2.0, ge=0, alias="ZAPSYNC_OUTBOX_BASE_DELAY")
    read_receipts: bool = Field(default=True, alias="ZAPSYNC_READ_RECEIPTS")
    socketio_channel: str = Field(default="zapsync", alias="ZAPSYNC_SOCKETIO_CHANNEL")

    # the built-in sandbox gateway and its demo
    demo: bool = Field(default=False, alias="ZAPSYNC_DEMO")

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

    @field_validator("public_url")
    @classmethod
    def _no_trailing_slash(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/")

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


def load_settings(**overrides: object) -> Settings:
    """Settings, or a SettingsError whose one line names the wrong setting."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(str(p) for p in first["loc"])
        field = Settings.model_fields.get(loc)
        env = (field.alias if field and field.alias else loc).upper()
        raise SettingsError(f"setting {env} is invalid: {first['msg']}") from None
