"""Fixtures of the command-layer tests."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from bot.commands import CommandLayer
from tests.bot.commands.recording import command_layer
from twinbot.settings import Settings


@pytest.fixture
async def layer(settings: Settings) -> AsyncIterator[CommandLayer]:
    """The command layer on the test's settings, with no model and no faces."""
    async with command_layer(settings) as layer:
        yield layer
