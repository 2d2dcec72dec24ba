"""The platform-neutral command layer. Adapters import from here and nowhere deeper."""

from bot.commands.layer import CommandLayer
from bot.commands.parse import split_command
from bot.commands.services import Services, open_services
from bot.commands.types import (
    Attachment,
    CommandSpec,
    Event,
    Invocation,
    OptionSpec,
    OutFile,
    Outbox,
    Reply,
    SentMessage,
    Speaker,
)

__all__ = [
    "Attachment",
    "CommandLayer",
    "CommandSpec",
    "Event",
    "Invocation",
    "OptionSpec",
    "OutFile",
    "Outbox",
    "Reply",
    "SentMessage",
    "Services",
    "Speaker",
    "open_services",
    "split_command",
]
