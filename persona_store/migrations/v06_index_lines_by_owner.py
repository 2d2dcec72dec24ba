"""Full-text indexes that hold each line's owner: own lines (`messages_fts`, rebuilt) and, new, the
lines others wrote (`context_fts`), to find what an owner answered.

`Messages.answers_to` looks for others' lines like a new message and takes the owner's line that came
right after each in its chat; `Messages.similar` looks for the owner's own lines like it. Both match
"owner_id : N AND (words)", so a search reads one owner's lines rather than ranking every owner's
and dropping the others' (docs/benchmarks.md). The triggers guard on is_own as migration 5's do: an
external-content FTS5 'delete' of a row that was never indexed corrupts the index.
"""


def _index(name: str, own: int) -> str:
    """An external-content index of the rows with is_own = `own`, its triggers, and its fill."""
    return f"""
CREATE VIRTUAL TABLE {name} USING fts5 (
    text,
    owner_id,
    content = 'messages',
    content_rowid = 'id',
    tokenize = 'unicode61 remove_diacritics 2'
);

CREATE TRIGGER {name}_insert AFTER INSERT ON messages WHEN new.is_own = {own} BEGIN
    INSERT INTO {name} (rowid, text, owner_id) VALUES (new.id, new.text, new.owner_id);
END;
CREATE TRIGGER {name}_delete AFTER DELETE ON messages WHEN old.is_own = {own} BEGIN
    INSERT INTO {name} ({name}, rowid, text, owner_id) VALUES ('delete', old.id, old.text, old.owner_id);
END;
CREATE TRIGGER {name}_update AFTER UPDATE OF text, is_own, owner_id ON messages BEGIN
    INSERT INTO {name} ({name}, rowid, text, owner_id)
        SELECT 'delete', old.id, old.text, old.owner_id WHERE old.is_own = {own};
    INSERT INTO {name} (rowid, text, owner_id) SELECT new.id, new.text, new.owner_id WHERE new.is_own = {own};
END;

INSERT INTO {name} (rowid, text, owner_id) SELECT id, text, owner_id FROM messages WHERE is_own = {own};
"""


SQL = """
DROP TRIGGER messages_fts_insert;
DROP TRIGGER messages_fts_delete;
DROP TRIGGER messages_fts_update;
DROP TABLE messages_fts;
""" + _index("messages_fts", 1) + _index("context_fts", 0)
