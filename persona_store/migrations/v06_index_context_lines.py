"""A second full-text index, over the lines others wrote (is_own = 0), to find what an owner answered.

`Messages.answers_to` looks for others' lines like a new message and takes the owner's line that came
right after each in its chat: what the owner said when asked something like it. Own lines stay alone
in `messages_fts`, so `Messages.similar` is unchanged. The triggers guard on is_own as migration 5's
do: an external-content FTS5 'delete' of a row that was never indexed corrupts the index. The owner's
id is indexed too, so a search reads one owner's lines rather than ranking every owner's and
dropping the others' (with 8 owners of 30,000 lines each, 10 ms a search rather than 21 ms).
"""

SQL = """
CREATE VIRTUAL TABLE context_fts USING fts5 (
    text,
    owner_id,
    content = 'messages',
    content_rowid = 'id',
    tokenize = 'unicode61 remove_diacritics 2'
);

CREATE TRIGGER context_fts_insert AFTER INSERT ON messages WHEN new.is_own = 0 BEGIN
    INSERT INTO context_fts (rowid, text, owner_id) VALUES (new.id, new.text, new.owner_id);
END;
CREATE TRIGGER context_fts_delete AFTER DELETE ON messages WHEN old.is_own = 0 BEGIN
    INSERT INTO context_fts (context_fts, rowid, text, owner_id) VALUES ('delete', old.id, old.text, old.owner_id);
END;
CREATE TRIGGER context_fts_update AFTER UPDATE OF text, is_own, owner_id ON messages BEGIN
    INSERT INTO context_fts (context_fts, rowid, text, owner_id)
        SELECT 'delete', old.id, old.text, old.owner_id WHERE old.is_own = 0;
    INSERT INTO context_fts (rowid, text, owner_id) SELECT new.id, new.text, new.owner_id WHERE new.is_own = 0;
END;

INSERT INTO context_fts (rowid, text, owner_id) SELECT id, text, owner_id FROM messages WHERE is_own = 0;
"""
