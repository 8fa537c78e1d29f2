//! The ledger's tables and their migrations (`PRAGMA user_version` counts the ones applied).
//! `docs/ledger.md` documents every column; a test keeps the two in step.

use rusqlite::Connection;

use crate::LedgerError;

/// The schema version this library writes.
pub const SCHEMA_VERSION: i64 = 3;

/// Each migration takes the schema from its index to the next version. Never edit one that
/// has shipped: add the next.
const MIGRATIONS: &[&str] = &[
    // 1: batches, items, the append-only event log.
    r#"
CREATE TABLE batches (
    id          TEXT PRIMARY KEY,
    created_at  INTEGER NOT NULL,
    source      TEXT
);

CREATE TABLE items (
    id                     INTEGER PRIMARY KEY,
    batch_id               TEXT NOT NULL REFERENCES batches(id),
    key                    TEXT NOT NULL,
    line                   INTEGER,
    video_url              TEXT,
    file_path              TEXT,
    file_size              INTEGER,
    model                  TEXT,
    output_format          TEXT,
    background             TEXT,
    text_prompt            TEXT,
    context                TEXT NOT NULL DEFAULT '{}',
    output_target          TEXT,
    phase                  TEXT NOT NULL,
    generation             INTEGER NOT NULL DEFAULT 0,
    idempotency_key        TEXT,
    job_id                 TEXT,
    job_status             TEXT,
    credits_estimated      REAL,
    credits_reserved       REAL,
    credits_charged        REAL,
    output_path            TEXT,
    output_size            INTEGER,
    output_sha256          TEXT,
    last_error_code        TEXT,
    last_error_message     TEXT,
    last_error_request_id  TEXT,
    updated_at             INTEGER NOT NULL,
    UNIQUE (batch_id, key)
);
CREATE INDEX items_by_phase ON items (batch_id, phase);

CREATE TABLE events (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    item_id      INTEGER NOT NULL REFERENCES items(id),
    at           INTEGER NOT NULL,
    kind         TEXT NOT NULL,
    phase_from   TEXT,
    phase_to     TEXT,
    status_from  TEXT,
    status_to    TEXT,
    request_id   TEXT,
    http_status  INTEGER,
    attempt      INTEGER,
    detail       TEXT
);
CREATE INDEX events_by_item ON events (item_id, seq);

CREATE TRIGGER events_are_not_updated BEFORE UPDATE ON events
BEGIN SELECT RAISE(ABORT, 'the event log is append-only'); END;
CREATE TRIGGER events_are_not_deleted BEFORE DELETE ON events
BEGIN SELECT RAISE(ABORT, 'the event log is append-only'); END;
"#,
    // 2: what a resume needs to send the very same create again: the URL an upload gave a
    // file item, and whether the server was seen to honour idempotency keys.
    r#"
ALTER TABLE items ADD COLUMN uploaded_video_url TEXT;
ALTER TABLE batches ADD COLUMN idempotency TEXT;
"#,
    // 3: no index on the phase. Every step that changes an item's phase moved its entry in
    // it, at random places of a large index: 40 % of a step's cost. Counting items per phase
    // scans the batch instead (a runner keeps its counts in memory).
    r#"
DROP INDEX items_by_phase;
"#,
];

/// Brings the file's schema to [`SCHEMA_VERSION`], each migration in its own transaction.
pub(crate) fn migrate(conn: &mut Connection) -> Result<(), LedgerError> {
    let found: i64 = conn.query_row("PRAGMA user_version", [], |row| row.get(0))?;
    if found > SCHEMA_VERSION {
        return Err(LedgerError::NewerSchema {
            found,
            supported: SCHEMA_VERSION,
        });
    }
    for (index, sql) in MIGRATIONS.iter().enumerate().skip(found as usize) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        // user_version takes no bound parameter; the value is ours, never the caller's.
        tx.execute_batch(&format!("PRAGMA user_version = {}", index + 1))?;
        tx.commit()?;
    }
    Ok(())
}
