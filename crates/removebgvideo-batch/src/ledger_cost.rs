//! The runner's hold on the ledger, timed: every read, every step and every group commit, so
//! that a run can say what the ledger cost it (per transition at p50 and p99, and in all) next
//! to its CPU time. A transition's cost is its own step plus its share of the commit of its
//! group. An `Instant` pair per call is tens of nanoseconds against microseconds of SQLite.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use cpu_time::ThreadTime;

use removebgvideo_core::Timestamp;
use removebgvideo_core::state::TransitionRecord;
use removebgvideo_ledger::{Counts, Item, ItemPhase, Ledger, LedgerError, Step};
use serde::Serialize;

/// What the ledger cost a run.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct LedgerCost {
    /// Steps recorded (a transition, an intent, an event), each written with its event.
    pub commits: u64,
    /// Per step, its share of its group's commit included, in microseconds.
    pub commit_p50_us: f64,
    pub commit_p99_us: f64,
    pub commit_max_us: f64,
    /// Group commits (the steps of answers that arrived together commit at once).
    pub groups: u64,
    /// The longest group commit, in microseconds.
    pub group_commit_max_us: f64,
    /// Reads (an item before a step, the counts for progress).
    pub reads: u64,
    /// Every ledger call of the run, in milliseconds of wall time (commits and reads).
    pub total_ms: f64,
    /// The CPU time the coordinator spent in them, in milliseconds (its thread's own clock).
    pub cpu_ms: f64,
    /// Of which reads.
    pub reads_ms: f64,
}

pub(crate) struct TimedLedger<'a> {
    ledger: &'a mut Ledger,
    /// Each step's cost, in microseconds, once its group committed.
    commits: Vec<u32>,
    /// The steps of the open group.
    group: Vec<Duration>,
    groups: u64,
    group_commit_max: Duration,
    reads: u64,
    total: Duration,
    reading: Duration,
    cpu: Duration,
    /// Items per phase, read once and then kept up to date from each step's phase change
    /// (counting them in SQL scans the whole batch: milliseconds at 10,000 items).
    counts: Option<HashMap<ItemPhase, u64>>,
    /// Items as the ledger has them, by key: each step's update returns its item, so the
    /// runner's reads before its next steps need no query. Only this runner writes the batch
    /// (a second process on one SQLite batch is not supported; PostgreSQL is for that).
    cache: HashMap<String, Item>,
}

impl<'a> TimedLedger<'a> {
    pub(crate) fn new(ledger: &'a mut Ledger) -> TimedLedger<'a> {
        TimedLedger {
            ledger,
            commits: Vec::new(),
            group: Vec::new(),
            groups: 0,
            group_commit_max: Duration::ZERO,
            reads: 0,
            total: Duration::ZERO,
            reading: Duration::ZERO,
            cpu: Duration::ZERO,
            counts: None,
            cache: HashMap::new(),
        }
    }

    fn read<T>(&mut self, work: impl FnOnce(&Ledger) -> T) -> T {
        let cpu = ThreadTime::now();
        let started = Instant::now();
        let value = work(self.ledger);
        let took = started.elapsed();
        self.cpu += cpu.elapsed();
        self.total += took;
        self.reading += took;
        self.reads += 1;
        value
    }

    fn commit<T>(&mut self, work: impl FnOnce(&mut Ledger) -> T) -> T {
        let cpu = ThreadTime::now();
        let started = Instant::now();
        let value = work(self.ledger);
        let took = started.elapsed();
        self.cpu += cpu.elapsed();
        self.total += took;
        self.group.push(took);
        value
    }

    pub(crate) fn begin_group(&mut self) -> Result<(), LedgerError> {
        let cpu = ThreadTime::now();
        let started = Instant::now();
        let begun = self.ledger.begin_group();
        self.total += started.elapsed();
        self.cpu += cpu.elapsed();
        begun
    }

    pub(crate) fn rollback_group(&mut self) -> Result<(), LedgerError> {
        self.group.clear();
        // The kept counts and items may include steps that are now undone.
        self.counts = None;
        self.cache.clear();
        self.ledger.rollback_group()
    }

    /// Commits the group; each of its steps is charged an equal share of the commit.
    pub(crate) fn commit_group(&mut self) -> Result<(), LedgerError> {
        let cpu = ThreadTime::now();
        let started = Instant::now();
        let committed = self.ledger.commit_group();
        let took = started.elapsed();
        self.cpu += cpu.elapsed();
        self.total += took;
        self.groups += 1;
        self.group_commit_max = self.group_commit_max.max(took);
        let steps = self.group.len().max(1) as u32;
        for step in self.group.drain(..) {
            let cost = step + took / steps;
            self.commits
                .push(u32::try_from(cost.as_micros()).unwrap_or(u32::MAX));
        }
        committed
    }

    pub(crate) fn item(&mut self, batch: &str, key: &str) -> Result<Item, LedgerError> {
        if let Some(item) = self.cache.get(key) {
            return Ok(item.clone());
        }
        let item = self.read(|l| l.item(batch, key))?;
        self.cache.insert(key.to_owned(), item.clone());
        Ok(item)
    }

    /// Items just read by the caller, for the cache.
    pub(crate) fn prime(&mut self, items: &[Item]) {
        for item in items {
            self.cache.insert(item.key.clone(), item.clone());
        }
    }

    pub(crate) fn items(&mut self, batch: &str) -> Result<Vec<Item>, LedgerError> {
        self.read(|l| l.items(batch))
    }

    pub(crate) fn counts(&mut self, batch: &str) -> Result<Counts, LedgerError> {
        if self.counts.is_none() {
            let counts = self.read(|l| l.counts(batch))?;
            self.counts = Some(counts.by_phase.into_iter().collect());
        }
        let kept = self.counts.as_ref().expect("read above");
        let by_phase: Vec<(ItemPhase, u64)> = ItemPhase::ALL
            .into_iter()
            .filter_map(|phase| kept.get(&phase).map(|n| (phase, *n)))
            .filter(|(_, n)| *n > 0)
            .collect();
        Ok(Counts {
            total: by_phase.iter().map(|(_, n)| n).sum(),
            by_phase,
        })
    }

    /// Keeps the counts in step with a move.
    fn moved(&mut self, from: ItemPhase, to: Option<ItemPhase>) {
        if let (Some(counts), Some(to)) = (&mut self.counts, to)
            && to != from
        {
            if let Some(n) = counts.get_mut(&from) {
                *n = n.saturating_sub(1);
            }
            *counts.entry(to).or_insert(0) += 1;
        }
    }

    pub(crate) fn record(
        &mut self,
        batch: &str,
        key: &str,
        step: &Step,
        now: Timestamp,
    ) -> Result<(), LedgerError> {
        let recorded = self.commit(|l| l.record(batch, key, step, now))?;
        self.moved(recorded.before, step.phase);
        self.cache.insert(key.to_owned(), recorded.item);
        Ok(())
    }

    /// The intent of a create; `from` is the item's phase before it.
    pub(crate) fn begin_create(
        &mut self,
        batch: &str,
        key: &str,
        from: ItemPhase,
        now: Timestamp,
    ) -> Result<String, LedgerError> {
        let idempotency_key = self.commit(|l| l.begin_create(batch, key, now))?;
        self.moved(from, Some(ItemPhase::Creating));
        self.cache.remove(key);
        Ok(idempotency_key)
    }

    /// A status change; `from` is the item's phase before it.
    pub(crate) fn record_status(
        &mut self,
        batch: &str,
        key: &str,
        record: &TransitionRecord,
        phase: Option<ItemPhase>,
        from: ItemPhase,
    ) -> Result<bool, LedgerError> {
        let recorded = self.commit(|l| l.record_status(batch, key, record, phase))?;
        if recorded {
            self.moved(from, phase);
            self.cache.remove(key);
        }
        Ok(recorded)
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
            groups: self.groups,
            group_commit_max_us: self.group_commit_max.as_secs_f64() * 1e6,
            reads: self.reads,
            total_ms: self.total.as_secs_f64() * 1000.0,
            reads_ms: self.reading.as_secs_f64() * 1000.0,
            cpu_ms: self.cpu.as_secs_f64() * 1000.0,
        }
    }
}
