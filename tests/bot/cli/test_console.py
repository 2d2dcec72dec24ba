"""The console twin as a user meets it: `twinbot run` with no tokens, real stdin and stdout."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from tests.bot.cli.helpers import twinbot


@pytest.fixture
def console_env(tiny_model_dir: Path, tiny_face_weights: Path) -> dict[str, str]:
    return {"BASE_MODEL": str(tiny_model_dir), "MODEL_DTYPE": "float32", "AVATAR_WEIGHTS": str(tiny_face_weights),
            "CONSOLE_USER": "sam", "INFERENCE_THREADS": "1", "MAX_NEW_TOKENS": "8"}


def test_every_command_works_in_the_console(tmp_path: Path, console_env: dict[str, str]) -> None:
    script = "\n".join([
        "/help", "/consent learn", "hello twin, how are you?", "/status", "/avatar me", "/import missing.json",
        "/nope", "/train", "exit", "this line is never read",
    ]) + "\n"
    result = twinbot("run", cwd=tmp_path, env=console_env, stdin=script)
    out = result.stdout
    assert result.returncode == 0, result.stderr
    assert "twinbot console — you are 'sam'" in out
    assert "/twin [@user] <text>" in out  # help
    assert "learn: on" in out
    assert "sam (twin): " in out or "sam's twin had nothing to say" in out
    assert "messages: 1 of yours" in out  # the plain line was kept: learn consent was given first
    saved = tmp_path / "console-files" / "user-sam" / "twin-1.png"
    assert f"[saved {Path('console-files') / 'user-sam' / 'twin-1.png'}]" in out and Image.open(saved).size == (256, 256)
    assert "No such file: missing.json" in out
    assert "I don't know /nope" in out
    assert "I need at least 50 of your messages" in out
    assert out.rstrip().endswith("bye") and "Traceback" not in result.stderr


def test_end_of_input_ends_cleanly(tmp_path: Path, console_env: dict[str, str]) -> None:
    result = twinbot("run", cwd=tmp_path, env=console_env, stdin="/consent\n")
    assert result.returncode == 0 and "Your consent now" in result.stdout and result.stdout.rstrip().endswith("bye")
