"""The console twin: a chat prompt in the terminal where every command works (no tokens needed).

A plain line talks to your own twin; `/command …` runs a command; `exit` or EOF ends the session.
Images and files the bot sends are saved in the user's folder under CONSOLE_FILES_DIR (like downloads)
and their paths printed; /forget deletes that folder.
"""

from __future__ import annotations

import asyncio
import itertools
import shlex
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from bot.commands import Attachment, CommandLayer, CommandSpec, Event, OutFile, Reply, split_command
from bot.commands.userdata import console_user_dir

from twinbot.settings import Settings

EXIT_WORDS = {"exit", "quit", "/exit", "/quit"}
PROMPT = "you> "
CLEAR_LINE = "\r\x1b[K"


def local_attachment(path: Path) -> Attachment:
    """A file on this machine presented as an upload (read lazily, like a platform download)."""
    return Attachment(path.name, path.stat().st_size, lambda: asyncio.to_thread(path.read_bytes))


def file_word(spec: CommandSpec, words: list[str]) -> tuple[int, str] | None:
    """(index, path) of the word naming an upload: `picture:PATH` for any file option, or the first
    word that names no option when the file is the command's first option (`/import PATH`)."""
    named = {o.name for o in spec.options}
    for index, word in enumerate(words):
        name, sep, value = word.partition(":")
        if sep and value and any(o.name == name.lower() and o.type == "attachment" for o in spec.options):
            return index, value
    if spec.options and spec.options[0].type == "attachment":
        for index, word in enumerate(words):
            if word.partition(":")[0] not in named:
                return index, word
    return None


def render_text(reply: Reply) -> str:
    if reply.speaker is not None:
        return f"{reply.speaker.name} (twin): {reply.text}"
    if reply.kind == "error":
        return f"! {reply.text}"
    return reply.text


@dataclass
class ConsoleMessage:
    """A printed message; an edit prints the new text (terminal output cannot be rewritten reliably)."""

    console: ConsoleOutbox
    message_id: str | None

    async def edit(self, reply: Reply) -> None:
        self.console.show(reply)


class ConsoleOutbox:
    def __init__(self, out: TextIO, file_dir: Path) -> None:
        self.out = out
        self.file_dir = file_dir
        self._ids = itertools.count(1)
        self.prompt = ""  # the prompt the terminal shows while waiting for a line, if any

    def write(self, text: str) -> None:
        """Print a line; one that arrives while the prompt waits (training progress) goes above it."""
        self.out.write(f"{CLEAR_LINE if self.prompt else ''}{text}\n{self.prompt}")
        self.out.flush()

    def show_prompt(self, prompt: str) -> None:
        self.prompt = prompt
        self.out.write(prompt)
        self.out.flush()

    def show(self, reply: Reply) -> None:
        """Print the text of a reply, sent or edited in."""
        if reply.text:
            self.write(render_text(reply))

    async def send(self, reply: Reply) -> ConsoleMessage:
        self.show(reply)
        for item in (*reply.images, *reply.files):
            self.write(f"[saved {await self.save(item)}]")
        return ConsoleMessage(self, f"console-out-{next(self._ids)}")

    async def save(self, item: OutFile) -> Path:
        path = self.file_dir / item.filename

        def write() -> None:
            self.file_dir.mkdir(parents=True, exist_ok=True)
            path.write_bytes(item.data)

        await asyncio.to_thread(write)
        return path

    @asynccontextmanager
    async def typing(self) -> AsyncIterator[None]:
        yield


class ConsoleAdapter:
    """Reads lines from stdin and hands them to the command layer as the console user."""

    def __init__(self, settings: Settings, layer: CommandLayer, stdin: TextIO = sys.stdin,
                 stdout: TextIO = sys.stdout) -> None:
        self.settings = settings
        self.layer = layer
        self.stdin = stdin
        self.outbox = ConsoleOutbox(stdout, console_user_dir(settings, settings.console_user))
        self._ids = itertools.count(1)
        self.interactive = stdin.isatty()

    def event(self, text: str, attachments: tuple[Attachment, ...] = ()) -> Event:
        user = self.settings.console_user
        return Event(platform="console", user_id=user, user_name=user, chat_id="console", is_dm=True,
                     text=text, message_id=f"console-in-{next(self._ids)}", attachments=attachments)

    async def handle_line(self, line: str) -> None:
        """One line of input: a command, or a message to your own twin."""
        try:
            event = self.event_with_file(line)
        except ValueError as exc:
            await self.outbox.send(Reply(str(exc), kind="error"))
            return
        invocation = self.layer.parse_text_command(event)
        if invocation is not None:
            await self.layer.dispatch(invocation, self.outbox)
        elif line.startswith("/"):
            name = (line[1:].split() or [""])[0]
            await self.outbox.send(Reply(f"I don't know /{name}. /help lists what I can do.", kind="error"))
        else:
            await self.layer.on_message(event, self.outbox)

    def event_with_file(self, line: str) -> Event:
        """`/import ~/export.json as:Ana`, `/avatar like picture:~/me.jpg`: in a console, the upload is a
        path on this machine."""
        parts = split_command(line)
        spec = self.layer.spec(parts[0]) if parts else None
        if spec is None or not any(o.type == "attachment" for o in spec.options):
            return self.event(line)
        words = shlex.split(parts[2])
        found = file_word(spec, words)
        if found is None:
            return self.event(line)
        index, path_text = found
        path = Path(path_text).expanduser()
        if not path.is_file():
            raise ValueError(f"No such file: {path}")
        rest = words[:index] + words[index + 1 :]
        return self.event(" ".join([f"/{spec.name}", *rest]), (local_attachment(path),))

    async def read_lines(self) -> AsyncIterator[str]:
        while True:
            if self.interactive:
                self.outbox.show_prompt(PROMPT)
            line = await asyncio.to_thread(self.stdin.readline)
            self.outbox.prompt = ""
            if not line:
                return
            yield line.strip()

    async def run(self) -> None:
        """Serve until EOF or `exit`."""
        self.outbox.write(
            f"twinbot console — you are {self.settings.console_user!r}. Type a message to talk to your twin, "
            "/help for commands, exit to leave."
        )
        async for line in self.read_lines():
            if line.lower() in EXIT_WORDS:
                break
            if line:
                await self.handle_line(line)
        self.outbox.write("bye")

    async def stop(self) -> None:
        """Nothing to release: the loop ends at EOF or when its task is cancelled."""
