"""The full-text indexes: `messages_fts` holds the owners' own lines only (kept so by its triggers, refilled
so by migration 5), `context_fts` the others' lines only; both hold each line's owner (migration 6)."""

from __future__ import annotations

from pathlib import Path

import aiosqlite

from persona_store import Store, open_store
from persona_store.connection import Database
from tests.persona_store.rows import message


async def indexed(db: Database, index: str = "messages_fts") -> dict[int, set[str]]:
    """Each row's words of its text in `index`, read from the index itself (a plain scan of an external-content
    table would read `messages`). Fails if the index is malformed."""
    await db.execute(f"INSERT INTO {index} ({index}) VALUES ('integrity-check')")
    await db.fetchall(
        f"CREATE VIRTUAL TABLE IF NOT EXISTS temp.{index}_words USING fts5vocab(main, {index}, 'instance')"
    )
    words: dict[int, set[str]] = {}
    for doc, term in await db.fetchall(f"SELECT doc, term FROM temp.{index}_words WHERE col = 'text'"):
        words.setdefault(doc, set()).add(term)
    return words


async def own_ids(db: Database, own: bool = True) -> set[int]:
    return {row[0] for row in await db.fetchall("SELECT id FROM messages WHERE is_own = ?", (int(own),))}


async def context_indexed_as_stored(db: Database) -> bool:
    """Whether `context_fts` holds exactly the others' lines, each with the words of its text."""
    words = await indexed(db, "context_fts")
    texts = dict(await db.fetchall("SELECT id, lower(text) FROM messages WHERE is_own = 0"))
    return set(words) == await own_ids(db, own=False) and all(
        all(word in texts[doc] for word in doc_words) for doc, doc_words in words.items())


async def database_at(path: Path, version: int, users: int) -> Database:
    """A store's database migrated only up to `version`, with `users` users (ids 1, 2, …)."""
    db = Database(await aiosqlite.connect(path, isolation_level=None), path)
    await db.migrate(target=version)
    for i in range(users):
        await db.execute(
            "INSERT INTO users (platform, platform_user_id, display_name, created_at) VALUES ('c', ?, ?, 0)",
            (str(i), f"User {i}"),
        )
    return db


async def insert_row(db: Database, owner_id: int, message_id: str, own: int, ts: float, text: str) -> None:
    """A message written as that version's schema takes it, with its triggers."""
    await db.execute(
        "INSERT INTO messages (owner_id, platform, chat_id, message_id, author, is_own, ts, text, source)"
        " VALUES (?, 'c', 'chat', ?, 'x', ?, ?, ?, 'import')",
        (owner_id, message_id, own, ts, text),
    )


async def found(store: Store, owner_id: int, text: str) -> list[str]:
    return sorted(m.text for m in await store.messages.similar(owner_id, text, 10, include_dm=True))


async def test_only_own_lines_are_indexed_and_found(tmp_path: Path) -> None:
    async with open_store(tmp_path / "db.sqlite3") as store:
        me = await store.users.get_or_create("console", "me", "Me")
        await store.messages.add_many([
            message(me.id, 1, "my pancake recipe"),
            message(me.id, 2, "pancake talk from a friend with marmalade", own=False),
            message(me.id, 3, "marmalade is mine too"),
        ])
        words = await indexed(store.db)
        assert set(words) == await own_ids(store.db) and len(words) == 2
        assert "friend" not in set().union(*words.values())
        assert await context_indexed_as_stored(store.db)
        assert await found(store, me.id, "pancake marmalade") == ["marmalade is mine too", "my pancake recipe"]


async def test_deleting_lines_keeps_the_index_to_the_remaining_own_lines(tmp_path: Path) -> None:
    async with open_store(tmp_path / "db.sqlite3") as store:
        me = await store.users.get_or_create("console", "me", "Me")
        gone = await store.users.get_or_create("console", "gone", "Gone")
        await store.messages.add_many([
            message(me.id, 1, "kept walrus line"),
            message(me.id, 2, "dropped walrus ptarmigan line"),
            message(me.id, 3, "a friend's walrus aside", own=False),
            message(me.id, 4, "another friend's walrus", own=False),
            message(gone.id, 5, "gone user's walrus"),
            message(gone.id, 6, "gone user's friend on walrus and quetzal", own=False),
        ])
        await store.db.execute("DELETE FROM messages WHERE owner_id = ? AND message_id IN ('2', '3')", (me.id,))
        await store.delete_user(gone.id)  # its rows go by delete_for, then the index is merged
        words = await indexed(store.db)
        assert set(words) == await own_ids(store.db) and len(words) == 1
        assert await found(store, me.id, "walrus") == ["kept walrus line"]
        assert await store.db.fetchall("SELECT rowid FROM messages_fts WHERE messages_fts MATCH 'ptarmigan'") == []
        assert await context_indexed_as_stored(store.db) and len(await own_ids(store.db, own=False)) == 1
        assert not any(b"quetzal" in path.read_bytes() for path in tmp_path.iterdir())  # both indexes merged


async def test_a_line_enters_and_leaves_the_index_as_its_text_or_ownership_changes(tmp_path: Path) -> None:
    async with open_store(tmp_path / "db.sqlite3") as store:
        me = await store.users.get_or_create("console", "me", "Me")
        await store.messages.add_many([
            message(me.id, 1, "own line about otters"),
            message(me.id, 2, "friend line about otters", own=False),
            message(me.id, 3, "own line about beavers"),
            message(me.id, 4, "friend line about beavers", own=False),
        ])
        update = "UPDATE messages SET {} WHERE owner_id = ? AND message_id = ?"
        await store.db.execute(update.format("is_own = 0"), (me.id, "1"))
        await store.db.execute(update.format("is_own = 1"), (me.id, "2"))
        await store.db.execute(update.format("text = 'own line about badgers'"), (me.id, "3"))
        await store.db.execute(update.format("text = 'friend line about badgers'"), (me.id, "4"))
        words = await indexed(store.db)
        assert set(words) == await own_ids(store.db) and len(words) == 2
        assert await found(store, me.id, "otters") == ["friend line about otters"]
        assert await found(store, me.id, "beavers") == []
        assert await found(store, me.id, "badgers") == ["own line about badgers"]
        assert await context_indexed_as_stored(store.db)


async def test_migration_5_drops_the_context_lines_from_an_existing_index(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite3"
    db = await database_at(path, 4, users=2)
    rows = [(1, "m1", 1, "ana's own quokka line"), (1, "m2", 0, "bo's quokka reply in ana's import"),
            (2, "m1", 1, "bo's own numbat line"), (2, "m2", 0, "ana's numbat reply in bo's import")]
    for owner_id, message_id, own, text in rows:
        await insert_row(db, owner_id, message_id, own, 0.0, text)
    assert len(await indexed(db)) == 4
    await db.close()
    async with open_store(path) as store:
        words = await indexed(store.db)
        assert set(words) == await own_ids(store.db) and len(words) == 2
        assert "reply" not in set().union(*words.values())
        assert await found(store, 1, "quokka numbat") == ["ana's own quokka line"]
        await store.db.execute("DELETE FROM messages WHERE message_id = 'm2'")
        await store.db.execute("DELETE FROM messages WHERE owner_id = 1")
        assert set(await indexed(store.db)) == await own_ids(store.db) == {3}
        assert await found(store, 2, "quokka numbat") == ["bo's own numbat line"]
        assert await context_indexed_as_stored(store.db)


async def test_migration_6_indexes_the_context_lines_already_stored(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite3"
    db = await database_at(path, 5, users=1)
    for i, (own, text) in enumerate([(0, "which wombat is yours?"), (1, "the grumpy one"), (0, "nice")]):
        await insert_row(db, 1, str(i), own, float(i), text)
    await db.close()
    async with open_store(path) as store:
        assert await context_indexed_as_stored(store.db) and len(await indexed(store.db, "context_fts")) == 2
        answers = await store.messages.answers_to(1, "Which wombat?", 3, include_dm=False)
        assert [m.text for m in answers] == ["the grumpy one"]


async def test_migration_6_indexes_each_own_line_with_its_owner(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite3"
    db = await database_at(path, 5, users=2)
    for owner_id, message_id, own, text in [(1, "m1", 1, "ana's dingo line"), (2, "m1", 1, "bo's dingo line"),
                                            (2, "m2", 0, "ana's dingo aside in bo's import")]:
        await insert_row(db, owner_id, message_id, own, 0.0, text)
    await db.close()
    async with open_store(path) as store:
        assert set(await indexed(store.db)) == await own_ids(store.db) and await context_indexed_as_stored(store.db)
        owners = await store.db.fetchall(  # the vocabulary table that indexed() made
            "SELECT DISTINCT doc, term FROM temp.messages_fts_words WHERE col = 'owner_id' ORDER BY doc")
        assert [tuple(row) for row in owners] == [(1, "1"), (2, "2")]
        assert await found(store, 1, "dingo") == ["ana's dingo line"]
        assert await found(store, 2, "dingo") == ["bo's dingo line"]
