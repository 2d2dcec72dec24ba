"""The bot's side of training must stay light: its command layer and job side never load torch."""

from __future__ import annotations

import subprocess
import sys

TORCH_FREE = ("bot.commands", "bot.app", "persona.training.jobs", "persona.paths", "chat_exports", "persona_store")


def test_the_command_layer_and_the_job_side_never_import_torch() -> None:
    code = (
        "import importlib, sys\n"
        f"for name in {TORCH_FREE!r}:\n"
        "    importlib.import_module(name)\n"
        "heavy = sorted(m for m in ('torch', 'transformers', 'peft') if m in sys.modules)\n"
        "print(','.join(heavy))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert done.stdout.strip() == "", f"torch-free modules pulled in {done.stdout.strip()}"
