"""Each export format end to end into a real store: counts, ownership, idempotency, picking a participant."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from chat_exports import ImportFailed, NeedParticipant, detect_format, import_export, list_participants
from persona_store import Scope, Store
from tests.chat_exports.exports import chat_exporter, discord_package, jsonl, telegram_account, telegram_chat
from twinbot.settings import Settings


@pytest.fixture
async def store(settings: Settings):  # noqa: ANN201
    async with Store.open_context(settings) as store:
        yield store


async def consenting(store: Store, name: str = "ana"):  # noqa: ANN201
    user = await store.users.get_or_create("console", name, name.title())
    await store.consent.set(user.id, Scope.LEARN, True)
    return user


def write(tmp_path: Path, name: str, data: dict | str) -> Path:
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else json.dumps(data), encoding="utf-8")
    return path


CHAT = [("user1", "Ana", "hi Bo"), ("user2", "Bo", "hey!"),
        ("user1", "Ana", ["check ", {"type": "bold", "text": "this"}, " out"]), ("user2", "Bo", "nice")]


async def test_telegram_single_chat_needs_a_participant_then_imports(settings: Settings, store: Store, tmp_path: Path) -> None:
    user = await consenting(store)
    path = write(tmp_path, "export.bin", telegram_chat(CHAT))  # the name says nothing: content decides
    assert detect_format(path) == "telegram"
    with pytest.raises(NeedParticipant) as asked:
        await import_export(settings, store, user, path)
    assert [(p.id, p.name, p.messages) for p in asked.value.participants] == [("user1", "Ana", 2), ("user2", "Bo", 2)]
    assert "as:<name or id>" in str(asked.value)
    assert await store.messages.counts(user.id) == (0, 0)
    report = await import_export(settings, store, user, path, as_participant="ana")
    assert (report.imported, report.own, report.context, report.skipped) == (4, 2, 2, 1)
    kept = await store.messages.for_training(user.id)
    assert [m.text for m in kept if m.is_own] == ["hi Bo", "check this out"]
    assert all(m.is_dm and m.platform == "telegram" and m.source == "import" for m in kept)
    assert kept[1].reply_to == "2"
    again = await import_export(settings, store, user, path, as_participant="user1")
    assert (again.imported, again.already_present) == (0, 4)
    assert "Imported 0 new messages" in again.summary() and "4 already present" in again.summary()


async def test_telegram_account_export_knows_its_owner(settings: Settings, store: Store, tmp_path: Path) -> None:
    user = await consenting(store)
    chats = [telegram_chat(CHAT), {**telegram_chat([("user1", "Ana", "group msg")], "private_supergroup"), "id": 99}]
    path = write(tmp_path, "result.json", telegram_account(1, chats))
    report = await import_export(settings, store, user, path)
    assert (report.own, report.context) == (3, 2) and report.participant.endswith("(user1)")
    kept = await store.messages.for_training(user.id)
    assert {m.chat_id: m.is_dm for m in kept} == {"4242": True, "99": False}


async def test_discord_package_zip_json_and_csv_any_case(settings: Settings, store: Store, tmp_path: Path) -> None:
    user = await consenting(store)
    for upper in (True, False):
        path = discord_package(tmp_path / f"package-{upper}.zip", {"111": ["one", "two"], "900": ["dm line"],
                                                                   "222": ["from csv", ""]},
                               csv_channels=("222",), upper=upper)
        assert detect_format(path) == "discord-package"
    report = await import_export(settings, store, user, tmp_path / "package-True.zip")
    assert (report.imported, report.own, report.context, report.skipped) == (4, 4, 0, 1)
    again = await import_export(settings, store, user, tmp_path / "package-False.zip")
    assert again.imported == 0 and again.already_present == 4
    dm = [m for m in await store.messages.for_training(user.id) if m.text == "dm line"]
    assert dm[0].is_dm and dm[0].platform == "discord"


async def test_discord_package_as_an_unpacked_folder(settings: Settings, store: Store, tmp_path: Path) -> None:
    import zipfile

    user = await consenting(store)
    zipped = discord_package(tmp_path / "p.zip", {"111": ["a folder line"]})
    folder = tmp_path / "unpacked"
    zipfile.ZipFile(zipped).extractall(folder)
    report = await import_export(settings, store, user, folder)
    assert report.own == 1 and report.format == "discord-package"


async def test_discord_chat_exporter_with_as_by_name_or_id(settings: Settings, store: Store, tmp_path: Path) -> None:
    user = await consenting(store)
    path = write(tmp_path, "dce.json", chat_exporter([("10", "ana", "yo"), ("20", "bo", "sup"), ("10", "ana", "lol")]))
    assert detect_format(path) == "discord-chat-exporter"
    assert [p.id for p in list_participants(path, settings)] == ["10", "20"]
    with pytest.raises(NeedParticipant):
        await import_export(settings, store, user, path)
    with pytest.raises(ImportFailed, match="Nobody called 'carol'"):
        await import_export(settings, store, user, path, as_participant="carol")
    report = await import_export(settings, store, user, path, as_participant="10")
    assert (report.own, report.context) == (2, 1)
    replies = [m.reply_to for m in await store.messages.for_training(user.id)]
    assert replies == [None, "1000", "1001"]


async def test_jsonl_corpus(settings: Settings, store: Store, tmp_path: Path) -> None:
    user = await consenting(store)
    path = write(tmp_path, "corpus.txt", jsonl([("Michael", "That's what she said"), ("Pam", "Michael..."),
                                                ("Michael", "I'm not superstitious")]))
    assert detect_format(path) == "jsonl"
    report = await import_export(settings, store, user, path, as_participant="Michael")
    assert (report.own, report.context) == (2, 1)


async def test_import_needs_learn_consent_and_stores_nothing_without(settings: Settings, store: Store,
                                                                     tmp_path: Path) -> None:
    user = await store.users.get_or_create("console", "ana", "Ana")
    path = write(tmp_path, "c.jsonl", jsonl([("Ana", "hi")]))
    with pytest.raises(ImportFailed, match="learn"):
        await import_export(settings, store, user, path, as_participant="Ana")
    assert await store.messages.counts(user.id) == (0, 0)


async def test_someone_elses_export_is_refused(settings: Settings, store: Store, tmp_path: Path) -> None:
    user = await consenting(store)
    path = write(tmp_path, "r.json", telegram_account(777, [telegram_chat(CHAT)]))
    with pytest.raises(ImportFailed, match="no messages from you"):
        await import_export(settings, store, user, path)
    assert await store.messages.counts(user.id) == (0, 0)


async def test_huge_messages_are_truncated_and_said(settings: Settings, store: Store, tmp_path: Path) -> None:
    user = await consenting(store)
    path = write(tmp_path, "big.jsonl", jsonl([("Ana", "x" * 100_000), ("Ana", "short")]))
    report = await import_export(settings, store, user, path, as_participant="Ana")
    assert report.truncated == 1 and "truncated" in report.summary()
    lengths = sorted(len(m.text) for m in await store.messages.for_training(user.id))
    assert lengths == [5, settings.max_message_chars]
