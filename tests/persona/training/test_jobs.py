"""The bot's side of training: it stays light (never loads torch), and the trainer process it runs gets
no credentials and is restarted with a growing delay, visibly, when it dies."""

from __future__ import annotations

import asyncio
import logging
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import SecretStr

from bot.commands import CommandLayer, open_services
from persona.training.jobs import LocalTrainerProcess
from tests.bot.commands.recording import RecordingOutbox, event
from twinbot.settings import Settings

TORCH_FREE = ("bot.commands", "bot.app", "persona.training.jobs", "persona.paths", "chat_exports", "persona_store")


def test_the_command_layer_and_the_job_side_never_import_torch() -> None:
    code = (
        "import importlib, sys\n"
        f"for name in {TORCH_FREE!r}:\n"
        "    importlib.import_module(name)\n"
        "heavy = sorted(m for m in ('torch', 'transformers', 'peft') if m in sys.modules)\n"
        "print(','.join(heavy))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert done.stdout.strip() == "", f"torch-free modules pulled in {done.stdout.strip()}"


REPO = Path(__file__).resolve().parents[3]


def environment_of(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes()
    return dict(item.split("=", 1) for item in raw.decode().split("\0") if "=" in item)


async def test_the_trainer_process_gets_no_platform_token(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DISCORD_TOKEN", "discord-token-from-the-environment")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "anything-else-of-the-bot")
    monkeypatch.setenv("PYTHONPATH", str(REPO))
    s = settings.model_copy(update={"telegram_token": SecretStr("telegram-token-of-the-settings")})
    trainer = LocalTrainerProcess(s)
    await trainer.start()
    try:
        seen = environment_of(trainer.pid)
    finally:
        await trainer.stop()
    secrets = {"discord-token-from-the-environment", "anything-else-of-the-bot", "telegram-token-of-the-settings"}
    leaked = [name for name, value in seen.items() if value in secrets]
    assert leaked == []
    assert seen["DATA_DIR"] == str(s.data_dir) and seen["PATH"] == os.environ["PATH"]  # what it does need


async def test_a_dying_trainer_is_restarted_later_and_later_and_reported(
        settings: Settings, caplog: pytest.LogCaptureFixture) -> None:
    async with open_services(settings, with_model=False, with_avatars=False) as services:
        dying = LocalTrainerProcess(settings, command=("sh", "-c", "exit 3"), first_delay_s=0.1,
                                    max_delay_s=0.8)
        services.trainer = dying
        layer = CommandLayer(settings, services)
        caplog.set_level(logging.ERROR, logger="persona.training.jobs")
        await dying.start()
        try:
            for _ in range(300):
                if dying.deaths >= 5:
                    break
                await asyncio.sleep(0.05)
            await dying._process.wait()
            out = RecordingOutbox()
            await layer.dispatch(layer.parse_text_command(event("/consent learn")), out)
            await layer.dispatch(layer.parse_text_command(event("/status")), out)
        finally:
            await dying.stop()
            await layer.close()
    delays = [float(re.search(r"restarts in ([\d.]+) s", r.getMessage()).group(1)) for r in caplog.records]
    assert delays[:5] == [0.1, 0.2, 0.4, 0.8, 0.8][: len(delays[:5])] and len(delays) >= 5, delays
    assert all(r.levelno == logging.ERROR and "exited with 3" in r.getMessage() for r in caplog.records)
    assert "trainer: down" in out.last.text and "training waits" in out.last.text
