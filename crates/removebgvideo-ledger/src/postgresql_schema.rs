//! The PostgreSQL ledger's tables: the same tables and columns as the SQLite file's schema 6
//! (`docs/ledger.md`), with PostgreSQL's types, and the migrations that make them.
//! `removebgvideo_schema` counts the migrations applied; workers that start at once take
//! turns under an advisory lock, so each migration runs once.

use postgres::Client;

use crate::LedgerError;
use crate::postgresql::pg_error;

/// The schema version this library writes (the SQLite file's numbering: the tables match).
pub const SCHEMA_VERSION: i64 = 6;

/// The advisory lock the migrations hold (any fixed number: "rbv-ledger" in ASCII).
const MIGRATION_LOCK: i64 = 0x7262_762d_6c65_6467;

/// Each migration takes the schema from the version before it to its own. PostgreSQL's
/// first is SQLite's five in one. Never edit one that has shipped: add the next.
const MIGRATIONS: &[(i64, &str)] = &[
    (
        5,
        r#"
CREATE TABLE batches (
    id          TEXT PRIMARY KEY,
    created_at  BIGINT NOT NULL,
    source      TEXT,
    idempotency TEXT
);

CREATE TABLE items (
    id                     BIGSERIAL PRIMARY KEY,
    batch_id               TEXT NOT NULL REFERENCES batches(id),
    key                    TEXT NOT NULL,
    line                   BIGINT,
    video_url              TEXT,
    file_path              TEXT,
    file_size              BIGINT,
    model                  TEXT,
    output_format          TEXT,
    background             TEXT,
    text_prompt            TEXT,
    context                TEXT NOT NULL DEFAULT '{}',
    output_target          TEXT,
    phase                  TEXT NOT NULL,
    generation             BIGINT NOT NULL DEFAULT 0,
    idempotency_key        TEXT,
    job_id                 TEXT,
    job_status             TEXT,
    credits_estimated      DOUBLE PRECISION,
    credits_reserved       DOUBLE PRECISION,
    credits_charged        DOUBLE PRECISION,
    output_path            TEXT,
    output_size            BIGINT,
    output_sha256          TEXT,
    last_error_code        TEXT,
    last_error_message     TEXT,
    last_error_request_id  TEXT,
    updated_at             BIGINT NOT NULL,
    uploaded_video_url     TEXT,
    revision               BIGINT NOT NULL DEFAULT 0,
    lease_owner            TEXT,
    lease_until            BIGINT,
    UNIQUE (batch_id, key)
);

CREATE TABLE events (
    seq          BIGSERIAL PRIMARY KEY,
    item_id      BIGINT NOT NULL REFERENCES items(id),
    at           BIGINT NOT NULL,
    kind         TEXT NOT NULL,
    phase_from   TEXT,
    phase_to     TEXT,
    status_from  TEXT,
    status_to    TEXT,
    request_id   TEXT,
    http_status  BIGINT,
    attempt      BIGINT,
    detail       TEXT,
    worker       TEXT
);
CREATE INDEX events_by_item ON events (item_id, seq);

CREATE FUNCTION removebgvideo_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the event log is append-only';
END
$$;
CREATE TRIGGER events_are_append_only BEFORE UPDATE OR DELETE ON events
    FOR EACH ROW EXECUTE FUNCTION removebgvideo_events_append_only();
CREATE TRIGGER events_are_not_truncated BEFORE TRUNCATE ON events
    FOR EACH STATEMENT EXECUTE FUNCTION removebgvideo_events_append_only();
"#,
    ),
    (
        6,
        r#"
CREATE TABLE rate_gates (
    key_hash      TEXT PRIMARY KEY,
    paused_until  BIGINT NOT NULL,
    limited       BIGINT NOT NULL,
    limited_at    BIGINT NOT NULL
);
CREATE TABLE rate_gate_workers (
    key_hash  TEXT NOT NULL,
    worker    TEXT NOT NULL,
    seen_at   BIGINT NOT NULL,
    PRIMARY KEY (key_hash, worker)
);
"#,
    ),
];

/// Brings the database's schema to [`SCHEMA_VERSION`], all in one transaction under the
/// migration lock (PostgreSQL's DDL is transactional: a failed migration leaves nothing).
pub(crate) fn migrate(client: &mut Client) -> Result<(), LedgerError> {
    // All under the lock, the version table's creation included: two sessions creating the
    // same table at once collide in PostgreSQL's catalog even with IF NOT EXISTS.
    let mut tx = client.transaction().map_err(pg_error)?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .map_err(pg_error)?;
    tx.batch_execute("CREATE TABLE IF NOT EXISTS removebgvideo_schema (version BIGINT NOT NULL)")
        .map_err(pg_error)?;
    let found = found_version(&mut tx)?;
    if found > SCHEMA_VERSION {
        return Err(LedgerError::NewerSchema {
            found,
            supported: SCHEMA_VERSION,
        });
    }
    for (version, sql) in MIGRATIONS.iter().filter(|(version, _)| *version > found) {
        tx.batch_execute(sql).map_err(pg_error)?;
        tx.execute("DELETE FROM removebgvideo_schema", &[])
            .map_err(pg_error)?;
        tx.execute(
            "INSERT INTO removebgvideo_schema (version) VALUES ($1)",
            &[version],
        )
        .map_err(pg_error)?;
    }
    tx.commit().map_err(pg_error)
}

/// The version the database is at (0: none applied).
pub(crate) fn found_version(client: &mut impl postgres::GenericClient) -> Result<i64, LedgerError> {
    let row = client
        .query_opt("SELECT MAX(version) FROM removebgvideo_schema", &[])
        .map_err(pg_error)?;
    Ok(row
        .and_then(|row| row.get::<_, Option<i64>>(0))
        .unwrap_or(0))
}
