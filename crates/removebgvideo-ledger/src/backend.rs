//! What a ledger needs of its database: the statements the ledger's rules are written in,
//! once per engine. SQLite (a file, one process) and PostgreSQL (a server, any number of
//! workers) answer the same calls with the same rows; the rules themselves (the lifecycle,
//! intents, steps) live in `ledger` and `writer`, never here.

use std::fmt;
use std::time::Duration;

use removebgvideo_core::Timestamp;

use crate::LedgerError;
use crate::item::{EventRecord, Item, NewItem};
use crate::ledger::NewEvent;

/// One worker's hold on an item, as `batch status` shows it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Lease {
    pub key: String,
    /// The worker that holds it (`host:pid:tag`).
    pub worker: String,
    /// Unix milliseconds (on the database's clock) when it lapses unless renewed.
    pub until: u64,
}

/// One API key's shared rate gate as a worker reads it (see `Ledger::sync_rate_gate`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct RateGateRow {
    /// How long every worker of the key still pauses (zero once the pause is over).
    pub pause_left: Duration,
    /// 429s recorded so far, by every worker of the key.
    pub limited: u64,
    /// Workers that used the gate within the last [`GATE_WORKER_SEEN`] (this one included).
    pub workers: u32,
}

/// A worker counts towards a key's shared ceiling this long after its last sync.
pub const GATE_WORKER_SEEN: Duration = Duration::from_secs(3);

/// A worker's row in `rate_gate_workers` is deleted this long after its last sync (by any
/// worker's sync of the key): workers come and go, and the table must not grow with them.
pub const GATE_WORKER_FORGOTTEN: Duration = Duration::from_secs(600);

/// A batch's credit budget, checked by a write that reserves credits.
#[derive(Clone, Copy, Debug)]
pub(crate) struct BudgetLimit<'a> {
    pub batch: &'a str,
    pub limit: f64,
}

impl BudgetLimit<'_> {
    /// The check of a write: `others` is what the batch's items that it does not write
    /// commit, as the database has them now.
    pub(crate) fn check(&self, others: f64, rows: &[(&Item, i64)]) -> Result<(), LedgerError> {
        let written: f64 = rows.iter().map(|(item, _)| item.credits_committed()).sum();
        if others + written > self.limit + 1e-9 {
            return Err(LedgerError::OverBudget {
                committed: others,
                limit: self.limit,
            });
        }
        Ok(())
    }
}

/// The statements of a ledger (see the module doc). Reads take `&self`, writes `&mut self`;
/// every write is one transaction, all or nothing.
pub(crate) trait Backend: Send + fmt::Debug {
    /// The schema version the database is at.
    fn schema_version(&self) -> Result<i64, LedgerError>;

    /// Adds a batch's items (see `Ledger::add_items`; their keys are distinct); returns how
    /// many were new.
    fn add_items(
        &mut self,
        batch: &str,
        source: &str,
        items: &[NewItem],
        now: Timestamp,
        worker: &str,
    ) -> Result<usize, LedgerError>;

    /// Writes each row whole where the database still has it at the revision it was read at
    /// (and no other worker holds its lease), then appends the events, in one transaction.
    /// A row that moved on fails the whole write with `Conflict`. With a `budget`, the
    /// transaction first takes the batch's budget lock (reservations of all workers go one
    /// at a time) and sums what the batch's items commit, the written rows as they will be:
    /// past the limit, nothing is written (`OverBudget`).
    fn write_steps(
        &mut self,
        rows: &[(&Item, i64)],
        events: &[NewEvent<'_>],
        worker: &str,
        budget: Option<&BudgetLimit<'_>>,
    ) -> Result<(), LedgerError>;

    fn find_item(&self, batch: &str, key: &str) -> Result<Option<Item>, LedgerError>;

    /// Every item of a batch, in manifest order.
    fn items(&self, batch: &str) -> Result<Vec<Item>, LedgerError>;

    /// The log of a batch (of one item with `key`), in order, each event with its item's key.
    fn events(
        &self,
        batch: &str,
        key: Option<&str>,
    ) -> Result<Vec<(String, EventRecord)>, LedgerError>;

    /// Items per stored phase name.
    fn phase_counts(&self, batch: &str) -> Result<Vec<(String, u64)>, LedgerError>;

    /// Every batch, oldest first.
    fn batches(&self) -> Result<Vec<String>, LedgerError>;

    /// The newest batch read from `source`.
    fn batch_of_source(&self, source: &str) -> Result<Option<String>, LedgerError>;

    /// The batch read from `source`, or else `proposed`, recorded for it now: one atomic step,
    /// so that workers loading the same manifest at once agree on one batch.
    fn adopt_batch(
        &mut self,
        source: &str,
        proposed: &str,
        now: Timestamp,
    ) -> Result<String, LedgerError>;

    /// Whether other processes may work on the same batches at once (a server ledger).
    fn shared(&self) -> bool {
        false
    }

    /// The batch's `idempotency` column.
    fn idempotency(&self, batch: &str) -> Result<Option<String>, LedgerError>;

    fn set_idempotency(&mut self, batch: &str, value: &str) -> Result<(), LedgerError>;

    /// Leases up to `limit` items of the batch that are not final and that no other worker
    /// holds (or whose holder's lease lapsed), in manifest order, for `lease`; items this
    /// worker holds already are renewed and returned too. A takeover from a lapsed holder
    /// is logged (`claimed`, with the holder it replaced). Returns the items as they are.
    fn claim(
        &mut self,
        batch: &str,
        worker: &str,
        limit: usize,
        lease: Duration,
        now: Timestamp,
    ) -> Result<Vec<Item>, LedgerError>;

    /// Extends every lease the worker holds on the batch; returns how many it holds.
    fn renew(
        &mut self,
        batch: &str,
        worker: &str,
        lease: Duration,
        now: Timestamp,
    ) -> Result<u64, LedgerError>;

    /// Gives up the worker's leases on the batch's `keys` (every one of them with `None`).
    fn release(
        &mut self,
        batch: &str,
        worker: &str,
        keys: Option<&[String]>,
    ) -> Result<u64, LedgerError>;

    /// How many items of the batch need more work and are not `worker`'s: held by another
    /// worker (a lapsed lease included) or by none. Drafts the budget holds back are left
    /// out: they wait for credits, not for a worker.
    fn unfinished_elsewhere(&self, batch: &str, worker: &str) -> Result<u64, LedgerError>;

    /// The leases held on the batch now (lapsed ones left out).
    fn leases(&self, batch: &str, now: Timestamp) -> Result<Vec<Lease>, LedgerError>;

    /// Records a 429 this worker got on the key `key_hash` (`limited`: the pause it asked for,
    /// from now) and that the worker uses the key's gate now; returns the gate as every worker
    /// left it.
    fn sync_rate_gate(
        &mut self,
        key_hash: &str,
        worker: &str,
        limited: Option<Duration>,
        now: Timestamp,
    ) -> Result<RateGateRow, LedgerError>;

    /// CPU time of the backend's own helper threads so far (SQLite's WAL checkpoints).
    fn helper_cpu(&self) -> Duration {
        Duration::ZERO
    }
}

/// The gate row a sync read (`paused_until` and `limited`, if the key has one) with
/// the count of workers, at `now` (all Unix milliseconds on the database's clock).
pub(crate) fn gate_row(gate: Option<(i64, i64)>, workers: i64, now: i64) -> RateGateRow {
    let (paused_until, limited) = gate.unwrap_or((0, 0));
    RateGateRow {
        pause_left: Duration::from_millis(u64::try_from(paused_until - now).unwrap_or(0)),
        limited: u64::try_from(limited).unwrap_or(0),
        workers: u32::try_from(workers).unwrap_or(u32::MAX).max(1),
    }
}

/// Unix milliseconds as the databases store them.
pub(crate) fn millis(at: Timestamp) -> i64 {
    i64::try_from(at.unix_millis()).unwrap_or(i64::MAX)
}

/// A lease's length in milliseconds.
pub(crate) fn lease_millis(lease: Duration) -> i64 {
    i64::try_from(lease.as_millis()).unwrap_or(i64::MAX)
}
