"""The neutral vocabulary between platform adapters and the command layer.

An adapter turns a platform event into an `Event` (or an `Invocation` of a declared command),
hands it to `CommandLayer`, and renders the `Reply` objects the layer sends through the adapter's
`Outbox`. Nothing here knows a platform library.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol


@dataclass(frozen=True, slots=True)
class Attachment:
    """A file the user sent. `fetch` downloads it lazily so oversize files are refused unread."""

    filename: str
    size: int
    fetch: Callable[[], Awaitable[bytes]]
    content_type: str | None = None


@dataclass(frozen=True, slots=True)
class Event:
    """One incoming message or command invocation, as any platform would describe it."""

    platform: str
    user_id: str
    user_name: str
    chat_id: str
    is_dm: bool
    text: str = ""
    message_id: str | None = None
    attachments: tuple[Attachment, ...] = ()
    reply_to_message_id: str | None = None
    """The message this one answers, if any; the layer knows which of those a twin wrote."""
    mentions_bot: bool = False
    mentioned_user_ids: tuple[str, ...] = ()
    """Other users mentioned (platform ids, or a @handle where the platform gives none): `@bot @ana hi`
    talks to Ana's twin."""
    ts: float | None = None


@dataclass(frozen=True, slots=True)
class Invocation:
    """A declared command called with parsed options (`args` keyed by option name)."""

    command: str
    args: dict[str, Any]
    event: Event


@dataclass(frozen=True, slots=True)
class OutFile:
    filename: str
    data: bytes
    mime: str


@dataclass(frozen=True, slots=True)
class Speaker:
    """Who says a reply when a twin speaks: the adapter shows the name and face."""

    owner_id: int
    name: str
    face_png: bytes | None = None


@dataclass(frozen=True, slots=True)
class Reply:
    """One message out. `speaker` set means a twin talks: adapters must make it ping nobody."""

    text: str = ""
    images: tuple[OutFile, ...] = ()
    files: tuple[OutFile, ...] = ()
    ephemeral: bool = False
    speaker: Speaker | None = None
    kind: Literal["info", "error", "progress", "twin"] = "info"


class SentMessage(Protocol):
    """A message the adapter sent, which the layer may edit (progress) and remember (twin replies)."""

    message_id: str | None

    async def edit(self, reply: Reply) -> None: ...


class Outbox(Protocol):
    """How the layer answers on the platform the event came from."""

    async def send(self, reply: Reply) -> SentMessage: ...

    def typing(self) -> AbstractAsyncContextManager[None]:
        """Show "typing…" (renewed as the platform needs) while the block runs."""
        ...


OptionType = Literal["text", "int", "bool", "user", "attachment", "choice"]


@dataclass(frozen=True, slots=True)
class OptionSpec:
    """One typed option of a command; adapters derive the platform's registration from it."""

    name: str
    type: OptionType
    description: str
    required: bool = False
    choices: tuple[str, ...] = ()
    rest: bool = False
    """Text commands: this option takes the rest of the line (e.g. `/twin @ana hello there`)."""


Handler = Callable[[Any, Invocation, Outbox], Awaitable[None]]
"""`handler(ctx, invocation, outbox)`; ctx is the layer's `CommandContext` (settings, services, users)."""


@dataclass(frozen=True, slots=True)
class CommandSpec:
    """One command, declared once; every adapter registers it from this declaration."""

    name: str
    description: str
    handler: Handler
    options: tuple[OptionSpec, ...] = field(default_factory=tuple)
    usage: str = ""
    private: bool = False
    """Answers concern only the caller's own data: platforms that can (Discord) show them to the caller alone."""
