"""Importers of real chat exports into a user's kept messages (Telegram, Discord, DiscordChatExporter, JSONL)."""

from persona.imports.detect import detect_format, open_reader
from persona.imports.importer import import_export, scan
from persona.imports.records import ImportFailed, ImportReport, NeedParticipant, ParsedMessage, Participant


def list_participants(path, settings) -> list[Participant]:  # noqa: ANN001 - Path, Settings
    """Who wrote in the export, most active first (for the user to pick themselves)."""
    reader = open_reader(path, settings.import_max_bytes)
    try:
        return scan(reader).participants()
    finally:
        if hasattr(reader, "close"):
            reader.close()


__all__ = [
    "ImportFailed",
    "ImportReport",
    "NeedParticipant",
    "ParsedMessage",
    "Participant",
    "detect_format",
    "import_export",
    "list_participants",
]
