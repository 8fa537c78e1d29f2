//! The ledger's tables and their migrations (`PRAGMA user_version` counts the ones applied).
//! `docs/ledger.md` documents every column; a test keeps the two in step.

use rusqlite::Connection;

use crate::LedgerError;

/// The schema version this library writes.
pub const SCHEMA_VERSION: i64 = 6;

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
    // 4: each step writes the row whole from the runner's copy of the item, guarded by its
    // revision (a stale copy is never written back); and the log's sequence needs
    // no AUTOINCREMENT (its sqlite_sequence row was written with every event; events are never
    // deleted, so the largest seq plus one is never a reused one).
    r#"
ALTER TABLE items ADD COLUMN revision INTEGER NOT NULL DEFAULT 0;

CREATE TABLE events_v4 (
    seq          INTEGER PRIMARY KEY,
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
INSERT INTO events_v4 SELECT seq, item_id, at, kind, phase_from, phase_to, status_from,
    status_to, request_id, http_status, attempt, detail FROM events;
DROP TABLE events;
ALTER TABLE events_v4 RENAME TO events;
CREATE INDEX events_by_item ON events (item_id, seq);

CREATE TRIGGER events_are_not_updated BEFORE UPDATE ON events
BEGIN SELECT RAISE(ABORT, 'the event log is append-only'); END;
CREATE TRIGGER events_are_not_deleted BEFORE DELETE ON events
BEGIN SELECT RAISE(ABORT, 'the event log is append-only'); END;
"#,
    // 5: leases (a worker's hold on an item, as on PostgreSQL, where many workers share a
    // batch) and the worker that wrote each event.
    r#"
ALTER TABLE items ADD COLUMN lease_owner TEXT;
ALTER TABLE items ADD COLUMN lease_until INTEGER;
ALTER TABLE events ADD COLUMN worker TEXT;
"#,
    // 6: the rate gate the workers of one API key share (a 429 anywhere pauses them all) and
    // the workers that use it (a shared ceiling is split between them).
    r#"
CREATE TABLE rate_gates (
    key_hash      TEXT PRIMARY KEY,
    paused_until  INTEGER NOT NULL,
    limited       INTEGER NOT NULL,
    limited_at    INTEGER NOT NULL
);
CREATE TABLE rate_gate_workers (
    key_hash  TEXT NOT NULL,
    worker    TEXT NOT NULL,
    seen_at   INTEGER NOT NULL,
    PRIMARY KEY (key_hash, worker)
);
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A file of schema 3 (events numbered by AUTOINCREMENT, no revisions) keeps its log, its
    /// numbering and its append-only rule through migration 4.
    #[test]
    fn a_file_of_schema_3_keeps_its_log_through_migration_4() {
        let mut conn = Connection::open_in_memory().unwrap();
        for sql in &MIGRATIONS[..3] {
            conn.execute_batch(sql).unwrap();
        }
        conn.execute_batch(
            "PRAGMA user_version = 3;
             INSERT INTO batches (id, created_at) VALUES ('b', 1);
             INSERT INTO items (batch_id, key, phase, updated_at) VALUES ('b', 'k', 'running', 1);
             INSERT INTO events (item_id, at, kind) VALUES (1, 1, 'planned');
             INSERT INTO events (item_id, at, kind) VALUES (1, 2, 'intent');
             INSERT INTO events (item_id, at, kind) VALUES (1, 3, 'created');",
        )
        .unwrap();
        migrate(&mut conn).unwrap();
        let version: i64 = conn
            .query_row("PRAGMA user_version", [], |row| row.get(0))
            .unwrap();
        assert_eq!(version, SCHEMA_VERSION);
        let kept: Vec<(i64, String)> = conn
            .prepare("SELECT seq, kind FROM events ORDER BY seq")
            .unwrap()
            .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(
            kept,
            [
                (1, "planned".into()),
                (2, "intent".into()),
                (3, "created".into())
            ]
        );
        conn.execute(
            "INSERT INTO events (item_id, at, kind) VALUES (1, 4, 'status')",
            [],
        )
        .unwrap();
        assert_eq!(conn.last_insert_rowid(), 4, "numbering goes on");
        let revision: i64 = conn
            .query_row("SELECT revision FROM items", [], |row| row.get(0))
            .unwrap();
        assert_eq!(revision, 0);
        for rewrite in ["UPDATE events SET kind = 'x'", "DELETE FROM events"] {
            let refused = conn.execute(rewrite, []).unwrap_err().to_string();
            assert!(refused.contains("append-only"), "{rewrite}: {refused}");
        }
        let indexed: i64 = conn
            .query_row(
                "SELECT COUNT(*) FROM sqlite_schema WHERE name = 'events_by_item'",
                [],
                |row| row.get(0),
            )
            .unwrap();
        assert_eq!(indexed, 1);
    }
}
