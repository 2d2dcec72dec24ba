"""CLI exit codes and messages: one clear line, no traceback, non-zero on failure."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

from tests.bot.cli.helpers import twinbot


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


def test_usage_errors_come_from_argparse(tmp_path: Path) -> None:
    result = twinbot("consent", "--user", "ana", "maybe", cwd=tmp_path)
    assert result.returncode == 2 and "invalid choice" in result.stderr


def test_eval_refuses_a_missing_or_too_small_corpus_in_one_line(tmp_path: Path) -> None:
    assert_one_line_error(twinbot("eval", "--corpus", "nope.jsonl", cwd=tmp_path), "nope.jsonl")
    (tmp_path / "small.jsonl").write_text('{"speaker": "a", "text": "fine"}\n{"speaker": "b", "text": "ok"}\n')
    result = twinbot("eval", "--corpus", "small.jsonl", "--speakers", "2", "--samples", "s.jsonl", cwd=tmp_path)
    assert_one_line_error(result, "a has 1 lines; 300 + 50 are needed")
