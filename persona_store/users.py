"""Users: one row per (platform, platform user id)."""

from __future__ import annotations

import aiosqlite

from persona_store.connection import Database, now
from persona_store.models import User


def _user(row: aiosqlite.Row) -> User:
    return User(row["id"], row["platform"], row["platform_user_id"], row["display_name"], row["created_at"])


class Users:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def get_or_create(self, platform: str, platform_user_id: str, display_name: str) -> User:
        """The user for this platform identity, created on first sight; the display name follows renames."""
        async with self._db.write() as conn:
            await conn.execute(
                "INSERT INTO users (platform, platform_user_id, display_name, created_at) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (platform, platform_user_id) DO UPDATE SET display_name = excluded.display_name"
                " WHERE display_name != excluded.display_name",
                (platform, platform_user_id, display_name, now()),
            )
        user = await self.lookup(platform, platform_user_id)
        assert user is not None
        return user

    async def lookup(self, platform: str, platform_user_id: str) -> User | None:
        """The user with exactly this platform id, without creating one."""
        row = await self._db.fetchone(
            "SELECT * FROM users WHERE platform = ? AND platform_user_id = ?", (platform, platform_user_id)
        )
        return _user(row) if row else None

    async def get(self, user_id: int) -> User | None:
        row = await self._db.fetchone("SELECT * FROM users WHERE id = ?", (user_id,))
        return _user(row) if row else None

    async def named(self, platform: str, name: str) -> list[User]:
        """Every user of the platform whose display name is `name` (whole, case-insensitive), oldest first.

        Display names are chosen freely and not unique, so more than one is possible: callers must not guess.
        """
        rows = await self._db.fetchall(
            "SELECT * FROM users WHERE platform = ? AND lower(display_name) = lower(?) ORDER BY id",
            (platform, name),
        )
        return [_user(row) for row in rows]

    async def candidates(self, platform: str, name_or_id: str) -> list[User]:
        """Whom `name_or_id` may mean (a leading @ ignored): the user with this platform id, else every
        user with this display name."""
        key = name_or_id.strip().removeprefix("@")
        user = await self.lookup(platform, key)
        return [user] if user is not None else await self.named(platform, key)

    async def find(self, platform: str, name_or_id: str) -> User | None:
        """The user with this platform id, else the only one with this display name.

        None when nobody, or several people, have that name.
        """
        found = await self.candidates(platform, name_or_id)
        return found[0] if len(found) == 1 else None

    async def delete(self, user_id: int) -> int:
        """Remove the user; every row that references them goes with it (ON DELETE CASCADE)."""
        return await self._db.execute("DELETE FROM users WHERE id = ?", (user_id,))
