"""Hostile and broken input: one clear message each, nothing half-imported, and property tests."""

from __future__ import annotations

import asyncio
import io
import json
import os
import stat
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings as hsettings, strategies as st

from chat_exports import ImportFailed, ReadLimits, import_export
from chat_exports.detect import open_reader
from chat_exports.importer import scan
from persona_store import Scope, Store
from tests.chat_exports.exports import jsonl, telegram_chat
from twinbot.settings import Settings, settings_env

REPO = Path(__file__).resolve().parents[2]


async def attempt(settings: Settings, path: Path, as_participant: str | None = "Ana") -> tuple[str, tuple[int, int]]:
    async with Store.open_context(settings) as store:
        user = await store.users.get_or_create("console", "ana", "Ana")
        await store.consent.set(user.id, Scope.LEARN, True)
        with pytest.raises(ImportFailed) as failed:
            await import_export(settings, store, user, path, as_participant=as_participant)
        return str(failed.value), await store.messages.counts(user.id)


def good_telegram() -> bytes:
    return json.dumps(telegram_chat([("user1", "Ana", f"line {i}") for i in range(50)])).encode()


def nested(depth: int = 100_000) -> bytes:
    return b"[" * depth + b"]" * depth


def package(members: dict[str, bytes]) -> bytes:
    """A data-package zip holding `members` beside a channel.json."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("Messages/c1/channel.json", "{}")
        for name, data in members.items():
            zf.writestr(name, data)
    return buffer.getvalue()


def symlink_package() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr("Messages/c1/messages.json", "[]")
        link = zipfile.ZipInfo("Messages/c1/channel.json")
        link.external_attr = (stat.S_IFLNK | 0o777) << 16
        zf.writestr(link, "/etc/passwd")
    return buffer.getvalue()


TOO_DEEP = "That file is nested too deeply to be a chat export."
TOO_LONG = "That export has a field longer than 1,048,576 bytes (a message is a few KB); refusing it."


CASES = {
    "truncated json": (good_telegram()[:-300], "damaged or truncated"),
    "invalid json": (b'{"messages": [ {"id": 1,, } ]}', "damaged or truncated"),
    "non utf-8": (b'{"messages": [{"type": "message", "id": 1, "from_id": "user1", "text": "\xff\xfe"}]}',
                  "damaged or truncated"),
    "deeply nested in a message": (b'{"messages": [' + nested() + b"]}", TOO_DEEP),
    "deeply nested before the messages": (b'{"name": ' + nested() + b', "messages": []}', TOO_DEEP),
    "deeply nested in a chat exporter channel": (b'{"guild": {}, "channel": {"id": ' + nested() + b"}}", TOO_DEEP),
    "deeply nested in an account export": (b'{"personal_information": {"user_id": ' + nested() + b"}}", TOO_DEEP),
    "deeply nested first jsonl line": (b'{"speaker": "Ana", "text": ' + nested() + b"}\n", TOO_DEEP),
    "deeply nested package messages": (package({"Messages/c1/messages.json": nested()}), TOO_DEEP),
    "deeply nested package channel": (package({"Messages/c2/channel.json": nested(),
                                               "Messages/c2/messages.json": b"[]"}), TOO_DEEP),
    "a 5 MB string in a package": (package({"Messages/c1/messages.json": b'[{"ID": "1", "Contents": "'
                                            + b"\\\"" * 2_500_000 + b'"}]'}), TOO_LONG),
    "a 5 MB id in a package": (package({"Account/user.json": b"{}", "Messages/c1/messages.json":
                                                   b'[{"ID": "' + b"9" * 5_000_000 + b'"}]'}), TOO_LONG),
    "a symbolic link in a zip": (symlink_package(), "symbolic link ('Messages/c1/channel.json')"),
    "a csv field over the csv limit": (package({"Messages/c1/messages.csv": b"ID,Timestamp,Contents\n1,2023-01-01,"
                                                + b"x" * 200_000 + b"\n"}), "field larger than field limit"),
    "empty file": (b"", "empty"),
    "empty export": (json.dumps({"name": "x", "type": "personal_chat", "id": 1, "messages": []}).encode(),
                     "no messages"),
    "png image": (b"\x89PNG\r\n\x1a\n" + b"\x00" * 100, "an image"),
    "random text": (b"hello, this is just a note\n", "isn't a chat export"),
    "wrong types everywhere": (json.dumps({"name": 1, "type": [], "id": {}, "messages": [
        {"id": [], "type": "message", "from_id": 3.5, "text": {"a": 1}, "date_unixtime": "soon"},
        {"id": 2, "type": "message", "from_id": None, "text": 5}, "not a dict", 17]}).encode(), "no messages"),
    "broken csv": (None, "damaged or truncated"),
}


@pytest.mark.parametrize("case", sorted(CASES))
async def test_each_broken_input_gets_one_clear_message_and_stores_nothing(settings: Settings, tmp_path: Path,
                                                                           case: str) -> None:
    content, expected = CASES[case]
    path = tmp_path / "upload"
    if content is None:  # a package whose CSV is not UTF-8
        with zipfile.ZipFile(path, "w") as zf:
            zf.writestr("Messages/c1/channel.json", "{}")
            zf.writestr("Messages/c1/messages.csv", b"ID,Timestamp,Contents\n1,2023-01-01,\xff\xfe bad\n")
    else:
        path.write_bytes(content)
    message, counts = await attempt(settings, path)
    assert expected in message and "\n" not in message
    assert counts == (0, 0)


async def test_a_zip_bomb_is_refused_before_unpacking(settings: Settings, tmp_path: Path) -> None:
    path = tmp_path / "bomb.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("Messages/c1/channel.json", "{}")
        zf.writestr("Messages/c1/messages.json", b"[" + b" " * (settings.import_max_bytes * 11) + b"]")
    assert path.stat().st_size < settings.import_max_bytes
    message, counts = await attempt(settings, path)
    assert "messages.json in that zip unpacks to 577 MB; the limit per file is 52 MB" in message
    assert counts == (0, 0)


async def test_many_files_each_under_the_limit_are_refused_together(settings: Settings, tmp_path: Path) -> None:
    small = settings.model_copy(update={"import_max_bytes": 4096})
    path = tmp_path / "bomb.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for i in range(11):
            zf.writestr(f"Messages/c{i}/messages.json", b"[" + b" " * 4090 + b"]")
    assert path.stat().st_size < 4096
    message, counts = await attempt(small, path)
    assert "That zip would unpack to 0 MB; the limit is 0 MB" in message and counts == (0, 0)


async def test_a_folder_with_a_symbolic_link_is_refused(settings: Settings, tmp_path: Path) -> None:
    folder = tmp_path / "package"
    (folder / "Messages" / "c1").mkdir(parents=True)
    (folder / "Messages" / "c1" / "messages.json").write_text("[]")
    (folder / "Messages" / "c1" / "channel.json").symlink_to("/etc/passwd")
    message, counts = await attempt(settings, folder)
    assert "That folder contains a symbolic link ('channel.json'); refusing it." == message and counts == (0, 0)


async def test_reading_past_the_time_budget_is_refused(settings: Settings, tmp_path: Path) -> None:
    hurried = settings.model_copy(update={"import_max_seconds": 0.05})
    path = tmp_path / "long.jsonl"
    path.write_text(jsonl([("Ana", f"line {i}") for i in range(200_000)]))
    message, counts = await attempt(hurried, path)
    assert message == "That export took more than 0.05 s to read; refusing it." and counts == (0, 0)


async def test_paths_escaping_the_archive_are_refused(settings: Settings, tmp_path: Path) -> None:
    path = tmp_path / "evil.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("Messages/c1/messages.json", "[]")
        zf.writestr("../../etc/evil.json", "{}")
    message, _ = await attempt(settings, path)
    assert "outside the archive" in message


async def test_files_over_the_size_limit_are_refused(settings: Settings, tmp_path: Path) -> None:
    small = settings.model_copy(update={"import_max_bytes": 2048})
    path = tmp_path / "big.jsonl"
    path.write_text(jsonl([("Ana", "words " * 100)] * 10))
    message, counts = await attempt(small, path)
    assert "the limit is" in message and counts == (0, 0)


# --- the bot's memory and time on hostile files: measured in a child process, which has nothing else in it ---

MEASURE = """
import asyncio, json, resource, sys, time
from pathlib import Path
from chat_exports import ImportFailed, import_export
from persona_store import Scope, Store
from twinbot.settings import load_settings

async def main():
    settings = load_settings()
    async with Store.open_context(settings) as store:
        user = await store.users.get_or_create("console", "ana", "Ana")
        await store.consent.set(user.id, Scope.LEARN, True)
        idle = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        started = time.monotonic()
        try:
            await import_export(settings, store, user, Path(sys.argv[1]), as_participant="Ana")
            message = "imported"
        except ImportFailed as exc:
            message = str(exc)
        grew_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - idle
        print(json.dumps({"message": message, "grew_mb": grew_kb / 1024, "seconds": time.monotonic() - started}))

_, hard = resource.getrlimit(resource.RLIMIT_AS)
cap = 6 << 30 if hard == resource.RLIM_INFINITY else min(6 << 30, hard)
resource.setrlimit(resource.RLIMIT_AS, (cap, hard))  # a missing guard fails here, not the machine
asyncio.run(main())
"""


def big_string_package(path: Path, megabytes: int) -> None:
    """A package whose one message is a string of `megabytes` MB, streamed into the zip (a few hundred KB)."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        zf.writestr("Messages/c1/channel.json", "{}")
        with zf.open("Messages/c1/messages.json", "w", force_zip64=True) as fh:
            fh.write(b'[{"ID": "1", "Timestamp": "2023-05-01 12:00:00", "Contents": "')
            for _ in range(megabytes):
                fh.write(b"a" * (1 << 20))
            fh.write(b'"}]')


@pytest.mark.parametrize(("case", "expected"), [
    ("nested 100,000 deep in a message", TOO_DEEP),
    ("nested 100,000 deep before the messages", TOO_DEEP),
    ("a 400 MB string in a zip", "messages.json in that zip unpacks to 419 MB; the limit per file is 52 MB"),
    ("a 40 MB string in a zip", TOO_LONG),
])
def test_hostile_files_cost_little_memory_and_time(settings: Settings, tmp_path: Path, case: str,
                                                   expected: str) -> None:
    path = tmp_path / "upload"
    if case.startswith("nested"):
        inner = nested()
        path.write_bytes(b'{"messages": [' + inner + b"]}" if "in a message" in case else
                         b'{"name": ' + inner + b', "messages": []}')
    else:
        big_string_package(path, 400 if "400" in case else 40)
    assert path.stat().st_size < 500_000
    env = {**os.environ, **settings_env(settings), "PYTHONPATH": str(REPO)}
    child = subprocess.run([sys.executable, "-c", MEASURE, str(path)], env=env, cwd=tmp_path, capture_output=True,
                           text=True, timeout=120)
    assert child.returncode == 0, child.stderr[-2000:]
    measured = json.loads(child.stdout)
    assert expected in measured["message"] and "\n" not in measured["message"]
    assert measured["grew_mb"] < 1024 and measured["seconds"] < 30, measured


# --- property tests: no importer crashes on arbitrary input; valid exports round-trip ----------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)
message_like = st.fixed_dictionaries(
    {}, optional={"id": json_values, "type": st.sampled_from(["message", "service"]) | json_values,
                  "from_id": json_values, "from": json_values, "text": json_values, "date_unixtime": json_values,
                  "date": json_values, "reply_to_message_id": json_values},
)
FUZZ = hsettings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def only_import_failed(path: Path) -> None:
    """Reading must either work or raise ImportFailed: never another exception."""
    try:
        reader = open_reader(path, ReadLimits.from_settings(Settings.model_construct()))
        scan(reader)
    except ImportFailed:
        pass


@FUZZ
@given(messages=st.lists(message_like, max_size=8), extra=json_values)
def test_telegram_reader_never_crashes(tmp_path: Path, messages: list, extra: object) -> None:
    path = tmp_path / "tg.json"
    path.write_text(json.dumps({"name": extra, "type": "personal_chat", "id": 5, "messages": messages}))
    only_import_failed(path)


@FUZZ
@given(messages=st.lists(st.dictionaries(st.sampled_from(["id", "type", "timestamp", "content", "author",
                                                          "reference"]), json_values), max_size=8))
def test_chat_exporter_reader_never_crashes(tmp_path: Path, messages: list) -> None:
    path = tmp_path / "dce.json"
    path.write_text(json.dumps({"guild": {}, "channel": {"id": 1}, "messages": messages}))
    only_import_failed(path)


@FUZZ
@given(lines=st.lists(json_values, max_size=8))
def test_jsonl_reader_never_crashes(tmp_path: Path, lines: list) -> None:
    path = tmp_path / "c.jsonl"
    path.write_text('{"speaker": "a", "text": "b"}\n' + "".join(json.dumps(line) + "\n" for line in lines))
    only_import_failed(path)


@FUZZ
@given(rows=st.lists(st.dictionaries(st.sampled_from(["ID", "Timestamp", "Contents", "Attachments"]), json_values),
                     max_size=8))
def test_discord_package_reader_never_crashes(tmp_path: Path, rows: list) -> None:
    path = tmp_path / "pkg.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("Messages/c1/messages.json", json.dumps(rows))
    only_import_failed(path)


@FUZZ
@given(data=st.binary(max_size=300))
def test_arbitrary_bytes_never_crash_detection(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "blob"
    path.write_bytes(data)
    only_import_failed(path)


@FUZZ
@given(lines=st.lists(st.tuples(st.sampled_from(["Ana", "Bo", "Cy"]), st.text(min_size=1, max_size=40)),
                      min_size=1, max_size=30))
def test_valid_jsonl_round_trips_with_exact_counts(settings: Settings, tmp_path: Path, lines: list) -> None:
    path = tmp_path / "rt.jsonl"
    path.write_text(jsonl(lines), encoding="utf-8")
    usable = [(s, t) for s, t in lines if t.strip()]
    own = sum(1 for s, _ in usable if s == "Ana")

    async def run() -> None:
        async with Store.open_context(settings.model_copy(update={"data_dir": tmp_path / f"d{abs(hash(path.read_text()))}"})) as store:
            user = await store.users.get_or_create("console", "ana", "Ana")
            await store.consent.set(user.id, Scope.LEARN, True)
            if own == 0:
                with pytest.raises(ImportFailed):
                    await import_export(settings, store, user, path, as_participant="Ana")
                return
            report = await import_export(settings, store, user, path, as_participant="Ana")
            assert (report.own, report.context) == (own, len(usable) - own)
            assert report.skipped == len(lines) - len(usable)

    asyncio.run(run())


# --- crash safety: the process dies mid-import, the database stays consistent, a re-import completes it ---

KILLER = """
import asyncio, os, sys
from pathlib import Path
from chat_exports import importer, import_export
from persona_store import Scope, Store
from twinbot.settings import load_settings

async def main():
    settings = load_settings()
    async with Store.open_context(settings) as store:
        user = await store.users.get_or_create("console", "ana", "Ana")
        await store.consent.set(user.id, Scope.LEARN, True)
        batches = 0
        async def progress(seen):
            nonlocal batches
            batches += 1
            if batches == 2:
                os._exit(9)  # killed between batches: no clean shutdown at all
        await import_export(settings, store, user, Path(sys.argv[1]), as_participant="Ana", progress=progress)

asyncio.run(main())
"""


async def test_killed_mid_import_leaves_whole_batches_and_reimport_completes(settings: Settings, tmp_path: Path) -> None:
    path = tmp_path / "long.jsonl"
    path.write_text(jsonl([("Ana" if i % 2 else "Bo", f"message {i}") for i in range(3500)]))
    env = {**os.environ, **settings_env(settings), "PYTHONPATH": str(REPO)}
    died = subprocess.run([sys.executable, "-c", KILLER, str(path)], env=env, cwd=tmp_path, capture_output=True,
                          text=True, timeout=120)
    assert died.returncode == 9, died.stderr
    async with Store.open_context(settings) as store:
        user = await store.users.find("console", "ana")
        own, context = await store.messages.counts(user.id)
        assert own + context == 2000  # exactly two committed batches of 1,000
        report = await import_export(settings, store, user, path, as_participant="Ana")
        assert report.imported == 1500 and report.already_present == 2000
        assert await store.messages.counts(user.id) == (1750, 1750)
