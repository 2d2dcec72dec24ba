"""Messages kept for a user (their own lines and, from imports, context lines), and search over them."""

from __future__ import annotations

import re
from collections.abc import Sequence

import aiosqlite

from persona_store.connection import Database
from persona_store.models import AddResult, NewMessage, StoredMessage

_COLUMNS = "id, owner_id, platform, chat_id, message_id, author, is_own, ts, text, source, reply_to, is_dm"
_WORD = re.compile(r"\w{2,}", re.UNICODE)
# Enough words to find similar lines; more only slows the OR query down.
_MAX_QUERY_WORDS = 24


_INSERT = (
    "INSERT OR IGNORE INTO messages (owner_id, platform, chat_id, message_id, author, is_own, ts, text, source,"
    " reply_to, is_dm) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


_LEARNING = "SELECT granted FROM consent_events WHERE user_id = ? AND scope = 'learn' ORDER BY id DESC LIMIT 1"


async def _insert(conn: aiosqlite.Connection, messages: Sequence[NewMessage]) -> AddResult:
    """Insert a batch inside the caller's write transaction; own lines and context counted apart."""
    rows = [
        (m.owner_id, m.platform, m.chat_id, m.message_id, m.author, int(m.is_own), m.ts, m.text,
         m.source, m.reply_to, int(m.is_dm))
        for m in messages
    ]
    added = {True: 0, False: 0}
    for own in (True, False):
        part = [row for row in rows if bool(row[5]) is own]
        if part:
            # executemany's rowcount sums the rows each statement changed, triggers excluded.
            async with conn.executemany(_INSERT, part) as cursor:
                added[own] = cursor.rowcount
    total = added[True] + added[False]
    return AddResult(added=total, duplicates=len(rows) - total, own_added=added[True])


def _message(row: aiosqlite.Row) -> StoredMessage:
    return StoredMessage(
        id=row["id"],
        owner_id=row["owner_id"],
        platform=row["platform"],
        chat_id=row["chat_id"],
        message_id=row["message_id"],
        author=row["author"],
        is_own=bool(row["is_own"]),
        ts=row["ts"],
        text=row["text"],
        source=row["source"],
        reply_to=row["reply_to"],
        is_dm=bool(row["is_dm"]),
    )


def fts_query(text: str) -> str | None:
    """An FTS5 query matching any word of `text`; words are quoted so user text is never syntax."""
    words = list(dict.fromkeys(word.lower() for word in _WORD.findall(text)))[:_MAX_QUERY_WORDS]
    return " OR ".join(f'"{word}"' for word in words) or None


class Messages:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def add_many(self, messages: Sequence[NewMessage]) -> AddResult:
        """Store a batch in one transaction; messages already stored (same owner, chat, id) are skipped."""
        if not messages:
            return AddResult(0, 0)
        async with self._db.write() as conn:
            return await _insert(conn, messages)

    async def add_while_learning(self, owner_id: int, messages: Sequence[NewMessage]) -> AddResult | None:
        """Store a batch only if the owner's `learn` consent is on, checked in the same transaction.

        Writes are serialized, so a withdrawal recorded before this batch is seen here and nothing
        is written after it; None means the consent was off and nothing was stored.
        """
        async with self._db.write() as conn:
            async with conn.execute(_LEARNING, (owner_id,)) as cursor:
                row = await cursor.fetchone()
            if row is None or not row[0]:
                return None
            return await _insert(conn, messages)

    async def for_training(self, owner_id: int) -> list[StoredMessage]:
        """All of the owner's messages, in conversation order within each chat."""
        rows = await self._db.fetchall(
            f"SELECT {_COLUMNS} FROM messages WHERE owner_id = ? ORDER BY platform, chat_id, ts, id", (owner_id,)
        )
        return [_message(row) for row in rows]

    async def recent_own_texts(self, owner_id: int, limit: int) -> list[str]:
        """The text of the owner's own `limit` most recent lines (newest first), e.g. to see how long they write."""
        rows = await self._db.fetchall(
            "SELECT text FROM messages WHERE owner_id = ? AND is_own = 1 ORDER BY ts DESC, id DESC LIMIT ?",
            (owner_id, limit),
        )
        return [row[0] for row in rows]

    async def counts(self, owner_id: int) -> tuple[int, int]:
        """(own messages, context messages) stored for the owner."""
        row = await self._db.fetchone(
            "SELECT coalesce(sum(is_own), 0), count(*) - coalesce(sum(is_own), 0) FROM messages WHERE owner_id = ?",
            (owner_id,),
        )
        return int(row[0]), int(row[1])

    async def similar(self, owner_id: int, text: str, limit: int, include_dm: bool) -> list[StoredMessage]:
        """The owner's own past lines most like `text` (BM25), best first.

        `include_dm=False` keeps lines captured in private chats out of answers given in groups.
        """
        query = fts_query(text)
        if query is None or limit <= 0:
            return []
        rows = await self._db.fetchall(
            f"SELECT {', '.join('m.' + c.strip() for c in _COLUMNS.split(','))} FROM messages_fts"
            " JOIN messages m ON m.id = messages_fts.rowid"
            " WHERE messages_fts MATCH ? AND m.owner_id = ? AND m.is_own = 1 AND (? OR m.is_dm = 0)"
            " ORDER BY bm25(messages_fts) LIMIT ?",
            (query, owner_id, int(include_dm), limit),
        )
        return [_message(row) for row in rows]
