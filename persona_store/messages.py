"""Messages kept for a user (their own lines and, from imports, context lines), and search over them."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

import aiosqlite

from persona_store.connection import Database
from persona_store.errors import MessageQuotaFull
from persona_store.models import AddResult, NewMessage, StoredMessage

_COLUMNS = "id, owner_id, platform, chat_id, message_id, author, is_own, ts, text, source, reply_to, is_dm"
_M_COLUMNS = ", ".join("m." + column.strip() for column in _COLUMNS.split(","))
_WORD = re.compile(r"\w{2,}", re.UNICODE)
# Enough words to find similar lines; more only slows the OR query down.
_MAX_QUERY_WORDS = 24


# Others' lines looked at per answer wanted (`Messages.answers_to`).
_ANSWER_CANDIDATES = 8

# Rows deleted per write transaction: each one holds the write lock briefly.
_DELETE_BATCH = 2_000
# Row values per query when checking which messages are already stored.
_LOOKUP_BATCH = 300

_INSERT = (
    "INSERT OR IGNORE INTO messages (owner_id, platform, chat_id, message_id, author, is_own, ts, text, source,"
    " reply_to, is_dm) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


_LEARNING = "SELECT granted FROM consent_events WHERE user_id = ? AND scope = 'learn' ORDER BY id DESC LIMIT 1"


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


async def _count(conn: aiosqlite.Connection, owner_id: int) -> int:
    async with conn.execute("SELECT count(*) FROM messages WHERE owner_id = ?", (owner_id,)) as cursor:
        return int((await cursor.fetchone())[0])


async def _insert_within(conn: aiosqlite.Connection, rows: list[tuple], room: int) -> tuple[int, int, list[tuple]]:
    """Insert rows in order until `room` new ones are stored; returns (own added, context added, rows not tried)."""
    added = {True: 0, False: 0}
    while rows and room > 0:
        chunk, rows = rows[:room], rows[room:]
        for own in (True, False):
            part = [row for row in chunk if bool(row[5]) is own]
            if part:
                # executemany's rowcount sums the rows each statement changed, triggers excluded.
                async with conn.executemany(_INSERT, part) as cursor:
                    added[own] += cursor.rowcount
                    room -= cursor.rowcount
    return added[True], added[False], rows


async def _not_stored(conn: aiosqlite.Connection, owner_id: int, rows: list[tuple]) -> int:
    """How many distinct messages among `rows` the owner does not keep yet."""
    keys = list({(row[1], row[2], row[3]) for row in rows})
    found = 0
    for start in range(0, len(keys), _LOOKUP_BATCH):
        chunk = keys[start : start + _LOOKUP_BATCH]
        values = ", ".join("(?, ?, ?)" for _ in chunk)
        async with conn.execute(
            f"SELECT count(*) FROM messages WHERE owner_id = ? AND (platform, chat_id, message_id) IN (VALUES {values})",
            (owner_id, *(part for key in chunk for part in key)),
        ) as cursor:
            found += int((await cursor.fetchone())[0])
    return len(keys) - found


def _of_owner(owner_id: int, query: str) -> str:
    """`query` over one owner's lines: both indexes hold each line's owner id as a column."""
    return f'owner_id : "{owner_id}" AND ({query})'


def fts_query(text: str) -> str | None:
    """An FTS5 query matching any word of `text`; words are quoted so user text is never syntax."""
    words = list(dict.fromkeys(word.lower() for word in _WORD.findall(text)))[:_MAX_QUERY_WORDS]
    return " OR ".join(f'"{word}"' for word in words) or None


class Messages:
    def __init__(self, db: Database, max_per_owner: int = 200_000) -> None:
        self._db = db
        self.max_per_owner = max_per_owner

    async def add_many(self, messages: Sequence[NewMessage]) -> AddResult:
        """Store a batch in one transaction; messages already stored (same owner, chat, id) are skipped.

        An owner never keeps more than `max_per_owner` messages: what fits is stored (their own lines
        first), and if anything new was left out MessageQuotaFull says so after the commit.
        """
        if not messages:
            return AddResult(0, 0)
        async with self._db.write() as conn:
            result, refused = await self._add(conn, messages)
        return self._within_quota(result, refused)

    async def add_while_learning(self, owner_id: int, messages: Sequence[NewMessage]) -> AddResult | None:
        """Store a batch (as add_many) only if the owner's `learn` consent is on, checked in the same
        transaction: writes are serialized, so nothing is written after a withdrawal. None means the
        consent was off and nothing was stored."""
        async with self._db.write() as conn:
            async with conn.execute(_LEARNING, (owner_id,)) as cursor:
                row = await cursor.fetchone()
            if row is None or not row[0]:
                return None
            result, refused = await self._add(conn, messages)
        return self._within_quota(result, refused)

    async def _add(self, conn: aiosqlite.Connection, messages: Sequence[NewMessage]) -> tuple[AddResult, int]:
        """Insert inside the caller's write transaction, each owner up to the quota: (result, new ones refused)."""
        by_owner: dict[int, list[tuple]] = {}
        for m in messages:
            by_owner.setdefault(m.owner_id, []).append(
                (m.owner_id, m.platform, m.chat_id, m.message_id, m.author, int(m.is_own), m.ts, m.text,
                 m.source, m.reply_to, int(m.is_dm))
            )
        own = context = refused = 0
        for owner_id, rows in by_owner.items():
            rows.sort(key=lambda row: not row[5])
            room = self.max_per_owner - await _count(conn, owner_id)
            added_own, added_context, left = await _insert_within(conn, rows, room)
            own += added_own
            context += added_context
            refused += await _not_stored(conn, owner_id, left)
        return AddResult(added=own + context, duplicates=len(messages) - own - context - refused, own_added=own), refused

    def _within_quota(self, result: AddResult, refused: int) -> AddResult:
        """The result, or MessageQuotaFull (raised after the commit: what fitted stays stored)."""
        if refused:
            raise MessageQuotaFull(self.max_per_owner, result, refused)
        return result

    async def delete_for(self, owner_id: int) -> int:
        """Delete the owner's messages a batch per transaction, so other writers are never held up long."""
        deleted = 0
        while True:
            changed = await self._db.execute(
                "DELETE FROM messages WHERE id IN (SELECT id FROM messages WHERE owner_id = ? LIMIT ?)",
                (owner_id, _DELETE_BATCH),
            )
            if not changed:
                return deleted
            deleted += changed

    async def merge_index(self) -> None:
        """Merge each full-text index into one segment, dropping the words of deleted messages.

        Deleting a message only adds a delete marker to the index; its words stay in older segments
        until those are merged with the marker. SQLite 3.40's incremental 'merge' with a negative
        page count corrupts the index when inserts come between its steps, so this is one 'optimize'
        transaction per index: its cost follows the index's size, not the whole file's.
        """
        for index in ("messages_fts", "context_fts"):
            await self._db.execute(f"INSERT INTO {index} ({index}) VALUES ('optimize')")

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

    async def what_followed_own(self, owner_id: int, limit: int) -> list[tuple[bool, float]]:
        """For each of the owner's `limit` most recent own lines that something followed in its chat:
        whether the next message kept there is the owner's too, and how many seconds after it came."""
        rows = await self._db.fetchall(
            "SELECT n.is_own, n.ts - o.ts FROM ("
            " SELECT m.ts, (SELECT n.id FROM messages n WHERE n.owner_id = m.owner_id AND n.platform = m.platform"
            "  AND n.chat_id = m.chat_id AND (n.ts > m.ts OR (n.ts = m.ts AND n.id > m.id))"
            "  ORDER BY n.ts, n.id LIMIT 1) AS next_id"
            " FROM messages m WHERE m.owner_id = ? AND m.is_own = 1 ORDER BY m.ts DESC, m.id DESC LIMIT ?"
            ") o JOIN messages n ON n.id = o.next_id",
            (owner_id, limit),
        )
        return [(bool(row[0]), float(row[1])) for row in rows]

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
        return await self._matching(
            text, limit,
            f"SELECT {_M_COLUMNS} FROM messages_fts JOIN messages m ON m.id = messages_fts.rowid"
            " WHERE messages_fts MATCH ? AND m.owner_id = ? AND m.is_own = 1 AND (? OR m.is_dm = 0)"
            " ORDER BY bm25(messages_fts, 1.0, 0.0) LIMIT ?",
            lambda query: (_of_owner(owner_id, query), owner_id, int(include_dm), limit),
        )

    async def answers_to(self, owner_id: int, text: str, limit: int, include_dm: bool) -> list[StoredMessage]:
        """What the owner answered when others said something like `text`: the owner's lines that came
        right after others' lines most like it (BM25), best first.

        How the owner replied to a like message shows a twin what its owner says back. The best
        `_ANSWER_CANDIDATES` × `limit` matches are looked at, as most lines of a group chat are followed
        by someone else's. A line follows one line only, so no answer is found twice.
        """
        return await self._matching(
            text, limit,
            f"SELECT {_M_COLUMNS} FROM ("
            " SELECT c.id, c.owner_id, c.platform, c.chat_id, c.ts, bm25(context_fts, 1.0, 0.0) AS rank"
            " FROM context_fts JOIN messages c ON c.id = context_fts.rowid"
            " WHERE context_fts MATCH ? AND c.owner_id = ? ORDER BY rank LIMIT ?"
            ") hit JOIN messages m ON m.id = ("
            " SELECT n.id FROM messages n WHERE n.owner_id = hit.owner_id AND n.platform = hit.platform"
            " AND n.chat_id = hit.chat_id AND (n.ts > hit.ts OR (n.ts = hit.ts AND n.id > hit.id))"
            " ORDER BY n.ts, n.id LIMIT 1)"
            " WHERE m.is_own = 1 AND (? OR m.is_dm = 0) ORDER BY hit.rank LIMIT ?",
            lambda query: (_of_owner(owner_id, query), owner_id, limit * _ANSWER_CANDIDATES, int(include_dm), limit),
        )

    async def _matching(self, text: str, limit: int, sql: str, params: Callable[[str], tuple]
                        ) -> list[StoredMessage]:
        """The messages `sql` selects with the full-text query of `text` in `params`: none when `text`
        has no words to search by or `limit` is 0."""
        query = fts_query(text)
        if query is None or limit <= 0:
            return []
        return [_message(row) for row in await self._db.fetchall(sql, params(query))]
