"""Keep only the owners' own lines (is_own = 1) in the full-text index; context lines leave it.

The one search over it (`Messages.similar`) finds an owner's own lines, yet every imported line of
other speakers was indexed too, for nothing. The triggers now guard on is_own: an external-content
FTS5 'delete' for a row that was never indexed corrupts the index, so a row leaves it only if it was
own. The index is then emptied and refilled from own rows ('rebuild' would index every row again).
"""

SQL = """
DROP TRIGGER messages_fts_insert;
DROP TRIGGER messages_fts_delete;
DROP TRIGGER messages_fts_update;

CREATE TRIGGER messages_fts_insert AFTER INSERT ON messages WHEN new.is_own = 1 BEGIN
    INSERT INTO messages_fts (rowid, text) VALUES (new.id, new.text);
END;
CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages WHEN old.is_own = 1 BEGIN
    INSERT INTO messages_fts (messages_fts, rowid, text) VALUES ('delete', old.id, old.text);
END;
-- One trigger, so the old entry always goes before the new one comes (a line may stay own, become
-- own, or stop being own); the order of separate triggers is not defined.
CREATE TRIGGER messages_fts_update AFTER UPDATE OF text, is_own ON messages BEGIN
    INSERT INTO messages_fts (messages_fts, rowid, text) SELECT 'delete', old.id, old.text WHERE old.is_own = 1;
    INSERT INTO messages_fts (rowid, text) SELECT new.id, new.text WHERE new.is_own = 1;
END;

INSERT INTO messages_fts (messages_fts) VALUES ('delete-all');
INSERT INTO messages_fts (rowid, text) SELECT id, text FROM messages WHERE is_own = 1;
"""
