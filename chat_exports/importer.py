"""Importing an export into a user's kept messages: validate fully, then store in batches.

The whole file is read once before anything is stored (format, participants, the importing user's
own messages), so a broken or foreign export stores nothing. Then messages are stored in batches,
each one transaction that first re-checks `learn` consent: a withdrawal stops the import, a crash
leaves whole batches, and re-importing completes the rest.
"""

from __future__ import annotations

import asyncio
import csv
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from itertools import islice
from pathlib import Path

import ijson

from chat_exports.detect import ExportReader, open_reader
from chat_exports.limits import ReadLimits
from chat_exports.records import ImportFailed, ImportReport, ImportStopped, NeedParticipant, ParsedMessage, Participant
from chat_exports.stream import TOO_DEEP
from persona_store import NewMessage, Store, User
from twinbot.settings import Settings

BATCH = 1_000
PARSE_ERRORS = (ijson.JSONError, ijson.IncompleteJSONError, UnicodeDecodeError, RecursionError, ValueError, OSError)


@dataclass
class Scan:
    names: dict[str, str]
    counts: Counter
    skipped: int

    def participants(self) -> list[Participant]:
        return [Participant(pid, self.names.get(pid, pid), n) for pid, n in self.counts.most_common()]


def _guard(iterator: Iterator) -> Iterator:
    """Turn parser errors anywhere in the stream into one friendly ImportFailed."""
    try:
        yield from iterator
    except ImportFailed:
        raise
    except RecursionError:
        raise ImportFailed(TOO_DEEP) from None
    except csv.Error as exc:  # the csv module's own bound on one field, among others
        raise ImportFailed(f"A CSV file in that export can't be read ({str(exc)[:100]}).") from None
    except PARSE_ERRORS as exc:
        raw = exc.args[0] if exc.args else ""
        text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(exc)  # yajl reports bytes
        detail = text.splitlines()[0][:100] if text.strip() else type(exc).__name__
        raise ImportFailed(f"That export is damaged or truncated and can't be read ({detail}).") from None


def _keepable(reader: ExportReader) -> Iterator[ParsedMessage | None]:
    """The export's messages, None for each one there is nothing to keep of (unreadable, or blank), so
    the scan that finds the owner and the import that stores their lines skip the same ones."""
    for message in _guard(reader.messages()):
        yield message if message is not None and message.text.strip() else None


def scan(reader: ExportReader) -> Scan:
    names: dict[str, str] = {}
    counts: Counter = Counter()
    skipped = 0
    for message in _keepable(reader):
        if message is None:
            skipped += 1
            continue
        counts[message.author_id] += 1
        names.setdefault(message.author_id, message.author_name)
    return Scan(names, counts, skipped)


OPERATOR_PLATFORM = "console"
ACCOUNT_AUTHOR_IDS = {"telegram": "user{}", "discord": "{}"}
"""How each platform's exports write an account as an author (Telegram's `from_id` is `user<id>`)."""


def account_author(reader: ExportReader, user: User) -> str | None:
    """The author id of `user`'s own account in this export, or None for the operator's console users,
    who may import any participant. On a platform, only that platform's exports can show whose they are."""
    if user.platform == OPERATOR_PLATFORM:
        return None
    template = ACCOUNT_AUTHOR_IDS.get(user.platform)
    platform = user.platform.title()
    if template is None or reader.platform != user.platform:
        raise ImportFailed(f"On {platform} I import only {platform} exports that include your own account, "
                           f"and that is a {reader.format} export (the bot's operator can import it with twinbot import).")
    return template.format(user.platform_user_id)


def _candidates(found: Scan, as_participant: str) -> list[str]:
    """The participants `as_participant` names: by id (Telegram's `user` prefix optional), else by name."""
    wanted = as_participant.strip().removeprefix("@")
    for pid in (wanted, f"user{wanted}"):
        if pid in found.counts:
            return [pid]
    return [pid for pid, name in found.names.items() if name.lower() == wanted.lower()]


def pick_owner(reader: ExportReader, found: Scan, as_participant: str | None, account: str | None = None) -> str:
    """The importing user's author id: their `account` when they import from a platform; else stated
    by the export, or chosen by the user; never guessed."""
    if not found.counts:
        raise ImportFailed("That export has no messages in it.")
    if account is not None:
        return _own_account(reader, found, as_participant, account)
    hint = reader.owner_hint()
    if as_participant is None:
        if hint is None:
            raise NeedParticipant(found.participants())
        return hint
    chosen = _candidates(found, as_participant)
    if len(chosen) == 1:
        return chosen[0]
    wanted = as_participant.strip().removeprefix("@")
    if chosen:
        raise ImportFailed(f"Several participants are called {wanted!r}; pick one by id: {', '.join(chosen)}.")
    listed = ", ".join(p.label() for p in found.participants()[:12])
    raise ImportFailed(f"Nobody called {wanted!r} wrote in that export. Participants: {listed}.")


def _own_account(reader: ExportReader, found: Scan, as_participant: str | None, account: str) -> str:
    """The importing account itself: another account's export, or `as:` naming someone else, is refused."""
    hint = reader.owner_hint()
    if hint is not None and hint != account:
        raise ImportFailed(f"That export is another account's ({hint}), not yours ({account}); "
                           "I import only your own messages.")
    if account not in found.counts:
        raise ImportFailed(f"Your account ({account}) wrote nothing in that export; I import only your own messages.")
    if as_participant is not None and account not in _candidates(found, as_participant):
        mine = Participant(account, found.names.get(account, account), found.counts[account]).label()
        raise ImportFailed(f"You are {mine} in that export, not {as_participant.strip()!r}: "
                           "I import only your own messages.")
    return account


def total_size(path: Path) -> int:
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return path.stat().st_size


async def import_export(settings: Settings, store: Store, user: User, path: Path, *,
                        as_participant: str | None = None,
                        progress: Callable[[int], Awaitable[None]] | None = None) -> ImportReport:
    """Import `path` as `user`'s history (needs `learn` consent). ImportFailed/NeedParticipant leave nothing stored."""
    if not (await store.consent.current(user.id)).learn:
        raise ImportFailed("Importing keeps your messages, which needs your `learn` consent first (/consent learn).")
    if not path.exists():
        raise ImportFailed(f"No such file: {path}")
    size = await asyncio.to_thread(total_size, path)
    if size > settings.import_max_bytes:
        raise ImportFailed(f"That export is {size / 1e6:.1f} MB; the limit is {settings.import_max_bytes / 1e6:.0f} MB.")
    limits = ReadLimits.from_settings(settings)
    reader = await asyncio.to_thread(open_reader, path, limits)
    try:
        account = account_author(reader, user)
        found = await asyncio.to_thread(scan, reader)
        limits.stop_clock()
        owner = pick_owner(reader, found, as_participant, account)
        if found.counts[owner] == 0:
            raise ImportFailed(
                f"That export has no messages from you ({found.names.get(owner, owner)}); is it someone else's?"
            )
        return await _store_all(settings, store, user, reader, owner, found, progress)
    finally:
        close = getattr(reader, "close", None)
        if close is not None:
            close()


async def _store_all(settings: Settings, store: Store, user: User, reader: ExportReader, owner: str, found: Scan,
                     progress: Callable[[int], Awaitable[None]] | None) -> ImportReport:
    stream = _keepable(reader)
    limit = settings.max_message_chars
    own = context = present = skipped = truncated = seen = 0

    def rows(batch: list[ParsedMessage | None]) -> list[NewMessage]:
        nonlocal skipped, truncated
        kept = []
        for m in batch:
            if m is None:
                skipped += 1
                continue
            if len(m.text) > limit:
                truncated += 1
            kept.append(NewMessage(
                owner_id=user.id, platform=reader.platform, chat_id=m.chat_id, message_id=m.message_id,
                author=m.author_name, is_own=m.author_id == owner, ts=m.ts, text=m.text[:limit], source="import",
                reply_to=m.reply_to, is_dm=m.is_dm,
            ))
        return kept

    while batch := await asyncio.to_thread(lambda: list(islice(stream, BATCH))):
        seen += len(batch)
        new = rows(batch)
        result = await store.messages.add_while_learning(user.id, new)
        if result is None:
            raise ImportStopped(own + context)
        present += result.duplicates
        own += result.own_added
        context += result.added - result.own_added
        if progress is not None:
            await progress(seen)
    return ImportReport(reader.format, own + context, own, context, present, skipped, truncated,
                        Participant(owner, found.names.get(owner, owner), found.counts[owner]).label())
