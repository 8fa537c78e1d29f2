//! The ledger file: opening it (pragmas, migrations), adding a batch's items, and recording
//! each step of an item with its event in one transaction.

use std::collections::HashSet;
use std::path::Path;
use std::time::Duration;

use removebgvideo_core::Timestamp;
use removebgvideo_core::state::TransitionRecord;
use rusqlite::{Connection, OptionalExtension, Row, params};
use serde::Serialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::checkpoint::Checkpointer;
use crate::item::{EventRecord, Item, ItemInput, ItemPhase, NewItem};
use crate::step::Step;
use crate::writer::Writer;
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

/// The ledger (see the crate doc). One connection; a batch runner holds one.
#[derive(Debug)]
pub struct Ledger {
    conn: Connection,
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
            _checkpointer: None,
        })
    }

    /// The CPU time the helper thread's WAL checkpoints took so far (none for a ledger in
    /// memory): part of what the ledger costs its runner.
    pub fn checkpoint_cpu(&self) -> Duration {
        self._checkpointer
            .as_ref()
            .map_or(Duration::ZERO, Checkpointer::cpu)
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
    /// generation, so a resumed item sends the same key again (its event says so). One step
    /// on its own; a runner's many steps go through a [`Writer`].
    pub fn begin_create(
        &mut self,
        batch: &str,
        key: &str,
        now: Timestamp,
    ) -> Result<String, LedgerError> {
        let mut writer = Writer::new(batch);
        let idempotency_key = writer.begin_create(self, key, now)?;
        writer.commit(self)?;
        Ok(idempotency_key)
    }

    /// Records one step of an item with its event (see [`Step`]), on its own; returns the
    /// phase the item was in before it.
    pub fn record(
        &mut self,
        batch: &str,
        key: &str,
        step: &Step,
        now: Timestamp,
    ) -> Result<ItemPhase, LedgerError> {
        let mut writer = Writer::new(batch);
        let before = writer.record(self, key, step.clone(), now)?;
        writer.commit(self)?;
        Ok(before)
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
        let mut writer = Writer::new(batch);
        let recorded = writer.record_status(self, key, record, phase)?;
        writer.commit(self)?;
        Ok(recorded)
    }

    /// Runs `work` (a [`Writer`]'s commit) all or nothing, in a write transaction of
    /// its own taken at once (`BEGIN IMMEDIATE`). Many steps that commit together are a
    /// writer's job: it stages them and writes them here, in one.
    pub(crate) fn write<T>(
        &mut self,
        work: impl FnOnce(&Connection) -> Result<T, LedgerError>,
    ) -> Result<T, LedgerError> {
        // Cached statements: parsing even "BEGIN" for each commit shows in a profile.
        self.conn.prepare_cached("BEGIN IMMEDIATE")?.execute([])?;
        let value = work(&self.conn).and_then(|value| {
            self.conn.prepare_cached("COMMIT")?.execute([])?;
            Ok(value)
        });
        if value.is_err() && !self.conn.is_autocommit() {
            // The error to report is the one above; a failed rollback leaves SQLite to roll
            // back when the connection closes.
            let _ = self.conn.execute_batch("ROLLBACK");
        }
        value
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
     uploaded_video_url, id, revision";

fn millis(at: Timestamp) -> i64 {
    i64::try_from(at.unix_millis()).unwrap_or(i64::MAX)
}

fn unix_millis(at: Timestamp) -> u64 {
    millis(at).max(0) as u64
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

/// Moves the item in memory by one step: checks that the lifecycle allows it, then applies it
/// (one more revision). Returns the phase it was in.
pub(crate) fn advance(
    item: &mut Item,
    step: &Step,
    now: Timestamp,
) -> Result<ItemPhase, LedgerError> {
    let before = item.phase;
    let next = step.phase.unwrap_or(before);
    if next != before && !before.may_go_to(next) {
        return Err(wrong_phase(&item.key, before, step.kind));
    }
    step.apply(item, next, unix_millis(now));
    item.revision += 1;
    Ok(before)
}

/// Moves the item in memory to `creating` with the idempotency key of its generation (one
/// more revision). Returns the phase it was in and the key.
pub(crate) fn intend(
    batch: &str,
    item: &mut Item,
    now: Timestamp,
) -> Result<(ItemPhase, String), LedgerError> {
    let before = item.phase;
    // An `unknown` item is created again only when the caller opted in (the runner asks): as a
    // new generation, so its key differs from the one whose outcome is unknown.
    let generation = match before {
        ItemPhase::Planned | ItemPhase::Creating => item.generation,
        ItemPhase::Unknown => item.generation + 1,
        _ => return Err(wrong_phase(&item.key, before, "begin_create")),
    };
    let idempotency_key = derive_idempotency_key(batch, &item.key, generation);
    item.phase = ItemPhase::Creating;
    item.generation = generation;
    item.idempotency_key = Some(idempotency_key.clone());
    item.updated_at = unix_millis(now);
    item.revision += 1;
    Ok((before, idempotency_key))
}

/// The step of a job status change the core's tracker saw.
pub(crate) fn status_step(record: &TransitionRecord, phase: Option<ItemPhase>) -> Step {
    Step {
        kind: "status",
        phase,
        status_from: record.from.as_ref().map(|s| s.as_str().to_owned()),
        status_to: Some(record.to.as_str().to_owned()),
        request_id: record.request_id.clone(),
        detail: Some(json!({ "verdict": record.verdict, "progress": record.progress })),
        ..Step::default()
    }
}

/// The event of an intent: its key, and whether it is a resend or a new generation.
pub(crate) fn intent_event(idempotency_key: &str, before: ItemPhase) -> Step {
    Step {
        kind: "intent",
        phase: Some(ItemPhase::Creating),
        detail: Some(json!({
            "idempotency_key": idempotency_key,
            "resent": before == ItemPhase::Creating,
            "recreated": before == ItemPhase::Unknown,
        })),
        ..Step::default()
    }
}

/// Writes the item's row whole, if the file still has it at revision `read_at`; returns
/// whether it did.
pub(crate) fn update_row(tx: &Connection, item: &Item, read_at: i64) -> Result<bool, LedgerError> {
    let written = tx
        .prepare_cached(
            "UPDATE items SET phase = ?2, generation = ?3, idempotency_key = ?4, job_id = ?5, \
                 job_status = ?6, credits_estimated = ?7, credits_reserved = ?8, \
                 credits_charged = ?9, output_path = ?10, output_size = ?11, output_sha256 = ?12, \
                 last_error_code = ?13, last_error_message = ?14, last_error_request_id = ?15, \
                 uploaded_video_url = ?16, updated_at = ?17, revision = ?18 \
                 WHERE id = ?1 AND revision = ?19",
        )?
        .execute(params![
            item.id,
            item.phase.as_str(),
            item.generation,
            item.idempotency_key,
            item.job_id,
            item.job_status,
            item.credits_estimated,
            item.credits_reserved,
            item.credits_charged,
            item.output_path,
            item.output_size,
            item.output_sha256,
            item.last_error_code,
            item.last_error_message,
            item.last_error_request_id,
            item.uploaded_video_url,
            i64::try_from(item.updated_at).unwrap_or(i64::MAX),
            item.revision,
            read_at,
        ])?;
    Ok(written == 1)
}

pub(crate) fn append_event(
    tx: &Connection,
    id: i64,
    now: Timestamp,
    kind: &str,
    from: Option<ItemPhase>,
    to: Option<ItemPhase>,
    step: &Step,
) -> Result<(), LedgerError> {
    append_events(
        tx,
        &[NewEvent {
            item_id: id,
            at: now,
            kind,
            from,
            to,
            step,
        }],
    )
}

/// An event to append: its item, time, kind and phase change, the rest from its step.
pub(crate) struct NewEvent<'a> {
    pub item_id: i64,
    pub at: Timestamp,
    pub kind: &'a str,
    pub from: Option<ItemPhase>,
    pub to: Option<ItemPhase>,
    pub step: &'a Step,
}

/// Appends events in order. (One INSERT of 16 rows instead of 16 of one was measured slower:
/// the statements' own cost is not what a step pays for.)
pub(crate) fn append_events(tx: &Connection, events: &[NewEvent<'_>]) -> Result<(), LedgerError> {
    let mut insert = tx.prepare_cached(
        "INSERT INTO events (item_id, at, kind, phase_from, phase_to, status_from, status_to, \
         request_id, http_status, attempt, detail) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
    )?;
    for event in events {
        let step = event.step;
        insert.execute(params![
            event.item_id,
            millis(event.at),
            event.kind,
            event.from.map(ItemPhase::as_str),
            event.to.map(ItemPhase::as_str),
            step.status_from,
            step.status_to,
            step.request_id,
            step.http_status,
            step.attempt,
            event_detail(step),
        ])?;
    }
    Ok(())
}

/// An event's detail as stored: the step's, with its error (if any) in it.
fn event_detail(step: &Step) -> Option<String> {
    // The step's own detail is only copied when there is an error to add to it.
    match &step.error {
        None => step.detail.as_ref().map(Value::to_string),
        Some((code, message)) => {
            let error = json!({ "code": code, "message": message });
            let mut detail = step.detail.clone();
            match &mut detail {
                Some(Value::Object(fields)) => {
                    fields.insert("error".into(), error);
                }
                _ => detail = Some(json!({ "error": error })),
            }
            detail.as_ref().map(Value::to_string)
        }
    }
}

fn read_item(row: &Row<'_>) -> rusqlite::Result<Result<Item, LedgerError>> {
    let background: Option<String> = row.get(7)?;
    let context: String = row.get(10)?;
    let phase: String = row.get(11)?;
    let item = Item {
        id: row.get(27)?,
        revision: row.get(28)?,
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
