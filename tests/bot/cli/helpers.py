"""Run the real `twinbot` command line in a subprocess, as a user would."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]


def twinbot(*args: str, cwd: Path, env: dict[str, str] | None = None, stdin: str = "",
            timeout: float = 300, merge_stderr: bool = False) -> subprocess.CompletedProcess[str]:
    """`merge_stderr` puts stderr into stdout, as a terminal shows them."""
    full_env = {k: v for k, v in os.environ.items() if k not in ("DISCORD_TOKEN", "TELEGRAM_TOKEN")}
    full_env.update({"PYTHONPATH": str(REPO), "DATA_DIR": str(cwd / "data"), **(env or {})})
    return subprocess.run(
        [sys.executable, "-m", "bot.cli", *args],
        cwd=cwd,
        env=full_env,
        input=stdin,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT if merge_stderr else subprocess.PIPE,
        text=True,
        timeout=timeout,
    )
