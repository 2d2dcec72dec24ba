"""CLI exit codes and messages: one clear line, no traceback, non-zero on failure."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

from tests.bot.cli.helpers import twinbot
from tests.chat_exports.exports import telegram_chat


def assert_one_line_error(result, needle: str, code: int = 1) -> None:
    assert result.returncode == code, result.stderr
    assert "Traceback" not in result.stderr
    assert needle in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_unknown_user(tmp_path: Path) -> None:
    assert_one_line_error(twinbot("status", "--user", "ghost", cwd=tmp_path), "unknown user 'ghost'")


def test_missing_import_file(tmp_path: Path) -> None:
    twinbot("consent", "--user", "ana", "learn", cwd=tmp_path)
    assert_one_line_error(twinbot("import", "--user", "ana", "nope.json", cwd=tmp_path), "no such file: nope.json")


def test_bad_setting_exits_2_naming_the_variable(tmp_path: Path) -> None:
    result = twinbot("status", "--user", "ana", cwd=tmp_path, env={"MAX_NEW_TOKENS": "lots"})
    assert_one_line_error(result, "invalid setting MAX_NEW_TOKENS", code=2)


def test_run_refuses_a_webhook_without_a_secret(tmp_path: Path) -> None:
    env = {"TELEGRAM_TOKEN": "4242:token", "TELEGRAM_WEBHOOK_URL": "https://bot.example.org/tg"}
    result = twinbot("run", cwd=tmp_path, env=env, timeout=60)
    assert_one_line_error(result, "invalid setting TELEGRAM_WEBHOOK_SECRET: required when TELEGRAM_WEBHOOK_URL", 2)


def test_unknown_setting_in_dotenv(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("TELEGRAM_TOKN=1\n")
    assert_one_line_error(twinbot("status", "--user", "ana", cwd=tmp_path), "unknown setting TELEGRAM_TOKN", code=2)


def test_debug_shows_the_traceback(tmp_path: Path) -> None:
    result = twinbot("--debug", "import", "--user", "ana", "x.json", cwd=tmp_path)
    assert result.returncode == 1 and "no such file" in result.stderr


def test_consent_status_export_forget_round_trip(tmp_path: Path) -> None:
    granted = twinbot("consent", "--user", "ana", "learn", cwd=tmp_path)
    assert granted.returncode == 0 and "learn: on" in granted.stdout
    status = twinbot("status", "--user", "ana", cwd=tmp_path)
    assert status.returncode == 0 and "messages: 0 of yours" in status.stdout
    out = tmp_path / "ana.zip"
    exported = twinbot("export", "--user", "ana", "--out", str(out), cwd=tmp_path)
    assert exported.returncode == 0, exported.stderr
    archive = zipfile.ZipFile(io.BytesIO(out.read_bytes()))
    assert json.loads(archive.read("data/profile.json"))["platform_user_id"] == "ana"
    refused = twinbot("forget", "--user", "ana", cwd=tmp_path)
    assert_one_line_error(refused, "pass --yes")
    forgotten = twinbot("forget", "--user", "ana", "--yes", cwd=tmp_path)
    assert forgotten.returncode == 0 and "Forgotten" in forgotten.stdout
    assert_one_line_error(twinbot("status", "--user", "ana", cwd=tmp_path), "unknown user 'ana'")


def good_export() -> bytes:
    return json.dumps(telegram_chat([("user1", "Ana", f"line {i}") for i in range(20)] +
                                    [("user2", "Bo", "hi")])).encode()


HOSTILE_FILES = {
    "empty.json": (b"", "empty"),
    "truncated.json": (good_export()[:-200], "damaged or truncated"),
    "binary.json": (b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4, "an image"),
    "note.txt": (b"hello, this is just a note\n", "isn't a chat export"),
    "two-people.json": (good_export(), "doesn't say which participant you are"),
}


def test_import_of_a_file_it_refuses_exits_non_zero_with_one_line(tmp_path: Path) -> None:
    """Scripts must tell a refused import from a done one: `twinbot: …` on stderr and status 1."""
    twinbot("consent", "--user", "ana", "learn", cwd=tmp_path)
    for name, (content, needle) in HOSTILE_FILES.items():
        (tmp_path / name).write_bytes(content)
        result = twinbot("import", "--user", "ana", name, cwd=tmp_path)
        assert_one_line_error(result, needle)
        assert result.stderr.startswith("twinbot: "), (name, result.stderr)
    done = twinbot("import", "--user", "ana", "--as", "user1", "two-people.json", cwd=tmp_path)
    assert done.returncode == 0 and "Imported" in done.stdout and not done.stderr, done.stderr


def test_avatar_like_finds_a_face_keeps_it_and_refuses_what_is_no_picture(tmp_path: Path) -> None:
    from PIL import Image

    from avatar.faces import render_face

    Image.fromarray(render_face("lorelei", "cli-picture", 128)).save(tmp_path / "me.jpg")
    (tmp_path / "notes.txt").write_text("not a picture")
    found = twinbot("avatar", "--user", "ana", "--like", "me.jpg", "--out", "found.png", cwd=tmp_path)
    assert found.returncode == 0, found.stderr
    assert Image.open(tmp_path / "found.png").size == (256, 256)
    kept = twinbot("avatar", "--user", "ana", "--keep", "1", "--out", "kept.png", cwd=tmp_path)
    assert kept.returncode == 0, kept.stderr
    assert (tmp_path / "kept.png").read_bytes() == (tmp_path / "found.png").read_bytes()
    assert_one_line_error(twinbot("avatar", "--user", "ana", "--like", "notes.txt", "--out", "x.png", cwd=tmp_path),
                          "not a picture")
    assert_one_line_error(twinbot("avatar", "--user", "ana", "--keep", "1", "--out", "x.png", cwd=tmp_path),
                          "nothing to pick from")


def test_usage_errors_come_from_argparse(tmp_path: Path) -> None:
    result = twinbot("consent", "--user", "ana", "maybe", cwd=tmp_path)
    assert result.returncode == 2 and "invalid choice" in result.stderr


def test_eval_refuses_a_missing_or_too_small_corpus_in_one_line(tmp_path: Path) -> None:
    assert_one_line_error(twinbot("eval", "--corpus", "nope.jsonl", cwd=tmp_path), "nope.jsonl")
    (tmp_path / "small.jsonl").write_text('{"speaker": "a", "text": "fine"}\n{"speaker": "b", "text": "ok"}\n')
    result = twinbot("eval", "--corpus", "small.jsonl", "--speakers", "2", "--samples", "s.jsonl", cwd=tmp_path)
    assert_one_line_error(result, "a has 1 lines; 300 + 50 are needed")
