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


def test_the_terminal_shows_the_conversation_only(tmp_path: Path, console_env: dict[str, str]) -> None:
    result = twinbot("run", cwd=tmp_path, env=console_env, stdin="/consent learn\nhello twin\nhi again\nexit\n",
                     merge_stderr=True)
    lines = result.stdout.splitlines()
    assert result.returncode == 0, result.stdout
    assert lines[0].startswith("twinbot console — you are 'sam'") and lines[-1] == "bye"
    assert lines[1:4] == ["Done.", "learn: on — I learn from your messages",
                          "share: off — only you can talk to your twin"]
    replies = lines[4:-1]
    assert len(replies) == 2, result.stdout
    assert all(r.startswith("sam (twin): ") or "sam's twin had nothing to say" in r for r in replies), result.stdout
    log = (tmp_path / "data" / "logs" / "twinbot.log").read_text()
    assert "trainer process started" in log and "past_key_values" not in log


def test_verbose_run_logs_to_stderr(tmp_path: Path, console_env: dict[str, str]) -> None:
    result = twinbot("run", "--verbose", cwd=tmp_path, env=console_env, stdin="exit\n")
    assert result.returncode == 0 and "trainer process started" in result.stderr
    assert "INFO" not in result.stdout and not (tmp_path / "data" / "logs" / "twinbot.log").exists()


def test_chat_exits_non_zero_when_a_line_gets_no_reply(tmp_path: Path, console_env: dict[str, str]) -> None:
    twinbot("consent", "--user", "sam", "learn", cwd=tmp_path, env=console_env)
    limited = {**console_env, "TWIN_REPLIES_PER_MINUTE": "1"}
    result = twinbot("chat", "--user", "sam", cwd=tmp_path, env=limited, stdin="hello\nhello again\n")
    assert result.returncode == 1, result.stderr
    assert "sam (twin): " in result.stdout or "had nothing to say" in result.stderr
    assert result.stderr.count("twinbot: Easy there: too many twin replies") == 1, result.stderr

