"""What a command handler gets besides its invocation: settings, services, users, rate limits."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter, OrderedDict, deque
from collections.abc import Coroutine, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from bot.commands.services import Services
from bot.commands.types import Event
from persona_store import User
from twinbot.settings import Settings

log = logging.getLogger(__name__)


class UserError(Exception):
    """Something the user can fix or should know; the message is sent to them as it is."""


class NotInstalled(UserError):
    """A feature whose engine is not running in this process."""

    def __init__(self, feature: str) -> None:
        super().__init__(f"{feature} is not available in this twinbot (not installed or turned off).")


class RateLimited(UserError):
    def __init__(self, what: str, wait_s: float) -> None:
        super().__init__(f"Easy there: too many {what} in a short time. Try again in {max(1, round(wait_s))} s.")


class Busy(UserError):
    """The user already has as much under way as they may; said at once instead of queueing more."""

    def __init__(self, what: str) -> None:
        super().__init__(f"I'm still working on your previous {what}; try again in a moment.")


@dataclass
class RateLimiter:
    """A sliding-window limit per (action, user): at most `limit` calls per `window_s`."""

    _calls: dict[tuple[str, str], deque[float]] = field(default_factory=dict)

    def check(self, action: str, who: str, limit: int, window_s: float) -> None:
        """Count one call, or raise RateLimited with how long to wait."""
        now = time.monotonic()
        calls = self._calls.setdefault((action, who), deque())
        while calls and calls[0] <= now - window_s:
            calls.popleft()
        if len(calls) >= limit:
            raise RateLimited(action, calls[0] + window_s - now)
        calls.append(now)


class BoundedMap(OrderedDict):
    """An insertion-ordered dict that forgets its oldest entries past `bound` (in-memory bookkeeping)."""

    def __init__(self, bound: int) -> None:
        super().__init__()
        self.bound = bound

    def __setitem__(self, key, value) -> None:  # type: ignore[no-untyped-def]
        super().__setitem__(key, value)
        self.move_to_end(key)
        while len(self) > self.bound:
            self.popitem(last=False)


@dataclass
class CommandContext:
    settings: Settings
    services: Services
    specs: tuple = ()
    """Every declared command (set by the layer), for /help."""
    limits: RateLimiter = field(default_factory=RateLimiter)
    conversations: BoundedMap = field(default_factory=lambda: BoundedMap(2_000))
    """Recent turns per (platform, chat, twin owner), in memory only: other people's words are never stored."""
    twin_messages: BoundedMap = field(default_factory=lambda: BoundedMap(20_000))
    """(platform, chat, message id) of what twins said -> owner id, so a reply continues that twin."""
    pending_imports: BoundedMap = field(default_factory=lambda: BoundedMap(1_000))
    """(platform, user id) -> an uploaded export waiting for the user to say which participant they are."""
    tasks: set[asyncio.Task] = field(default_factory=set)
    in_flight: Counter[tuple[str, str]] = field(default_factory=Counter)
    """(action, user) -> how many of that user's `action` are under way now."""

    def spawn(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        """Run follow-up work (progress updates) in the background, logging its failure."""
        task = asyncio.create_task(coro, name=name)
        self.tasks.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task) -> None:
        self.tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("background task %s failed", task.get_name(), exc_info=task.exception())

    async def close(self) -> None:
        for task in list(self.tasks):
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)

    @property
    def store(self):  # noqa: ANN201 - the Store type, kept short for handlers
        return self.services.store

    async def known_user(self, event: Event) -> User | None:
        """The event's author if twinbot already knows them; never creates a row (nothing before opt-in)."""
        return await self.store.users.lookup(event.platform, event.user_id)

    async def user(self, event: Event) -> User:
        """The event's author, created on first need (consent, import, a kept face)."""
        return await self.store.users.get_or_create(event.platform, event.user_id, event.user_name)

    async def require_known(self, event: Event) -> User:
        user = await self.known_user(event)
        if user is None:
            raise UserError("I don't know you yet. Start with /consent learn to let me learn from your messages.")
        return user

    def limit(self, action: str, event: Event, per_minute: int, window_s: float = 60.0) -> None:
        self.limits.check(action, f"{event.platform}:{event.user_id}", per_minute, window_s)

    @contextmanager
    def one_of(self, action: str, event: Event, at_once: int, refusal: str | None = None) -> Iterator[None]:
        """Count one of the user's `action` as under way while the block runs; past `at_once` of them,
        UserError(`refusal`), or Busy when no refusal is given."""
        key = (action, f"{event.platform}:{event.user_id}")
        if self.in_flight[key] >= at_once:
            raise UserError(refusal) if refusal is not None else Busy(action)
        self.in_flight[key] += 1
        try:
            yield
        finally:
            self.in_flight[key] -= 1
            if not self.in_flight[key]:
                del self.in_flight[key]
