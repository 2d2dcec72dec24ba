"""Each twin's stable face: the generator latent and style it was drawn from."""

from __future__ import annotations

from persona_store.connection import Database, now
from persona_store.models import AvatarRecord


class Avatars:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def get(self, user_id: int) -> AvatarRecord | None:
        row = await self._db.fetchone("SELECT * FROM avatars WHERE user_id = ?", (user_id,))
        if row is None:
            return None
        return AvatarRecord(row["user_id"], row["style"], bytes(row["latent"]), row["model_id"], row["created_at"])

    async def put(self, user_id: int, style: str, latent: bytes, model_id: str) -> AvatarRecord:
        """Keep this face for the user until they ask for another."""
        await self._db.execute(
            "INSERT OR REPLACE INTO avatars (user_id, style, latent, model_id, created_at) VALUES (?, ?, ?, ?, ?)",
            (user_id, style, latent, model_id, now()),
        )
        record = await self.get(user_id)
        assert record is not None
        return record

    async def delete(self, user_id: int) -> int:
        return await self._db.execute("DELETE FROM avatars WHERE user_id = ?", (user_id,))
