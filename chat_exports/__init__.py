"""Importers of real chat exports into a user's kept messages (Telegram, Discord, DiscordChatExporter, JSONL)."""

from chat_exports.detect import detect_format, open_reader
from chat_exports.importer import import_export, scan
from chat_exports.limits import ReadLimits
from chat_exports.records import ImportFailed, ImportReport, ImportStopped, NeedParticipant, ParsedMessage, Participant


def list_participants(path, settings) -> list[Participant]:  # noqa: ANN001 - Path, Settings
    """Who wrote in the export, most active first (for the user to pick themselves)."""
    reader = open_reader(path, ReadLimits.from_settings(settings))
    try:
        return scan(reader).participants()
    finally:
        if hasattr(reader, "close"):
            reader.close()


__all__ = [
    "ImportFailed",
    "ImportReport",
    "ImportStopped",
    "NeedParticipant",
    "ParsedMessage",
    "Participant",
    "ReadLimits",
    "detect_format",
    "import_export",
    "list_participants",
]
