"""Index each own line's owner with its words, so `Messages.similar` reads one owner's lines.

Before, a search ranked every owner's lines that shared a word with the message and only then kept
the asker's: its cost grew with the whole store, not with one owner's lines. `context_fts`
(migration 6) indexes the owner's id the same way. The index is rebuilt from the own rows.
"""

SQL = """
DROP TRIGGER messages_fts_insert;
DROP TRIGGER messages_fts_delete;
DROP TRIGGER messages_fts_update;
DROP TABLE messages_fts;

CREATE VIRTUAL TABLE messages_fts USING fts5 (
    text,
    owner_id,
    content = 'messages',
    content_rowid = 'id',
    tokenize = 'unicode61 remove_diacritics 2'
);

CREATE TRIGGER messages_fts_insert AFTER INSERT ON messages WHEN new.is_own = 1 BEGIN
    INSERT INTO messages_fts (rowid, text, owner_id) VALUES (new.id, new.text, new.owner_id);
END;
CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages WHEN old.is_own = 1 BEGIN
    INSERT INTO messages_fts (messages_fts, rowid, text, owner_id) VALUES ('delete', old.id, old.text, old.owner_id);
END;
CREATE TRIGGER messages_fts_update AFTER UPDATE OF text, is_own, owner_id ON messages BEGIN
    INSERT INTO messages_fts (messages_fts, rowid, text, owner_id)
        SELECT 'delete', old.id, old.text, old.owner_id WHERE old.is_own = 1;
    INSERT INTO messages_fts (rowid, text, owner_id) SELECT new.id, new.text, new.owner_id WHERE new.is_own = 1;
END;

INSERT INTO messages_fts (rowid, text, owner_id) SELECT id, text, owner_id FROM messages WHERE is_own = 1;
"""
