"""Users, consent history, messages, training jobs, adapters, avatars and reply feedback."""

SQL = """
CREATE TABLE users (
    id               INTEGER PRIMARY KEY,
    platform         TEXT NOT NULL,
    platform_user_id TEXT NOT NULL,
    display_name     TEXT NOT NULL,
    created_at       REAL NOT NULL,
    UNIQUE (platform, platform_user_id)
);

-- Consent is a history of grants and withdrawals; the current state is the latest row per scope.
CREATE TABLE consent_events (
    id      INTEGER PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    scope   TEXT NOT NULL CHECK (scope IN ('learn', 'share')),
    granted INTEGER NOT NULL CHECK (granted IN (0, 1)),
    at      REAL NOT NULL
);
CREATE INDEX consent_events_by_user ON consent_events (user_id, scope, id);

-- A user's messages: their own lines (is_own = 1) and, from imports, other speakers' lines kept
-- only as conversation context for that user's twin. Unique per owner and platform message so a
-- re-import adds nothing; two users importing the same chat each own their copy.
CREATE TABLE messages (
    id         INTEGER PRIMARY KEY,
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
CREATE INDEX messages_by_chat ON messages (owner_id, platform, chat_id, ts, id);

CREATE TABLE training_jobs (
    id           INTEGER PRIMARY KEY,
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
-- One active job per user, enforced by the database itself.
CREATE UNIQUE INDEX training_jobs_one_active ON training_jobs (user_id) WHERE state IN ('queued', 'running');
CREATE INDEX training_jobs_by_state ON training_jobs (state, id);

CREATE TABLE adapters (
    user_id    INTEGER PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
    path       TEXT NOT NULL,
    job_id     INTEGER REFERENCES training_jobs(id) ON DELETE SET NULL,
    base_model TEXT NOT NULL,
    n_examples INTEGER NOT NULL,
    created_at REAL NOT NULL,
    metrics    TEXT NOT NULL DEFAULT '{}'
);

CREATE TABLE avatars (
    user_id    INTEGER PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
    style      TEXT NOT NULL,
    latent     BLOB NOT NULL,
    model_id   TEXT NOT NULL,
    created_at REAL NOT NULL
);

CREATE TABLE feedback (
    id            INTEGER PRIMARY KEY,
    rater_id      INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    twin_owner_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    platform      TEXT NOT NULL,
    message_ref   TEXT NOT NULL,
    score         INTEGER NOT NULL CHECK (score IN (-1, 1)),
    at            REAL NOT NULL
);
"""
