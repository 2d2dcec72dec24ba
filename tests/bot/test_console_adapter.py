"""The console adapter: what a person at the terminal sees around the `you>` prompt, where it saves
what it sends, and that /forget takes it back."""

from __future__ import annotations

import io
from pathlib import Path

from PIL import Image

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


async def test_a_picture_is_a_path_given_by_the_options_name(settings: Settings, tmp_path: Path,
                                                             tiny_face_weights: Path,
                                                             tiny_encoder_weights: Path) -> None:
    """`/avatar like picture:~/me.png` reads that file; `/avatar me` is still a mode, not a path; /import's
    file comes first, by name or not."""
    faces = {"avatar_weights": tiny_face_weights, "avatar_encoder_weights": tiny_encoder_weights}
    s = settings.model_copy(update={"console_files_dir": tmp_path / "console-files", **faces})
    me = tmp_path / "my face.png"
    Image.new("RGB", (64, 64), (200, 150, 120)).save(me)
    async with open_services(s, with_model=False, with_trainer=False) as services:
        layer = CommandLayer(s, services)
        console = ConsoleAdapter(s, layer, stdin=io.StringIO(), stdout=io.StringIO())
        for line in (f'/avatar like "picture:{me}"', "/avatar like picture:nowhere.png", "/avatar me",
                     "/import as:Ana nowhere.json", "/import file:elsewhere.json"):
            await console.handle_line(line)
        await layer.close()
    printed = console.outbox.out.getvalue().splitlines()
    assert printed[0].startswith("The face I found in your picture. Keep it as your twin's face")
    assert printed[1].startswith("[saved ") and printed[1].endswith("-like.png]")
    assert printed[2:4] == ["! No such file: nowhere.png", "Your twin's face. (/avatar renew for another one)"]
    assert printed[5:] == ["! No such file: nowhere.json", "! No such file: elsewhere.json"]
