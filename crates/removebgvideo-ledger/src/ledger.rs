//! The ledger file: opening it (pragmas, migrations), adding a batch's items, and recording
//! each step of an item with its event in one transaction.

use std::collections::HashSet;
use std::path::Path;
use std::time::Duration;

use removebgvideo_core::Timestamp;
use removebgvideo_core::state::{TransitionRecord, Verdict};
use rusqlite::{Connection, OptionalExtension, Row, params};
use serde::Serialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::checkpoint::Checkpointer;
use crate::item::{EventRecord, Item, ItemInput, ItemPhase, NewItem};
use crate::{LedgerError, schema};

/// How long a writer waits for another's transaction before it gives up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// How much a commit survives.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Durability {
    /// WAL with `synchronous=NORMAL`: a process crash loses nothing committed; a power loss
    /// may lose the last transactions (tens of thousands of commits a second).
    #[default]
    Normal,
    /// WAL with `synchronous=FULL`: every commit is on disk before it returns (a few hundred
    /// commits a second).
    Full,
}

/// How many items are in each phase.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    pub total: u64,
    pub by_phase: Vec<(ItemPhase, u64)>,
}

impl Counts {
    /// Items in `phase`.
    pub fn of(&self, phase: ItemPhase) -> u64 {
        self.by_phase
            .iter()
            .find(|(p, _)| *p == phase)
            .map_or(0, |(_, n)| *n)
    }
}

/// One step of an item: its new phase and the facts that came with it, written with its event
/// in one transaction (an answer is never recorded apart from the phase change it causes).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Step {
    /// The event's kind (`created`, `status`, `attempt`, `error`, `output`, ...).
    pub kind: &'static str,
    /// The phase it moves to (`None`: it stays).
    pub phase: Option<ItemPhase>,
    pub job_id: Option<String>,
    pub status_from: Option<String>,
    pub status_to: Option<String>,
    pub request_id: Option<String>,
    pub http_status: Option<u16>,
    pub attempt: Option<u32>,
    /// An error, kept as the item's last (never cleared by later steps).
    pub error: Option<(String, String)>,
    pub credits_estimated: Option<f64>,
    pub credits_reserved: Option<f64>,
    pub credits_charged: Option<f64>,
    /// The output in place: its path, size and sha256.
    pub output: Option<(String, u64, String)>,
    /// Starts a new generation (a restart from the beginning).
    pub next_generation: bool,
    /// The `video_url` an upload gave the item's file.
    pub uploaded_video_url: Option<String>,
    pub detail: Option<Value>,
}

/// What a step did: the phase the item was in, and the item as it now is.
#[derive(Clone, Debug, PartialEq)]
pub struct Recorded {
    pub before: ItemPhase,
    pub item: Item,
}

/// The ledger (see the crate doc). One connection; a batch runner holds one.
#[derive(Debug)]
pub struct Ledger {
    conn: Connection,
    /// A group is open (see [`Ledger::begin_group`]).
    in_group: bool,
    /// Checkpoints the WAL off the commit path (file ledgers; see `checkpoint`). Declared
    /// after `conn`: dropped after it, so the connection closes first.
    _checkpointer: Option<Checkpointer>,
}

impl Ledger {
    /// Opens (or creates) the ledger file at `path` and brings its schema up to date.
    pub fn open(path: &Path, durability: Durability) -> Result<Ledger, LedgerError> {
        let conn = Connection::open(path)?;
        let mut ledger = Ledger::configure(conn, durability)?;
        if let Some(checkpointer) = Checkpointer::start(path) {
            ledger.conn.pragma_update(None, "wal_autocheckpoint", 0)?;
            ledger._checkpointer = Some(checkpointer);
        }
        Ok(ledger)
    }

    /// A ledger in memory (tests, dry runs).
    pub fn open_in_memory() -> Result<Ledger, LedgerError> {
        Ledger::configure(Connection::open_in_memory()?, Durability::Normal)
    }

    fn configure(mut conn: Connection, durability: Durability) -> Result<Ledger, LedgerError> {
        conn.busy_timeout(BUSY_TIMEOUT)?;
        let mode: String =
            conn.pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))?;
        // An in-memory database answers `memory`; a file that cannot do WAL (a network
        // filesystem) keeps its old mode, and crash safety with it: refuse it.
        if mode != "wal" && mode != "memory" {
            return Err(LedgerError::Corrupt(format!(
                "the ledger file cannot use WAL (journal mode {mode}); put it on a local filesystem"
            )));
        }
        let synchronous = match durability {
            Durability::Normal => "NORMAL",
            Durability::Full => "FULL",
        };
        conn.pragma_update(None, "synchronous", synchronous)?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.pragma_update(None, "temp_store", "MEMORY")?;
        schema::migrate(&mut conn)?;
        Ok(Ledger {
            conn,
            in_group: false,
            _checkpointer: None,
        })
    }

    /// The schema version of the file.
    pub fn schema_version(&self) -> Result<i64, LedgerError> {
        Ok(self
            .conn
            .query_row("PRAGMA user_version", [], |row| row.get(0))?)
    }

    /// Adds a batch's items, all or none. A key used twice is refused; a key already in the
    /// ledger with the same input is kept as it is (a re-run resumes it), with another input
    /// refused. Returns how many were new.
    pub fn add_items(
        &mut self,
        batch: &str,
        source: &str,
        items: &[NewItem],
        now: Timestamp,
    ) -> Result<usize, LedgerError> {
        let mut keys = HashSet::new();
        if let Some(item) = items.iter().find(|item| !keys.insert(item.key.as_str())) {
            return Err(LedgerError::DuplicateKey(item.key.clone()));
        }
        let tx = self.conn.transaction()?;
        tx.execute(
            "INSERT OR IGNORE INTO batches (id, created_at, source) VALUES (?1, ?2, ?3)",
            params![batch, millis(now), source],
        )?;
        let mut added = 0;
        for item in items {
            if let Some(stored) = find_item(&tx, batch, &item.key)? {
                if stored.input != item.input {
                    return Err(LedgerError::InputChanged(item.key.clone()));
                }
                continue;
            }
            insert_item(&tx, batch, item, now)?;
            added += 1;
        }
        tx.commit()?;
        Ok(added)
    }

    /// Records the intent to create the item's job, before the POST is sent, and returns the
    /// idempotency key to send. The key is derived from the batch, the item's key and its
    /// generation, so a resumed item sends the same key again (its event says so).
    pub fn begin_create(
        &mut self,
        batch: &str,
        key: &str,
        now: Timestamp,
    ) -> Result<String, LedgerError> {
        self.step(|tx| {
            let (id, phase, generation) = locate(tx, batch, key)?;
            // An `unknown` item is created again only when the caller opted in (the runner asks):
            // as a new generation, so its key differs from the one whose outcome is unknown.
            let generation = match phase {
                ItemPhase::Planned | ItemPhase::Creating => generation,
                ItemPhase::Unknown => generation + 1,
                _ => return Err(wrong_phase(key, phase, "begin_create")),
            };
            let idempotency_key = derive_idempotency_key(batch, key, generation);
            tx.prepare_cached(
                "UPDATE items SET phase = 'creating', idempotency_key = ?2, generation = ?3, \
             updated_at = ?4 WHERE id = ?1",
            )?
            .execute(params![id, idempotency_key, generation, millis(now)])?;
            let detail = json!({
                "idempotency_key": idempotency_key,
                "resent": phase == ItemPhase::Creating,
                "recreated": phase == ItemPhase::Unknown,
            });
            append_event(
                tx,
                id,
                now,
                "intent",
                Some(phase),
                Some(ItemPhase::Creating),
                &Step {
                    detail: Some(detail),
                    ..Step::default()
                },
            )?;
            Ok(idempotency_key)
        })
    }

    /// Records one step of an item with its event (see [`Step`]); returns the phase the item
    /// was in before it, and the item as it now is.
    pub fn record(
        &mut self,
        batch: &str,
        key: &str,
        step: &Step,
        now: Timestamp,
    ) -> Result<Recorded, LedgerError> {
        self.step(|tx| {
            let (id, phase, _) = locate(tx, batch, key)?;
            let next = step.phase.unwrap_or(phase);
            if next != phase && !phase.may_go_to(next) {
                return Err(wrong_phase(key, phase, step.kind));
            }
            let item = apply(tx, id, next, step, now)?;
            append_event(tx, id, now, step.kind, Some(phase), step.phase, step)?;
            Ok(Recorded {
                before: phase,
                item,
            })
        })
    }

    /// Records a job status the core's tracker saw, unless it is no change (the log keeps
    /// status changes, not every poll). Returns whether it was recorded.
    pub fn record_status(
        &mut self,
        batch: &str,
        key: &str,
        record: &TransitionRecord,
        phase: Option<ItemPhase>,
    ) -> Result<bool, LedgerError> {
        if record.verdict == Verdict::Unchanged {
            return Ok(false);
        }
        let step = Step {
            kind: "status",
            phase,
            status_from: record.from.as_ref().map(|s| s.as_str().to_owned()),
            status_to: Some(record.to.as_str().to_owned()),
            request_id: record.request_id.clone(),
            detail: Some(json!({ "verdict": record.verdict, "progress": record.progress })),
            ..Step::default()
        };
        self.record(batch, key, &step, record.at)?;
        Ok(true)
    }

    /// Opens a group: the steps recorded until [`Ledger::commit_group`] commit together, in one
    /// transaction (each still all or nothing on its own). A runner groups the answers that
    /// arrived together, and sends the requests they lead to only after the group commits:
    /// the write-ahead rules hold, at one commit for many steps.
    pub fn begin_group(&mut self) -> Result<(), LedgerError> {
        self.conn.execute_batch("BEGIN IMMEDIATE")?;
        self.in_group = true;
        Ok(())
    }

    /// Commits the open group.
    pub fn commit_group(&mut self) -> Result<(), LedgerError> {
        self.conn.execute_batch("COMMIT")?;
        self.in_group = false;
        Ok(())
    }

    /// Drops the open group's steps (a step failed: none of the group's is kept).
    pub fn rollback_group(&mut self) -> Result<(), LedgerError> {
        if self.in_group {
            self.in_group = false;
            self.conn.execute_batch("ROLLBACK")?;
        }
        Ok(())
    }

    /// Runs one step all or nothing: in its own transaction, or inside the open group (whose
    /// commit or rollback is then the step's; a failed step fails the whole group, so a step
    /// never needs a savepoint of its own, nor the statement journal one would write).
    fn step<T>(
        &mut self,
        work: impl FnOnce(&Connection) -> Result<T, LedgerError>,
    ) -> Result<T, LedgerError> {
        if self.in_group {
            return work(&self.conn);
        }
        let tx = self.conn.transaction()?;
        let value = work(&tx)?;
        tx.commit()?;
        Ok(value)
    }

    /// Whether the batch's server was seen to honour idempotency keys (`None`: not known yet).
    pub fn keys_honoured(&self, batch: &str) -> Result<Option<bool>, LedgerError> {
        let stored: Option<Option<String>> = self
            .conn
            .query_row(
                "SELECT idempotency FROM batches WHERE id = ?1",
                params![batch],
                |row| row.get(0),
            )
            .optional()?;
        Ok(match stored.flatten().as_deref() {
            Some("honoured") => Some(true),
            Some("not_honoured") => Some(false),
            _ => None,
        })
    }

    /// Records what was learned about the server's idempotency keys, so that a resume in a new
    /// process may send an unanswered create again before it has learned it anew.
    pub fn set_keys_honoured(&mut self, batch: &str, honoured: bool) -> Result<(), LedgerError> {
        let value = if honoured { "honoured" } else { "not_honoured" };
        self.conn.execute(
            "UPDATE batches SET idempotency = ?2 WHERE id = ?1",
            params![batch, value],
        )?;
        Ok(())
    }

    /// An item by key.
    pub fn item(&self, batch: &str, key: &str) -> Result<Item, LedgerError> {
        find_item(&self.conn, batch, key)?.ok_or_else(|| LedgerError::NoSuchItem(key.to_owned()))
    }

    /// Every item of a batch, in manifest order.
    pub fn items(&self, batch: &str) -> Result<Vec<Item>, LedgerError> {
        let mut query = self.conn.prepare(&format!(
            "SELECT {ITEM_COLUMNS} FROM items WHERE batch_id = ?1 ORDER BY id"
        ))?;
        let rows = query.query_map(params![batch], read_item)?;
        rows.map(|row| row?).collect()
    }

    /// An item's log, oldest first.
    pub fn events(&self, batch: &str, key: &str) -> Result<Vec<EventRecord>, LedgerError> {
        let mut query = self
            .conn
            .prepare(&format!("{EVENTS_OF_BATCH} AND i.key = ?2 ORDER BY e.seq"))?;
        let rows = query.query_map(params![batch, key], read_event)?;
        let events: Vec<EventRecord> = rows.map(|row| row?).collect::<Result<_, _>>()?;
        if events.is_empty() {
            // Distinguish "no events yet" from "no such item".
            self.item(batch, key)?;
        }
        Ok(events)
    }

    /// The newest batch read from `source` (a manifest's absolute path), if any.
    pub fn batch_of_source(&self, source: &str) -> Result<Option<String>, LedgerError> {
        Ok(self
            .conn
            .query_row(
                "SELECT id FROM batches WHERE source = ?1 ORDER BY created_at DESC, id LIMIT 1",
                params![source],
                |row| row.get(0),
            )
            .optional()?)
    }

    /// Every batch in the file, oldest first.
    pub fn batches(&self) -> Result<Vec<String>, LedgerError> {
        let mut query = self
            .conn
            .prepare("SELECT id FROM batches ORDER BY created_at, id")?;
        let rows = query.query_map([], |row| row.get::<_, String>(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The whole log of a batch, in order, each event with its item's key (the audit trail).
    pub fn batch_events(&self, batch: &str) -> Result<Vec<(String, EventRecord)>, LedgerError> {
        let mut query = self
            .conn
            .prepare(&format!("{EVENTS_OF_BATCH} ORDER BY e.seq"))?;
        let rows = query.query_map(params![batch], |row| {
            Ok((row.get::<_, String>(11)?, read_event(row)?))
        })?;
        let mut events = Vec::new();
        for row in rows {
            let (key, event) = row?;
            events.push((key, event?));
        }
        Ok(events)
    }

    /// How many items of a batch are in each phase.
    pub fn counts(&self, batch: &str) -> Result<Counts, LedgerError> {
        let mut query = self.conn.prepare_cached(
            "SELECT phase, COUNT(*) FROM items WHERE batch_id = ?1 GROUP BY phase",
        )?;
        let mut counts = Counts::default();
        let rows = query.query_map(params![batch], |row| {
            Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)?))
        })?;
        for row in rows {
            let (phase, n) = row?;
            counts.by_phase.push((ItemPhase::parse(&phase)?, n as u64));
            counts.total += n as u64;
        }
        counts
            .by_phase
            .sort_by_key(|(phase, _)| ItemPhase::ALL.iter().position(|p| p == phase));
        Ok(counts)
    }
}

/// The idempotency key of an item's create: `rbv-` and a hash of the batch and the item key,
/// then the generation. Printable ASCII, 1-255 characters, as the API takes it.
pub fn derive_idempotency_key(batch: &str, key: &str, generation: u32) -> String {
    let mut hash = Sha256::new();
    // Lengths first, so ("ab", "c") and ("a", "bc") differ.
    hash.update((batch.len() as u64).to_be_bytes());
    hash.update(batch.as_bytes());
    hash.update((key.len() as u64).to_be_bytes());
    hash.update(key.as_bytes());
    let digest = hash.finalize();
    let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
    format!("rbv-{hex}-g{generation}")
}

/// The events of a batch (`?1`), each with its item's key last.
const EVENTS_OF_BATCH: &str = "SELECT e.seq, e.at, e.kind, e.phase_from, e.phase_to, \
     e.status_from, e.status_to, e.request_id, e.http_status, e.attempt, e.detail, i.key \
     FROM events e JOIN items i ON i.id = e.item_id WHERE i.batch_id = ?1";

const ITEM_COLUMNS: &str = "key, line, video_url, file_path, file_size, model, output_format, \
     background, text_prompt, output_target, context, phase, generation, idempotency_key, job_id, \
     job_status, credits_estimated, credits_reserved, credits_charged, output_path, output_size, \
     output_sha256, last_error_code, last_error_message, last_error_request_id, updated_at, \
     uploaded_video_url";

fn millis(at: Timestamp) -> i64 {
    i64::try_from(at.unix_millis()).unwrap_or(i64::MAX)
}

fn wrong_phase(key: &str, phase: ItemPhase, step: &'static str) -> LedgerError {
    LedgerError::WrongPhase {
        key: key.to_owned(),
        phase: phase.as_str().to_owned(),
        step,
    }
}

fn json_text(value: &Option<Value>) -> Option<String> {
    value.as_ref().map(Value::to_string)
}

fn parse_json(text: Option<String>, what: &str) -> Result<Option<Value>, LedgerError> {
    text.map(|t| serde_json::from_str(&t).map_err(|e| LedgerError::Corrupt(format!("{what}: {e}"))))
        .transpose()
}

fn locate(tx: &Connection, batch: &str, key: &str) -> Result<(i64, ItemPhase, u32), LedgerError> {
    // Cached statements: a runner makes several of these per item, and parsing the SQL each
    // time was a third of the ledger's cost.
    let row = tx
        .prepare_cached("SELECT id, phase, generation FROM items WHERE batch_id = ?1 AND key = ?2")?
        .query_row(params![batch, key], |row| {
            Ok((
                row.get::<_, i64>(0)?,
                row.get::<_, String>(1)?,
                row.get::<_, u32>(2)?,
            ))
        })
        .optional()?
        .ok_or_else(|| LedgerError::NoSuchItem(key.to_owned()))?;
    Ok((row.0, ItemPhase::parse(&row.1)?, row.2))
}

fn find_item(conn: &Connection, batch: &str, key: &str) -> Result<Option<Item>, LedgerError> {
    conn.prepare_cached(&format!(
        "SELECT {ITEM_COLUMNS} FROM items WHERE batch_id = ?1 AND key = ?2"
    ))?
    .query_row(params![batch, key], read_item)
    .optional()?
    .transpose()
}

fn insert_item(
    tx: &Connection,
    batch: &str,
    item: &NewItem,
    now: Timestamp,
) -> Result<(), LedgerError> {
    let input = &item.input;
    tx.execute(
        "INSERT INTO items (batch_id, key, line, video_url, file_path, file_size, model, \
         output_format, background, text_prompt, output_target, context, phase, updated_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, 'planned', ?13)",
        params![
            batch,
            item.key,
            item.line,
            input.video_url,
            input.file_path,
            input.file_size,
            input.model,
            input.output_format,
            json_text(&input.background),
            input.text_prompt,
            input.output_target,
            item.context.to_string(),
            millis(now),
        ],
    )?;
    let id = tx.last_insert_rowid();
    append_event(
        tx,
        id,
        now,
        "planned",
        None,
        Some(ItemPhase::Planned),
        &Step::default(),
    )
}

/// A step's update of its item, returning the item as it now is (one statement: no second
/// read). COALESCE keeps what a step does not bring: an error, once recorded, stays until
/// another.
static STEP_UPDATE: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "UPDATE items SET phase = ?2, \
         job_id = COALESCE(?3, job_id), \
         job_status = COALESCE(?4, job_status), \
         credits_estimated = COALESCE(?5, credits_estimated), \
         credits_reserved = COALESCE(?6, credits_reserved), \
         credits_charged = COALESCE(?7, credits_charged), \
         output_path = COALESCE(?8, output_path), \
         output_size = COALESCE(?9, output_size), \
         output_sha256 = COALESCE(?10, output_sha256), \
         last_error_code = COALESCE(?11, last_error_code), \
         last_error_message = COALESCE(?12, last_error_message), \
         last_error_request_id = CASE WHEN ?11 IS NULL THEN last_error_request_id ELSE ?13 END, \
         generation = generation + ?14, \
         updated_at = ?15, \
         uploaded_video_url = COALESCE(?16, uploaded_video_url) \
         WHERE id = ?1 RETURNING {ITEM_COLUMNS}"
    )
});

fn apply(
    tx: &Connection,
    id: i64,
    phase: ItemPhase,
    step: &Step,
    now: Timestamp,
) -> Result<Item, LedgerError> {
    let (error_code, error_message) = match &step.error {
        Some((code, message)) => (Some(code.as_str()), Some(message.as_str())),
        None => (None, None),
    };
    let (output_path, output_size, output_sha256) = match &step.output {
        Some((path, size, sha)) => (Some(path.as_str()), Some(*size), Some(sha.as_str())),
        None => (None, None, None),
    };
    tx.prepare_cached(&STEP_UPDATE)?.query_row(
        params![
            id,
            phase.as_str(),
            step.job_id,
            step.status_to,
            step.credits_estimated,
            step.credits_reserved,
            step.credits_charged,
            output_path,
            output_size,
            output_sha256,
            error_code,
            error_message,
            step.request_id,
            i64::from(step.next_generation),
            millis(now),
            step.uploaded_video_url,
        ],
        read_item,
    )?
}

fn append_event(
    tx: &Connection,
    id: i64,
    now: Timestamp,
    kind: &str,
    from: Option<ItemPhase>,
    to: Option<ItemPhase>,
    step: &Step,
) -> Result<(), LedgerError> {
    let mut detail = step.detail.clone();
    if let Some((code, message)) = &step.error {
        let error = json!({ "code": code, "message": message });
        match &mut detail {
            Some(Value::Object(fields)) => {
                fields.insert("error".into(), error);
            }
            _ => detail = Some(json!({ "error": error })),
        }
    }
    tx.prepare_cached(
        "INSERT INTO events (item_id, at, kind, phase_from, phase_to, status_from, status_to, \
         request_id, http_status, attempt, detail) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
    )?
    .execute(params![
        id,
        millis(now),
        kind,
        from.map(ItemPhase::as_str),
        to.map(ItemPhase::as_str),
        step.status_from,
        step.status_to,
        step.request_id,
        step.http_status,
        step.attempt,
        json_text(&detail),
    ])?;
    Ok(())
}

fn read_item(row: &Row<'_>) -> rusqlite::Result<Result<Item, LedgerError>> {
    let background: Option<String> = row.get(7)?;
    let context: String = row.get(10)?;
    let phase: String = row.get(11)?;
    let item = Item {
        key: row.get(0)?,
        line: row.get(1)?,
        input: ItemInput {
            video_url: row.get(2)?,
            file_path: row.get(3)?,
            file_size: row.get(4)?,
            model: row.get(5)?,
            output_format: row.get(6)?,
            background: None,
            text_prompt: row.get(8)?,
            output_target: row.get(9)?,
        },
        context: Value::Null,
        phase: ItemPhase::Planned,
        generation: row.get(12)?,
        idempotency_key: row.get(13)?,
        uploaded_video_url: row.get(26)?,
        job_id: row.get(14)?,
        job_status: row.get(15)?,
        credits_estimated: row.get(16)?,
        credits_reserved: row.get(17)?,
        credits_charged: row.get(18)?,
        output_path: row.get(19)?,
        output_size: row.get(20)?,
        output_sha256: row.get(21)?,
        last_error_code: row.get(22)?,
        last_error_message: row.get(23)?,
        last_error_request_id: row.get(24)?,
        updated_at: row.get::<_, i64>(25)?.max(0) as u64,
    };
    Ok((|| {
        let mut item = item;
        item.input.background = parse_json(background, "background")?;
        item.context = parse_json(Some(context), "context")?.unwrap_or(Value::Null);
        item.phase = ItemPhase::parse(&phase)?;
        Ok(item)
    })())
}

fn read_event(row: &Row<'_>) -> rusqlite::Result<Result<EventRecord, LedgerError>> {
    let phase_from: Option<String> = row.get(3)?;
    let phase_to: Option<String> = row.get(4)?;
    let detail: Option<String> = row.get(10)?;
    let event = EventRecord {
        seq: row.get(0)?,
        at: row.get::<_, i64>(1)?.max(0) as u64,
        kind: row.get(2)?,
        phase_from: None,
        phase_to: None,
        status_from: row.get(5)?,
        status_to: row.get(6)?,
        request_id: row.get(7)?,
        http_status: row.get(8)?,
        attempt: row.get(9)?,
        detail: None,
    };
    Ok((|| {
        let mut event = event;
        event.phase_from = phase_from.as_deref().map(ItemPhase::parse).transpose()?;
        event.phase_to = phase_to.as_deref().map(ItemPhase::parse).transpose()?;
        event.detail = parse_json(detail, "detail")?;
        Ok(event)
    })())
}
