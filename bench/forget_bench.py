"""How long a /forget stalls everyone else's writes: prints one JSON object.

A store holds `--messages` messages of many users; one user with `--victim` messages is deleted
while a writer in this process (the bot) and one on its own connection (like the trainer) keep
writing one row at a time. The longest wait of each writer is the stall others see.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sqlite3
import tempfile
import threading
import time
from pathlib import Path

from bench.shared import percentile
from persona_store import NewMessage, Store, open_store

BATCH = 5_000
USERS = 50


def lines(owner_id: int, count: int, start: int = 0) -> list[NewMessage]:
    return [
        NewMessage(owner_id, "bench", f"chat{i // 500}", str(start + i), "Bench", i % 3 == 0, float(i),
                   f"message {start + i} of user {owner_id}: some ordinary chat text, lol", source="import")
        for i in range(count)
    ]


async def fill(store: Store, messages: int, victim_messages: int) -> int:
    """`messages` rows spread over USERS users, plus the victim's; returns the victim's id."""
    for u in range(USERS):
        user = await store.users.get_or_create("bench", f"u{u}", f"User {u}")
        per_user = messages // USERS
        for start in range(0, per_user, BATCH):
            await store.messages.add_many(lines(user.id, min(BATCH, per_user - start), start))
    victim = await store.users.get_or_create("bench", "victim", "Victim")
    for start in range(0, victim_messages, BATCH):
        await store.messages.add_many(lines(victim.id, min(BATCH, victim_messages - start), start))
    return victim.id


def other_process_writer(path: Path, stop: threading.Event, waits: list[float]) -> None:
    """Writes like the trainer's heartbeat, on its own connection, with SQLite's busy timeout of 120 s."""
    conn = sqlite3.connect(path, timeout=120, isolation_level=None)
    conn.execute("CREATE TABLE IF NOT EXISTS bench_heartbeat (at REAL)")
    while not stop.is_set():
        start = time.perf_counter()
        conn.execute("INSERT INTO bench_heartbeat VALUES (?)", (start,))
        waits.append(time.perf_counter() - start)
        time.sleep(0.005)
    conn.close()


async def measure(messages: int, victim_messages: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.sqlite3"
        async with open_store(path) as store:
            victim = await fill(store, messages, victim_messages)
            other = await store.users.get_or_create("bench", "writer", "Writer")
            stop = threading.Event()
            thread_waits: list[float] = []
            thread = threading.Thread(target=other_process_writer, args=(path, stop, thread_waits))
            thread.start()
            bot_waits: list[float] = []

            async def bot_writer() -> None:
                i = 0
                while not stop.is_set():
                    start = time.perf_counter()
                    await store.messages.add_many(lines(other.id, 1, i))
                    bot_waits.append(time.perf_counter() - start)
                    i += 1
                    await asyncio.sleep(0.005)

            writer = asyncio.create_task(bot_writer())
            await asyncio.sleep(0.5)
            start = time.perf_counter()
            await store.delete_user(victim)
            forget_s = time.perf_counter() - start
            await asyncio.sleep(0.5)
            stop.set()
            await writer
            await asyncio.to_thread(thread.join)
    return {
        "messages": messages, "victim_messages": victim_messages, "forget_s": round(forget_s, 2),
        "bot_write_max_s": round(max(bot_waits), 3), "bot_write_p99_s": round(percentile(bot_waits, 0.99), 3),
        "other_connection_write_max_s": round(max(thread_waits), 3),
        "other_connection_write_p99_s": round(percentile(thread_waits, 0.99), 3),
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=200_000)
    parser.add_argument("--victim", type=int, default=20_000)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(measure(args.messages, args.victim))))
