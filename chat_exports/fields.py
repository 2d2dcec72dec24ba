"""Defensive readers for export fields: exports come in many versions, and some are hostile."""

from __future__ import annotations

import math
from datetime import datetime, timezone
from typing import Any

MAX_ID_CHARS = 128


def as_id(value: Any) -> str | None:
    """An id as text (numbers or strings), or None when it is missing or not a scalar."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, str)) or (isinstance(value, float) and math.isfinite(value)):
        text = str(value).strip()
        return text[:MAX_ID_CHARS] or None
    return None


def as_name(value: Any) -> str:
    return value.strip()[:200] if isinstance(value, str) else ""


def as_text(value: Any) -> str | None:
    """Message text: a string, or Telegram's list of strings and {type, text} entities; None if neither."""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        parts = []
        for part in value:
            if isinstance(part, str):
                parts.append(part)
            elif isinstance(part, dict) and isinstance(part.get("text"), str):
                parts.append(part["text"])
            else:
                return None
        return "".join(parts)
    return None


def as_timestamp(value: Any) -> float | None:
    """Seconds since the epoch from unix numbers/strings or ISO-8601 / 'YYYY-MM-DD HH:MM:SS' dates."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)) and math.isfinite(value) and 0 <= value < 1e11:
        return float(value)
    if isinstance(value, str):
        text = value.strip()
        if text.isdigit():
            return as_timestamp(int(text))
        try:
            parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            return None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=timezone.utc)
        return parsed.timestamp()
    return None
