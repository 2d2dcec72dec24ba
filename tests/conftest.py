"""Fixtures shared by every test folder: settings on a temp data dir, with no stray .env or tokens."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from twinbot.settings import Settings, load_settings

# Tests must never see an operator's .env or platform tokens from the environment.
for _var in ("DISCORD_TOKEN", "TELEGRAM_TOKEN", "DISCORD_CAPTURE_MESSAGES", "BASE_MODEL", "DATA_DIR"):
    os.environ.pop(_var, None)


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.chdir(tmp_path)  # no .env here
    return load_settings(data_dir=tmp_path / "data")
