"""The console twin's output: what a person at the terminal sees around the `you>` prompt."""

from __future__ import annotations

import io
from pathlib import Path

from bot.console_adapter import PROMPT, ConsoleOutbox


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
