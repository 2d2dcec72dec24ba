"""What importers produce and report, and the errors a user sees when a file is not importable."""

from __future__ import annotations

from dataclasses import dataclass


class ImportFailed(Exception):
    """The file cannot be imported; the message is one friendly line. Nothing was stored."""


@dataclass(frozen=True, slots=True)
class Participant:
    id: str
    name: str
    messages: int

    def label(self) -> str:
        return f"{self.name} ({self.id})" if self.name and self.name != self.id else self.id


class ImportStopped(ImportFailed):
    """The user withdrew `learn` consent during the import: nothing more is stored after that."""

    def __init__(self, stored: int) -> None:
        super().__init__(
            f"Import stopped: you withdrew your `learn` consent, so I kept nothing more. The {stored} messages "
            "stored before that stay until you /forget them."
        )


class NeedParticipant(ImportFailed):
    """The export does not say who the importing user is: they must pick (never guessed)."""

    def __init__(self, participants: list[Participant]) -> None:
        listed = ", ".join(f"{p.label()}: {p.messages}" for p in participants[:12])
        more = f" and {len(participants) - 12} more" if len(participants) > 12 else ""
        super().__init__(
            f"This export doesn't say which participant you are. Participants: {listed}{more}. "
            "Say which one with as:<name or id> (CLI: --as NAME_OR_ID)."
        )
        self.participants = participants


@dataclass(frozen=True, slots=True)
class ParsedMessage:
    """One message read from an export, before it belongs to anyone."""

    chat_id: str
    message_id: str
    author_id: str
    author_name: str
    ts: float
    text: str
    reply_to: str | None = None
    is_dm: bool = False


@dataclass(frozen=True, slots=True)
class ImportReport:
    format: str
    imported: int
    own: int
    context: int
    already_present: int
    skipped: int
    truncated: int
    participant: str

    def summary(self) -> str:
        lines = [
            f"Imported {self.imported} new messages from a {self.format} export as {self.participant}: "
            f"{self.own} of yours, {self.context} from others kept as context.",
        ]
        extra = []
        if self.already_present:
            extra.append(f"{self.already_present} already present")
        if self.skipped:
            extra.append(f"{self.skipped} skipped (service messages, empty or unreadable)")
        if self.truncated:
            extra.append(f"{self.truncated} very long ones truncated")
        if extra:
            lines.append("Also: " + ", ".join(extra) + ".")
        return "\n".join(lines)
