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


@pytest.mark.parametrize(
    ("env", "public_url"),
    [
        ({}, "http://127.0.0.1:8000"),
        ({"ZAPSYNC_PORT": "9123"}, "http://127.0.0.1:9123"),
        ({"ZAPSYNC_HOST": "0.0.0.0", "ZAPSYNC_PORT": "9124"}, "http://127.0.0.1:9124"),
        ({"ZAPSYNC_HOST": "::", "ZAPSYNC_PORT": "9125"}, "http://127.0.0.1:9125"),
        ({"ZAPSYNC_HOST": "10.1.2.3"}, "http://10.1.2.3:8000"),
        ({"ZAPSYNC_HOST": "::1", "ZAPSYNC_PORT": "9126"}, "http://[::1]:9126"),
        (
            {"ZAPSYNC_PORT": "9127", "ZAPSYNC_PUBLIC_URL": "https://zap.example/"},
            "https://zap.example",
        ),
    ],
)
def test_the_public_url_follows_the_port_unless_set(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], public_url: str
) -> None:
    """Gateways post webhooks to the public URL: setting only the port must not leave them
    posting to :8000."""
    for name in ("ZAPSYNC_HOST", "ZAPSYNC_PORT", "ZAPSYNC_PUBLIC_URL"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert load_settings().public_url == public_url


def test_serve_options_move_a_derived_public_url_but_not_a_set_one() -> None:
    derived = Settings(ZAPSYNC_PORT=9000)
    moved = derived.listening_on("0.0.0.0", 9001)
    assert (moved.host, moved.port, moved.public_url) == ("0.0.0.0", 9001, "http://127.0.0.1:9001")
    assert derived.listening_on(None, None).public_url == "http://127.0.0.1:9000"
    chosen = Settings(ZAPSYNC_PUBLIC_URL="https://zap.example")
    assert chosen.listening_on(None, 9001).public_url == "https://zap.example"
