//! The ledger file: opening it (pragmas, migrations), adding a batch's items, and recording
//! each step of an item with its event in one transaction.

use std::path::Path;
use std::time::Duration;

use removebgvideo_core::Timestamp;
use removebgvideo_core::state::TransitionRecord;
use serde::Serialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::LedgerError;
use crate::backend::{Backend, BudgetLimit, Lease, RateGateRow, millis};
use crate::item::{EventRecord, Item, ItemPhase, NewItem};
use crate::sqlite::Sqlite;
use crate::step::Step;
use crate::writer::Writer;

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

/// Where a ledger lives: a SQLite file, or a PostgreSQL database shared by many workers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Location {
    /// A SQLite file (created if missing).
    File(std::path::PathBuf),
    /// A `postgres://` or `postgresql://` connection URL.
    Postgres(String),
}

impl Location {
    /// Reads a `--ledger` value: a `postgres://` or `postgresql://` URL, or else a file path.
    pub fn parse(value: &str) -> Location {
        if value.starts_with("postgres://") || value.starts_with("postgresql://") {
            Location::Postgres(value.to_owned())
        } else {
            Location::File(value.into())
        }
    }
}

/// The ledger (see the crate doc): one connection to its database, and the worker this
/// process is in it (every event it writes and every lease it takes names it).
#[derive(Debug)]
pub struct Ledger {
    backend: Box<dyn Backend>,
    worker: String,
}

impl Ledger {
    /// Opens (or creates) the ledger file at `path` and brings its schema up to date.
    pub fn open(path: &Path, durability: Durability) -> Result<Ledger, LedgerError> {
        Ok(Ledger::with(Box::new(Sqlite::open(path, durability)?)))
    }

    /// A ledger in memory (tests, dry runs).
    pub fn open_in_memory() -> Result<Ledger, LedgerError> {
        Ok(Ledger::with(Box::new(Sqlite::open_in_memory()?)))
    }

    /// Opens the ledger at `location`; a PostgreSQL one needs the `postgres` feature.
    pub fn open_at(location: &Location, durability: Durability) -> Result<Ledger, LedgerError> {
        match location {
            Location::File(path) => Ledger::open(path, durability),
            Location::Postgres(url) => Ledger::open_postgres(url),
        }
    }

    /// Connects to the PostgreSQL ledger at `url` and brings its schema up to date (workers
    /// that start at once migrate one after another). Every commit is durable there.
    #[cfg(feature = "postgres")]
    pub fn open_postgres(url: &str) -> Result<Ledger, LedgerError> {
        Ok(Ledger::with(Box::new(
            crate::postgresql::Postgres::connect(url)?,
        )))
    }

    /// Without the `postgres` feature: refused, saying so.
    #[cfg(not(feature = "postgres"))]
    pub fn open_postgres(_url: &str) -> Result<Ledger, LedgerError> {
        Err(LedgerError::Unsupported(
            "this build has no PostgreSQL ledger (the `postgres` feature of removebgvideo-ledger)",
        ))
    }

    fn with(backend: Box<dyn Backend>) -> Ledger {
        Ledger {
            backend,
            worker: worker_name(),
        }
    }

    /// The worker this ledger acts as: `host:pid:tag` (the tag tells apart two processes that
    /// share a host name and a pid, as containers do).
    pub fn worker(&self) -> &str {
        &self.worker
    }

    /// Acts as another worker (tests, and callers that name their workers themselves).
    pub fn set_worker(&mut self, worker: &str) {
        worker.clone_into(&mut self.worker);
    }

    /// The CPU time the helper thread's WAL checkpoints took so far (none for a ledger in
    /// memory or on PostgreSQL): part of what the ledger costs its runner.
    pub fn checkpoint_cpu(&self) -> Duration {
        self.backend.helper_cpu()
    }

    /// The schema version of the database.
    pub fn schema_version(&self) -> Result<i64, LedgerError> {
        self.backend.schema_version()
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
        let mut keys = std::collections::HashSet::new();
        if let Some(item) = items.iter().find(|item| !keys.insert(item.key.as_str())) {
            return Err(LedgerError::DuplicateKey(item.key.clone()));
        }
        self.backend
            .add_items(batch, source, items, now, &self.worker)
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

    /// Writes a writer's staged rows and events, all or nothing, in one transaction.
    pub(crate) fn write_steps(
        &mut self,
        rows: &[(&Item, i64)],
        events: &[NewEvent<'_>],
        budget: Option<&BudgetLimit<'_>>,
    ) -> Result<(), LedgerError> {
        self.backend.write_steps(rows, events, &self.worker, budget)
    }

    /// Whether the batch's server was seen to honour idempotency keys (`None`: not known yet).
    pub fn keys_honoured(&self, batch: &str) -> Result<Option<bool>, LedgerError> {
        Ok(match self.backend.idempotency(batch)?.as_deref() {
            Some("honoured") => Some(true),
            Some("not_honoured") => Some(false),
            _ => None,
        })
    }

    /// Records what was learned about the server's idempotency keys, so that a resume in a new
    /// process may send an unanswered create again before it has learned it anew.
    pub fn set_keys_honoured(&mut self, batch: &str, honoured: bool) -> Result<(), LedgerError> {
        let value = if honoured { "honoured" } else { "not_honoured" };
        self.backend.set_idempotency(batch, value)
    }

    /// An item by key.
    pub fn item(&self, batch: &str, key: &str) -> Result<Item, LedgerError> {
        self.backend
            .find_item(batch, key)?
            .ok_or_else(|| LedgerError::NoSuchItem(key.to_owned()))
    }

    /// Every item of a batch, in manifest order.
    pub fn items(&self, batch: &str) -> Result<Vec<Item>, LedgerError> {
        self.backend.items(batch)
    }

    /// An item's log, oldest first.
    pub fn events(&self, batch: &str, key: &str) -> Result<Vec<EventRecord>, LedgerError> {
        let events: Vec<EventRecord> = self
            .backend
            .events(batch, Some(key))?
            .into_iter()
            .map(|(_, event)| event)
            .collect();
        if events.is_empty() {
            // Distinguish "no events yet" from "no such item".
            self.item(batch, key)?;
        }
        Ok(events)
    }

    /// The newest batch read from `source` (a manifest's absolute path), if any.
    pub fn batch_of_source(&self, source: &str) -> Result<Option<String>, LedgerError> {
        self.backend.batch_of_source(source)
    }

    /// The batch read from `source` before, or else `proposed`, recorded for it now (one
    /// atomic step: workers that load the same manifest at once agree on one batch).
    pub fn adopt_batch(
        &mut self,
        source: &str,
        proposed: &str,
        now: Timestamp,
    ) -> Result<String, LedgerError> {
        self.backend.adopt_batch(source, proposed, now)
    }

    /// Whether other processes may work on this ledger's batches at the same time (a
    /// PostgreSQL ledger): a runner then works on claimed items only.
    pub fn is_shared(&self) -> bool {
        self.backend.shared()
    }

    /// Every batch in the ledger, oldest first.
    pub fn batches(&self) -> Result<Vec<String>, LedgerError> {
        self.backend.batches()
    }

    /// The whole log of a batch, in order, each event with its item's key (the audit trail).
    pub fn batch_events(&self, batch: &str) -> Result<Vec<(String, EventRecord)>, LedgerError> {
        self.backend.events(batch, None)
    }

    /// How many items of a batch are in each phase.
    pub fn counts(&self, batch: &str) -> Result<Counts, LedgerError> {
        let mut counts = Counts::default();
        for (phase, n) in self.backend.phase_counts(batch)? {
            counts.by_phase.push((ItemPhase::parse(&phase)?, n));
            counts.total += n;
        }
        counts
            .by_phase
            .sort_by_key(|(phase, _)| ItemPhase::ALL.iter().position(|p| p == phase));
        Ok(counts)
    }

    /// Leases up to `limit` items of the batch that need more work and that no live lease
    /// holds, for `lease`, in manifest order; an item whose holder let its lease lapse is
    /// taken over (logged as `claimed`, with the holder it replaced). One statement on
    /// PostgreSQL (`FOR UPDATE SKIP LOCKED`): two workers never get the same item. Leases run
    /// on the database's clock there, on `now` in a SQLite file.
    pub fn claim(
        &mut self,
        batch: &str,
        limit: usize,
        lease: Duration,
        now: Timestamp,
    ) -> Result<Vec<Item>, LedgerError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let mut items = self.backend.claim(batch, &self.worker, limit, lease, now)?;
        items.sort_unstable_by_key(|item| item.id);
        Ok(items)
    }

    /// The heartbeat: extends every lease this worker holds on the batch by `lease` from now;
    /// returns how many it holds.
    pub fn renew_leases(
        &mut self,
        batch: &str,
        lease: Duration,
        now: Timestamp,
    ) -> Result<u64, LedgerError> {
        self.backend.renew(batch, &self.worker, lease, now)
    }

    /// Gives up this worker's leases on `keys` of the batch (all of them with `None`), so that
    /// another worker may take the items at once. Returns how many it gave up.
    pub fn release_leases(
        &mut self,
        batch: &str,
        keys: Option<&[String]>,
    ) -> Result<u64, LedgerError> {
        self.backend.release(batch, &self.worker, keys)
    }

    /// How many items of the batch need more work and are not this worker's (held by another
    /// worker, a lapsed lease included, or by none): whether a worker with nothing left to do
    /// should stay to take over a dead one's items.
    pub fn unfinished_elsewhere(&self, batch: &str) -> Result<u64, LedgerError> {
        self.backend.unfinished_elsewhere(batch, &self.worker)
    }

    /// The rate gate that every worker of one API key shares (`key_hash`: a hash of the key,
    /// never the key): records a 429 this worker got (`limited`: the pause it asked for) and
    /// that this worker uses the gate, and returns the gate as every worker left it (the
    /// pause still to run, the 429s so far, how many workers use it).
    pub fn sync_rate_gate(
        &mut self,
        key_hash: &str,
        limited: Option<Duration>,
        now: Timestamp,
    ) -> Result<RateGateRow, LedgerError> {
        self.backend
            .sync_rate_gate(key_hash, &self.worker, limited, now)
    }

    /// The live leases on the batch, in manifest order.
    pub fn leases(&self, batch: &str, now: Timestamp) -> Result<Vec<Lease>, LedgerError> {
        self.backend.leases(batch, now)
    }
}

/// This process as a worker: `host:pid:tag`.
fn worker_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .or_else(|| std::env::var("COMPUTERNAME").ok())
        .map(|name| name.trim().to_owned())
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "localhost".to_owned());
    let tag: u16 = rand_tag();
    format!("{host}:{}:{tag:04x}", std::process::id())
}

/// A few random bits, from the standard library's randomly seeded hasher.
fn rand_tag() -> u16 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    hasher.finish() as u16
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

pub(crate) fn parse_json(text: Option<String>, what: &str) -> Result<Option<Value>, LedgerError> {
    text.map(|t| serde_json::from_str(&t).map_err(|e| LedgerError::Corrupt(format!("{what}: {e}"))))
        .transpose()
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

/// An event to append: its item, time, kind and phase change, the rest from its step.
pub(crate) struct NewEvent<'a> {
    pub item_id: i64,
    pub at: Timestamp,
    pub kind: &'a str,
    pub from: Option<ItemPhase>,
    pub to: Option<ItemPhase>,
    pub step: &'a Step,
}

impl<'a> NewEvent<'a> {
    /// A new item's first event (`planned`).
    pub(crate) fn first(item_id: i64, at: Timestamp, step: &'a Step) -> NewEvent<'a> {
        NewEvent {
            item_id,
            at,
            kind: step.kind,
            from: None,
            to: Some(ItemPhase::Planned),
            step,
        }
    }

    /// An event that moves no phase (a takeover).
    pub(crate) fn note(item_id: i64, at: Timestamp, step: &'a Step) -> NewEvent<'a> {
        NewEvent {
            item_id,
            at,
            kind: step.kind,
            from: None,
            to: None,
            step,
        }
    }
}

/// The step of a new item.
pub(crate) fn planned_event() -> Step {
    Step {
        kind: "planned",
        ..Step::default()
    }
}

/// The event of a worker taking over an item whose lease `previous` let lapse.
pub(crate) fn takeover_event(previous: &str) -> Step {
    Step {
        kind: "claimed",
        detail: Some(json!({ "previous_worker": previous })),
        ..Step::default()
    }
}

/// An event's detail as stored: the step's, with its error (if any) in it.
pub(crate) fn event_detail(step: &Step) -> Option<String> {
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
