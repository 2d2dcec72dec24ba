"""Settings: every field documented, bad values fail with one line naming the variable, secrets hidden."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from twinbot.settings import Settings, SettingsError, load_settings

ENV_EXAMPLE = Path(__file__).resolve().parents[2] / ".env.example"


def test_env_example_documents_every_setting() -> None:
    documented = set(re.findall(r"^# ([A-Z_]+)=", ENV_EXAMPLE.read_text(), re.MULTILINE))
    assert documented == {name.upper() for name in Settings.model_fields}


def test_env_example_values_are_valid(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    lines = [
        line[2:].split("#")[0].rstrip()
        for line in ENV_EXAMPLE.read_text().splitlines()
        if re.match(r"^# [A-Z_]+=\S", line)
    ]
    (tmp_path / ".env").write_text("\n".join(lines) + "\n")
    monkeypatch.chdir(tmp_path)
    settings = load_settings()
    assert settings.discord_guild_ids == [123456789012345678, 234567890123456789]


def test_invalid_value_names_the_variable(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ADAPTER_CACHE_SIZE", "0")
    with pytest.raises(SettingsError, match="^invalid setting ADAPTER_CACHE_SIZE: "):
        load_settings()


def test_a_webhook_without_a_secret_is_refused(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TELEGRAM_WEBHOOK_URL", "https://bot.example.org/tg")
    with pytest.raises(SettingsError, match="^invalid setting TELEGRAM_WEBHOOK_SECRET: required when "
                                            "TELEGRAM_WEBHOOK_URL is set"):
        load_settings()
    monkeypatch.setenv("TELEGRAM_WEBHOOK_SECRET", "not allowed!")
    with pytest.raises(SettingsError, match="^invalid setting TELEGRAM_WEBHOOK_SECRET: may only use"):
        load_settings()
    monkeypatch.setenv("TELEGRAM_WEBHOOK_SECRET", "s3cret_token-1")
    assert load_settings().telegram_webhook_secret.get_secret_value() == "s3cret_token-1"


def test_unknown_setting_in_env_file_is_refused(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("DISCORD_TOKN=oops\n")
    with pytest.raises(SettingsError, match="unknown setting DISCORD_TOKN"):
        load_settings()


def test_tokens_never_show_in_repr(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TELEGRAM_TOKEN", "123:supersecret")
    settings = load_settings()
    assert "supersecret" not in repr(settings) and "supersecret" not in str(settings.model_dump())
    assert settings.telegram_token.get_secret_value() == "123:supersecret"
