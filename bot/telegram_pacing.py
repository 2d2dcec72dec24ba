"""How fast the bot talks and in what order it listens: two of python-telegram-bot's pluggable parts.

`ChatRateLimiter` keeps within Telegram's flood limits: PTB's `AIORateLimiter` already holds the
bot to 30 messages a second overall and 20 a minute per group; this adds about one message a
second in any single chat. `ChatOrderedUpdates` handles the updates of one chat in the order they
were sent (a `/consent learn` is done before the next message is looked at) while different chats
are served concurrently, so one slow twin reply never holds up everybody else.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from aiolimiter import AsyncLimiter
from telegram import Update
from telegram.ext import AIORateLimiter, BaseUpdateProcessor

UNLIMITED_METHODS = frozenset({"sendChatAction"})
"""A chat action is not a message: counting "typing…" would eat a group's 20 messages a minute."""
IDLE_LIMITERS_KEPT = 512


class ChatRateLimiter(AIORateLimiter):
    """PTB's limiter plus at most `per_chat_rate` requests per `per_chat_period` in each chat."""

    def __init__(self, *, per_chat_rate: float = 1.0, per_chat_period: float = 1.0, max_retries: int = 3,
                 **limits: float) -> None:
        super().__init__(max_retries=max_retries, **limits)
        self._per_chat = (per_chat_rate, per_chat_period)
        self._chat_limiters: dict[int | str, AsyncLimiter] = {}

    def _chat_limiter(self, chat_id: int | str) -> AsyncLimiter:
        if len(self._chat_limiters) > IDLE_LIMITERS_KEPT:  # forget chats whose budget is back to full
            for key, limiter in list(self._chat_limiters.items()):
                if key != chat_id and limiter.has_capacity(limiter.max_rate):
                    del self._chat_limiters[key]
        if chat_id not in self._chat_limiters:
            self._chat_limiters[chat_id] = AsyncLimiter(*self._per_chat)
        return self._chat_limiters[chat_id]

    async def process_request(
        self,
        callback: Callable[..., Coroutine[Any, Any, bool | dict[str, Any] | list[dict[str, Any]]]],
        args: Any,
        kwargs: dict[str, Any],
        endpoint: str,
        data: dict[str, Any],
        rate_limit_args: int | None,
    ) -> bool | dict[str, Any] | list[dict[str, Any]]:
        """Wait for the chat's budget, then for PTB's overall and group budgets."""
        if endpoint in UNLIMITED_METHODS:
            return await callback(*args, **kwargs)
        chat_id = data.get("chat_id")
        if chat_id is None:
            return await super().process_request(callback, args, kwargs, endpoint, data, rate_limit_args)
        async with self._chat_limiter(chat_id):
            return await super().process_request(callback, args, kwargs, endpoint, data, rate_limit_args)


class ChatOrderedUpdates(BaseUpdateProcessor):
    """Updates of one chat one after another, in arrival order; different chats side by side."""

    def __init__(self, max_concurrent_updates: int = 64) -> None:
        super().__init__(max_concurrent_updates)
        self._chats: dict[int, tuple[asyncio.Lock, int]] = {}
        """chat id -> (its lock, how many of its updates are waiting or running)."""

    async def process_update(self, update: object, coroutine: Awaitable[Any]) -> None:
        """Queue behind the chat's earlier updates before taking one of the shared slots.

        asyncio locks wake waiters first come, first served, and PTB starts one task per update in
        arrival order, so a chat's updates run in the order Telegram delivered them.
        """
        chat = update.effective_chat if isinstance(update, Update) else None
        if chat is None:
            await super().process_update(update, coroutine)
            return
        lock, users = self._chats.get(chat.id, (asyncio.Lock(), 0))
        self._chats[chat.id] = (lock, users + 1)
        try:
            async with lock:
                await super().process_update(update, coroutine)
        finally:
            lock, users = self._chats[chat.id]
            if users == 1:
                del self._chats[chat.id]
            else:
                self._chats[chat.id] = (lock, users - 1)

    async def do_process_update(self, update: object, coroutine: Awaitable[Any]) -> None:
        await coroutine

    async def initialize(self) -> None:
        """Nothing to set up: locks are made per chat as updates arrive."""

    async def shutdown(self) -> None:
        """Nothing to release: PTB waits for running updates before shutting down."""
