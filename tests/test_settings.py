from __future__ import annotations

from pathlib import Path

import pytest

from zapsync.settings import Settings, SettingsError, load_settings


def test_plain_urls_get_the_async_drivers() -> None:
    s = Settings(database_url="sqlite:///x.db", ZAPSYNC_SECRET_KEY="k")
    assert s.database_url == "sqlite+aiosqlite:///x.db"
    s = Settings(database_url="postgresql://u@h/db", ZAPSYNC_SECRET_KEY="k")
    assert s.database_url == "postgresql+psycopg://u@h/db"


@pytest.mark.parametrize(
    ("env", "value", "named"),
    [
        ("DATABASE_URL", "mysql://x", "DATABASE_URL"),
        ("ZAPSYNC_PORT", "99999", "ZAPSYNC_PORT"),
        ("ZAPSYNC_PUBLIC_URL", "example.com", "ZAPSYNC_PUBLIC_URL"),
        ("ZAPSYNC_LOG_FORMAT", "xml", "ZAPSYNC_LOG_FORMAT"),
        ("ZAPSYNC_URL_ALLOW_NETWORKS", "10.0.0.0/8, intranet", "ZAPSYNC_URL_ALLOW_NETWORKS"),
        ("ZAPSYNC_MEDIA_URL_HOURS", "0", "ZAPSYNC_MEDIA_URL_HOURS"),
        ("ZAPSYNC_WEBHOOK_RATE_LIMIT", "lots", "ZAPSYNC_WEBHOOK_RATE_LIMIT"),
        ("ZAPSYNC_WEBHOOK_MAX_BODY_MB", "0", "ZAPSYNC_WEBHOOK_MAX_BODY_MB"),
        ("ZAPSYNC_TIMEZONE", "Brasilia", "ZAPSYNC_TIMEZONE"),
        ("ZAPSYNC_TIMEZONE", "../../etc/passwd", "ZAPSYNC_TIMEZONE"),
    ],
)
def test_a_wrong_setting_is_named_in_one_line(
    monkeypatch: pytest.MonkeyPatch, env: str, value: str, named: str
) -> None:
    monkeypatch.setenv(env, value)
    with pytest.raises(SettingsError) as info:
        load_settings()
    message = str(info.value)
    assert named in message and "\n" not in message


def test_the_timezone_is_an_iana_zone_sao_paulo_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    assert load_settings().timezone == "America/Sao_Paulo"
    monkeypatch.setenv("ZAPSYNC_TIMEZONE", "Mars/Olympus")
    with pytest.raises(SettingsError, match="not an IANA time zone"):
        load_settings()


def test_secret_key_is_generated_once_into_the_data_dir(tmp_path: Path) -> None:
    s = Settings(ZAPSYNC_DATA_DIR=tmp_path)
    first = s.resolved_secret_key()
    assert (tmp_path / "secret.key").read_text() == first
    assert (tmp_path / "secret.key").stat().st_mode & 0o077 == 0
    assert Settings(ZAPSYNC_DATA_DIR=tmp_path).resolved_secret_key() == first


def test_old_secret_keys_are_a_comma_separated_list(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ZAPSYNC_OLD_SECRET_KEYS", " first-key, ,second-key ")
    settings = load_settings()
    assert settings.resolved_old_secret_keys() == ["first-key", "second-key"]
    assert "first-key" not in repr(settings)
