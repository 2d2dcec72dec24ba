"""The console adapter: what a person at the terminal sees around the `you>` prompt, where it saves
what it sends, and that /forget takes it back."""

from __future__ import annotations

import io
from pathlib import Path

from bot.commands import CommandLayer, open_services
from bot.console_adapter import PROMPT, ConsoleAdapter, ConsoleOutbox
from twinbot.settings import Settings


def test_a_message_that_arrives_at_the_prompt_is_printed_above_it(tmp_path: Path) -> None:
    out = io.StringIO()
    outbox = ConsoleOutbox(out, tmp_path)
    outbox.show_prompt(PROMPT)
    outbox.write("Training your twin: 40%")
    assert out.getvalue() == "you> \r\x1b[KTraining your twin: 40%\nyou> "


def test_a_reply_to_the_line_typed_is_printed_as_is(tmp_path: Path) -> None:
    out = io.StringIO()
    ConsoleOutbox(out, tmp_path).write("Done.")
    assert out.getvalue() == "Done.\n"


def files_in(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


async def test_forget_deletes_the_files_the_console_saved_for_that_user_only(settings: Settings, tmp_path: Path) -> None:
    s = settings.model_copy(update={"console_files_dir": tmp_path / "console-files"})
    async with open_services(s, with_model=False, with_avatars=False) as services:
        layer = CommandLayer(s, services)
        consoles = {
            name: ConsoleAdapter(s.model_copy(update={"console_user": name}), layer, stdin=io.StringIO(),
                                 stdout=io.StringIO())
            for name in ("ana", "../bo")
        }
        for console in consoles.values():
            for line in ("/consent learn", "words worth exporting", "/export"):
                await console.handle_line(line)
        saved = files_in(s.console_files_dir)
        assert [name.split("/")[0] for name in saved] == ["user-..%2Fbo", "user-ana"], saved

        await consoles["ana"].handle_line("/forget confirm:yes")
        assert "Forgotten. Removed: 1 messages, 1 consent events, 1 console files." in consoles["ana"].outbox.out.getvalue()
        assert [name.split("/")[0] for name in files_in(s.console_files_dir)] == ["user-..%2Fbo"]
        await layer.close()
