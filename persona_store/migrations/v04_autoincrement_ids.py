"""Never hand a deleted row's id to a new one: the id tables are rebuilt with AUTOINCREMENT.

Without it SQLite reuses the highest id after a deletion, so a newcomer could take a forgotten
user's id and inherit whatever still pointed at it (replies routed to that user's twin). Each
table is rebuilt by SQLite's recipe (new table, copy, drop, rename) with every row, id, foreign
key and index kept; the full-text index keeps its rowids, and its triggers are recreated.
"""

SQL = """
CREATE TABLE users_new (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    platform         TEXT NOT NULL,
    platform_user_id TEXT NOT NULL,
    display_name     TEXT NOT NULL,
    created_at       REAL NOT NULL,
    UNIQUE (platform, platform_user_id)
);
INSERT INTO users_new SELECT id, platform, platform_user_id, display_name, created_at FROM users;
DROP TABLE users;
ALTER TABLE users_new RENAME TO users;

CREATE TABLE consent_events_new (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    scope   TEXT NOT NULL CHECK (scope IN ('learn', 'share')),
    granted INTEGER NOT NULL CHECK (granted IN (0, 1)),
    at      REAL NOT NULL
);
INSERT INTO consent_events_new SELECT id, user_id, scope, granted, at FROM consent_events;
DROP TABLE consent_events;
ALTER TABLE consent_events_new RENAME TO consent_events;
CREATE INDEX consent_events_by_user ON consent_events (user_id, scope, id);

CREATE TABLE messages_new (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    owner_id   INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    platform   TEXT NOT NULL,
    chat_id    TEXT NOT NULL,
    message_id TEXT NOT NULL,
    author     TEXT NOT NULL,
    is_own     INTEGER NOT NULL CHECK (is_own IN (0, 1)),
    ts         REAL NOT NULL,
    text       TEXT NOT NULL,
    source     TEXT NOT NULL CHECK (source IN ('live', 'import')),
    reply_to   TEXT,
    is_dm      INTEGER NOT NULL DEFAULT 0 CHECK (is_dm IN (0, 1)),
    UNIQUE (owner_id, platform, chat_id, message_id)
);
INSERT INTO messages_new
    SELECT id, owner_id, platform, chat_id, message_id, author, is_own, ts, text, source, reply_to, is_dm
    FROM messages;
DROP TABLE messages;
ALTER TABLE messages_new RENAME TO messages;
CREATE INDEX messages_by_chat ON messages (owner_id, platform, chat_id, ts, id);
CREATE TRIGGER messages_fts_insert AFTER INSERT ON messages BEGIN
    INSERT INTO messages_fts (rowid, text) VALUES (new.id, new.text);
END;
CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages BEGIN
    INSERT INTO messages_fts (messages_fts, rowid, text) VALUES ('delete', old.id, old.text);
END;
CREATE TRIGGER messages_fts_update AFTER UPDATE OF text ON messages BEGIN
    INSERT INTO messages_fts (messages_fts, rowid, text) VALUES ('delete', old.id, old.text);
    INSERT INTO messages_fts (rowid, text) VALUES (new.id, new.text);
END;

CREATE TABLE training_jobs_new (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id      INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    state        TEXT NOT NULL CHECK (state IN ('queued', 'running', 'done', 'failed', 'cancelled')),
    progress     REAL NOT NULL DEFAULT 0,
    step         INTEGER NOT NULL DEFAULT 0,
    total_steps  INTEGER NOT NULL DEFAULT 0,
    loss         REAL,
    eta_s        REAL,
    error        TEXT,
    params       TEXT NOT NULL DEFAULT '{}',
    created_at   REAL NOT NULL,
    started_at   REAL,
    finished_at  REAL,
    heartbeat_at REAL,
    worker_id    TEXT,
    attempts     INTEGER NOT NULL DEFAULT 0
);
INSERT INTO training_jobs_new
    SELECT id, user_id, state, progress, step, total_steps, loss, eta_s, error, params, created_at, started_at,
           finished_at, heartbeat_at, worker_id, attempts
    FROM training_jobs;
DROP TABLE training_jobs;
ALTER TABLE training_jobs_new RENAME TO training_jobs;
CREATE UNIQUE INDEX training_jobs_one_active ON training_jobs (user_id) WHERE state IN ('queued', 'running');
CREATE INDEX training_jobs_by_state ON training_jobs (state, id);
"""
