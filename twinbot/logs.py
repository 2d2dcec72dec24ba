"""The one logging set-up. Message text and tokens are never logged at INFO or above."""

from __future__ import annotations

import logging
import sys


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
