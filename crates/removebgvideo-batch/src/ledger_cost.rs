//! The runner's hold on the ledger, timed: every read and every commit, so that a run can say
//! what the ledger cost it (per transition at p50 and p99, and in all) next to its CPU time.
//! An `Instant` pair per call is tens of nanoseconds against tens of microseconds of SQLite.

use std::time::{Duration, Instant};

use removebgvideo_core::Timestamp;
use removebgvideo_core::state::TransitionRecord;
use removebgvideo_ledger::{Counts, Item, ItemPhase, Ledger, LedgerError, Step};
use serde::Serialize;

/// What the ledger cost a run.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct LedgerCost {
    /// Transactions committed (a transition, an intent, an event).
    pub commits: u64,
    /// Per commit, in microseconds.
    pub commit_p50_us: f64,
    pub commit_p99_us: f64,
    pub commit_max_us: f64,
    /// Reads (an item before a step, the counts for progress).
    pub reads: u64,
    /// Every ledger call of the run, in milliseconds (commits and reads).
    pub total_ms: f64,
    /// Of which reads.
    pub reads_ms: f64,
}

pub(crate) struct TimedLedger<'a> {
    ledger: &'a mut Ledger,
    commits: Vec<u32>,
    reads: u64,
    total: Duration,
    reading: Duration,
}

impl<'a> TimedLedger<'a> {
    pub(crate) fn new(ledger: &'a mut Ledger) -> TimedLedger<'a> {
        TimedLedger {
            ledger,
            commits: Vec::new(),
            reads: 0,
            total: Duration::ZERO,
            reading: Duration::ZERO,
        }
    }

    fn read<T>(&mut self, work: impl FnOnce(&Ledger) -> T) -> T {
        let started = Instant::now();
        let value = work(self.ledger);
        let took = started.elapsed();
        self.total += took;
        self.reading += took;
        self.reads += 1;
        value
    }

    fn commit<T>(&mut self, work: impl FnOnce(&mut Ledger) -> T) -> T {
        let started = Instant::now();
        let value = work(self.ledger);
        let took = started.elapsed();
        self.total += took;
        self.commits
            .push(u32::try_from(took.as_micros()).unwrap_or(u32::MAX));
        value
    }

    pub(crate) fn item(&mut self, batch: &str, key: &str) -> Result<Item, LedgerError> {
        self.read(|l| l.item(batch, key))
    }

    pub(crate) fn items(&mut self, batch: &str) -> Result<Vec<Item>, LedgerError> {
        self.read(|l| l.items(batch))
    }

    pub(crate) fn counts(&mut self, batch: &str) -> Result<Counts, LedgerError> {
        self.read(|l| l.counts(batch))
    }

    pub(crate) fn record(
        &mut self,
        batch: &str,
        key: &str,
        step: &Step,
        now: Timestamp,
    ) -> Result<(), LedgerError> {
        self.commit(|l| l.record(batch, key, step, now))
    }

    pub(crate) fn begin_create(
        &mut self,
        batch: &str,
        key: &str,
        now: Timestamp,
    ) -> Result<String, LedgerError> {
        self.commit(|l| l.begin_create(batch, key, now))
    }

    pub(crate) fn record_status(
        &mut self,
        batch: &str,
        key: &str,
        record: &TransitionRecord,
        phase: Option<ItemPhase>,
    ) -> Result<bool, LedgerError> {
        self.commit(|l| l.record_status(batch, key, record, phase))
    }

    pub(crate) fn set_keys_honoured(
        &mut self,
        batch: &str,
        honoured: bool,
    ) -> Result<(), LedgerError> {
        self.commit(|l| l.set_keys_honoured(batch, honoured))
    }

    /// The cost so far.
    pub(crate) fn cost(&self) -> LedgerCost {
        let mut sorted = self.commits.clone();
        sorted.sort_unstable();
        let at = |p: f64| -> f64 {
            if sorted.is_empty() {
                return 0.0;
            }
            let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
            f64::from(sorted[rank - 1])
        };
        LedgerCost {
            commits: sorted.len() as u64,
            commit_p50_us: at(0.5),
            commit_p99_us: at(0.99),
            commit_max_us: sorted.last().copied().map_or(0.0, f64::from),
            reads: self.reads,
            total_ms: self.total.as_secs_f64() * 1000.0,
            reads_ms: self.reading.as_secs_f64() * 1000.0,
        }
    }
}
