"""Synthetic exports in each supported format (made up here; never real people's data)."""

from __future__ import annotations

import csv
import io
import json
import zipfile
from pathlib import Path


def telegram_chat(messages: list[tuple[str, str, str | list]], chat_type: str = "personal_chat") -> dict:
    """A single-chat result.json; messages are (from_id, from, text) with text a str or entity list."""
    items = [{"id": 1, "type": "service", "date": "2024-01-01T09:00:00", "date_unixtime": "1704099600",
              "actor": "Ana", "actor_id": "user1", "action": "create_group"}]
    for i, (from_id, name, text) in enumerate(messages, start=2):
        items.append({"id": i, "type": "message", "date": "2024-01-01T10:00:00", "date_unixtime": str(1704103200 + i),
                      "from": name, "from_id": from_id, "text": text, "text_entities": [],
                      **({"reply_to_message_id": i - 1} if i > 2 else {})})
    return {"name": "Ana & Bo", "type": chat_type, "id": 4242, "messages": items}


def telegram_account(user_id: int, chats: list[dict]) -> dict:
    return {"about": "Telegram export", "personal_information": {"user_id": user_id, "first_name": "Ana"},
            "chats": {"about": "chats", "list": chats}}


def chat_exporter(messages: list[tuple[str, str, str]]) -> dict:
    return {
        "guild": {"id": "1", "name": "Guild"},
        "channel": {"id": "777", "type": "GuildTextChat", "name": "general"},
        "messages": [
            {"id": str(1000 + i), "type": "Default", "timestamp": f"2024-02-01T10:{i % 60:02d}:00+00:00",
             "content": text, "author": {"id": author_id, "name": name, "nickname": name},
             **({"reference": {"messageId": str(999 + i)}} if i else {})}
            for i, (author_id, name, text) in enumerate(messages)
        ],
        "messageCount": len(messages),
    }


def discord_package(path: Path, channels: dict[str, list[str]], *, csv_channels: tuple[str, ...] = (),
                    upper: bool = True) -> Path:
    """A data-package zip: Account/user.json and Messages/c<id>/{channel.json, messages.json|csv}."""
    account, msgs = ("Account", "Messages") if upper else ("account", "messages")
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(f"{account}/user.json", json.dumps({"id": "55", "username": "ana", "global_name": "Ana"}))
        zf.writestr(f"{msgs}/index.json", json.dumps({cid: f"channel {cid}" for cid in channels}))
        for cid, texts in channels.items():
            folder = f"{msgs}/c{cid}" if upper else f"{msgs}/{cid}"
            zf.writestr(f"{folder}/channel.json", json.dumps({"id": cid, "type": 1 if cid.startswith("9") else 0}))
            rows = [{"ID": str(int(cid) * 1000 + i), "Timestamp": f"2023-05-0{1 + i % 9} 12:00:00", "Contents": t,
                     "Attachments": ""} for i, t in enumerate(texts)]
            if cid in csv_channels:
                buffer = io.StringIO()
                writer = csv.DictWriter(buffer, fieldnames=["ID", "Timestamp", "Contents", "Attachments"])
                writer.writeheader()
                writer.writerows(rows)
                zf.writestr(f"{folder}/messages.csv", buffer.getvalue())
            else:
                zf.writestr(f"{folder}/messages.json", json.dumps(rows))
    return path


def jsonl(lines: list[tuple[str, str]]) -> str:
    return "".join(json.dumps({"speaker": s, "text": t}) + "\n" for s, t in lines)
