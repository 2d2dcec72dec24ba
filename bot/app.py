"""`twinbot run`: one asyncio process serving Discord, Telegram, or (with no tokens) the console twin."""

from __future__ import annotations

import asyncio
import logging
import signal
from typing import Protocol

from bot.commands import CommandLayer, open_services
from twinbot.settings import Settings

log = logging.getLogger(__name__)


class Adapter(Protocol):
    async def run(self) -> None: ...

    async def stop(self) -> None: ...


def serves_console(settings: Settings) -> bool:
    """No platform token is set: `twinbot run` is the console twin."""
    return settings.discord_token is None and settings.telegram_token is None


def platform_adapters(settings: Settings, layer: CommandLayer) -> list[Adapter]:
    """The adapters the settings ask for; the console when no platform token is set."""
    adapters: list[Adapter] = []
    if settings.discord_token is not None:
        from bot.discord_adapter import DiscordAdapter

        adapters.append(DiscordAdapter(settings, layer))
    if settings.telegram_token is not None:
        from bot.telegram_adapter import TelegramAdapter

        adapters.append(TelegramAdapter(settings, layer))
    if serves_console(settings):
        from bot.console_adapter import ConsoleAdapter

        adapters.append(ConsoleAdapter(settings, layer))
    return adapters


async def serve(settings: Settings) -> None:
    """Open the services, run every adapter until one ends or a signal arrives, then close in order."""
    async with open_services(settings) as services:
        layer = CommandLayer(settings, services)
        adapters = platform_adapters(settings, layer)
        tasks = [asyncio.create_task(adapter.run(), name=type(adapter).__name__) for adapter in adapters]
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        stopper = asyncio.create_task(stop.wait(), name="signals")
        try:
            done, _ = await asyncio.wait([*tasks, stopper], return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                if task is not stopper and task.exception() is not None:
                    raise task.exception()
        finally:
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)
            for adapter in adapters:
                await adapter.stop()
            for task in [*tasks, stopper]:
                task.cancel()
            await asyncio.gather(*tasks, stopper, return_exceptions=True)
            await layer.close()
