"""Batched message writes into the store: prints one JSON object (median of several runs)."""

from __future__ import annotations

import asyncio
import json
import statistics
import tempfile
import time
from pathlib import Path

from persona_store import NewMessage, open_store

BATCH = 5_000
RUNS = 5


async def measure() -> dict[str, float]:
    rates = []
    with tempfile.TemporaryDirectory() as tmp:
        async with open_store(Path(tmp) / "bench.sqlite3") as store:
            user = await store.users.get_or_create("bench", "u", "Bench")
            for run in range(RUNS):
                batch = [
                    NewMessage(user.id, "bench", f"chat{run}", str(i), "Bench", i % 3 == 0, float(i),
                               f"message {i} of run {run}: some ordinary chat text, lol", source="import")
                    for i in range(BATCH)
                ]
                start = time.perf_counter()
                result = await store.messages.add_many(batch)
                rates.append(result.added / (time.perf_counter() - start))
    return {"batch": BATCH, "runs": RUNS, "messages_per_s_median": round(statistics.median(rates)),
            "messages_per_s_min": round(min(rates))}


if __name__ == "__main__":
    print(json.dumps(asyncio.run(measure())))
