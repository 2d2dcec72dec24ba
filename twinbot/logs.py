"""The one logging set-up. Message text and tokens are never logged at INFO or above."""

from __future__ import annotations

import logging
import os
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

STDERR_FD = 2


def setup_logging(level: str = "INFO") -> None:
    """Log to stderr so stdout stays the console chat (and scriptable output)."""
    logging.basicConfig(
        level=level,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        force=True,
    )
    # Library chatter (HTTP requests with tokens in URLs) stays out of INFO.
    for noisy in ("httpx", "httpcore", "discord.http", "telegram.ext", "transformers"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLevelName(level)))
    # Decoding hands its cache to transformers as `past_key_values`, which 5.x renames `cache` and
    # still accepts: the notice says nothing an operator can act on.
    warnings.filterwarnings("ignore", message=r"`past_key_values` is deprecated", category=FutureWarning)
    logging.captureWarnings(True)


@contextmanager
def stderr_to_file(path: Path) -> Iterator[None]:
    """Send everything written to stderr (logs, warnings, progress bars, child processes) to `path`.

    The console twin shares the terminal with its user: only the conversation belongs there. The
    redirect is of the file descriptor, so libraries that write to it directly are caught too.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    sys.stderr.flush()
    saved = os.dup(STDERR_FD)
    with path.open("ab", buffering=0) as log_file:
        os.dup2(log_file.fileno(), STDERR_FD)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, STDERR_FD)
            os.close(saved)
