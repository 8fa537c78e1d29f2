//! The runner's hold on the ledger, timed: every read, every step and every group commit, so
//! that a run can say what the ledger cost it (per transition at p50 and p99, and in all) next
//! to its CPU time. A transition's cost is its own step plus its share of the commit of its
//! group. An `Instant` pair per call is tens of nanoseconds against microseconds of SQLite.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cpu_time::ThreadTime;

use removebgvideo_core::Timestamp;
use removebgvideo_core::state::TransitionRecord;
use removebgvideo_ledger::{
    Counts, Item, ItemPhase, Ledger, LedgerError, RateGateRow, Reservation, Step, Writer,
};
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
    /// The CPU time they took, in milliseconds: the coordinator's own clock around each read,
    /// step and commit (the reads of that clock included), and the WAL checkpoints of the
    /// ledger's helper thread.
    pub cpu_ms: f64,
    /// Of which reads.
    pub reads_ms: f64,
    /// Of which WAL checkpoints (the ledger's helper thread), in milliseconds of CPU time.
    pub checkpoints_ms: f64,
    /// Claims made (a shared ledger: this worker asking for more items).
    pub claims: u64,
}

pub(crate) struct TimedLedger<'a> {
    ledger: &'a mut Ledger,
    /// The batch's items, kept up to date by each step, and the steps not yet written. Only
    /// this runner writes the batch (a second process on one SQLite batch is refused at its
    /// commit; PostgreSQL is for that).
    writer: Writer,
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
    /// Whether the writer holds every item of the batch as the file has it (read whole at the
    /// start; no failed group since).
    holds_all: bool,
    /// The checkpoints' CPU time when the run began.
    checkpoints_before: Duration,
    /// Items per phase, counted from the items read at the start and then kept up to date
    /// from each step's phase change (counting them in SQL scans the whole batch:
    /// milliseconds at 10,000 items).
    counts: Option<HashMap<ItemPhase, u64>>,
    /// Other workers write the batch too (a shared ledger): counts are read, not kept.
    shared: bool,
    claims: u64,
}

impl<'a> TimedLedger<'a> {
    pub(crate) fn new(ledger: &'a mut Ledger, batch: &str) -> TimedLedger<'a> {
        TimedLedger {
            holds_all: false,
            checkpoints_before: ledger.checkpoint_cpu(),
            writer: Writer::new(batch),
            commits: Vec::new(),
            group: Vec::new(),
            groups: 0,
            group_commit_max: Duration::ZERO,
            reads: 0,
            total: Duration::ZERO,
            reading: Duration::ZERO,
            cpu: Duration::ZERO,
            counts: None,
            shared: ledger.is_shared(),
            claims: 0,
            ledger,
        }
    }

    /// Whether other workers share the batch (see [`Ledger::is_shared`]).
    pub(crate) fn is_shared(&self) -> bool {
        self.shared
    }

    /// A write of the ledger's own (a claim, a heartbeat), timed like a read.
    fn own_write<T>(&mut self, work: impl FnOnce(&mut Ledger, &str) -> T) -> T {
        let cpu = ThreadTime::now();
        let started = Instant::now();
        let value = work(self.ledger, self.writer.batch());
        let took = started.elapsed();
        self.cpu += cpu.elapsed();
        self.total += took;
        self.reading += took;
        self.reads += 1;
        value
    }

    /// Claims up to `limit` items of the batch for this worker, for `lease`, and holds them
    /// for the steps to come. Call between groups (nothing staged): a claimed copy replaces
    /// the one held.
    pub(crate) fn claim(
        &mut self,
        limit: usize,
        lease: Duration,
        now: Timestamp,
    ) -> Result<Vec<Arc<Item>>, LedgerError> {
        debug_assert_eq!(self.writer.pending(), 0, "a claim between groups");
        self.claims += 1;
        let claimed: Vec<Arc<Item>> = self
            .own_write(|ledger, batch| ledger.claim(batch, limit, lease, now))?
            .into_iter()
            .map(Arc::new)
            .collect();
        self.writer.hold(claimed.iter().cloned());
        Ok(claimed)
    }

    /// The heartbeat: renews this worker's leases.
    pub(crate) fn renew_leases(
        &mut self,
        lease: Duration,
        now: Timestamp,
    ) -> Result<u64, LedgerError> {
        self.own_write(|ledger, batch| ledger.renew_leases(batch, lease, now))
    }

    /// Gives up the leases this worker holds in the ledger on items it does not hold here (a
    /// claim whose answer a lost connection took: the items are leased to it, unknown to it).
    /// Syncs this worker with the shared rate gate of the key `key_hash` (see
    /// [`Ledger::sync_rate_gate`]).
    pub(crate) fn sync_rate_gate(
        &mut self,
        key_hash: &str,
        limited: Option<Duration>,
    ) -> Result<RateGateRow, LedgerError> {
        self.own_write(|ledger, _| ledger.sync_rate_gate(key_hash, limited, crate::runner::now()))
    }

    pub(crate) fn release_unknown_leases(&mut self, now: Timestamp) -> Result<u64, LedgerError> {
        let unknown: Vec<String> = self
            .read(|writer, ledger| ledger.leases(writer.batch(), now))?
            .into_iter()
            .filter(|lease| lease.worker == self.ledger.worker() && !self.writer.holds(&lease.key))
            .map(|lease| lease.key)
            .collect();
        if unknown.is_empty() {
            return Ok(0);
        }
        self.own_write(|ledger, batch| ledger.release_leases(batch, Some(&unknown)))
    }

    /// Items that need more work and are not this worker's.
    pub(crate) fn unfinished_elsewhere(&mut self) -> Result<u64, LedgerError> {
        self.read(|writer, ledger| ledger.unfinished_elsewhere(writer.batch()))
    }

    /// Gives up this worker's leases, so that others may take the items at once.
    pub(crate) fn release_leases(&mut self) -> Result<u64, LedgerError> {
        self.own_write(|ledger, batch| ledger.release_leases(batch, None))
    }

    fn read<T>(&mut self, work: impl FnOnce(&mut Writer, &Ledger) -> T) -> T {
        let cpu = ThreadTime::now();
        let started = Instant::now();
        let value = work(&mut self.writer, self.ledger);
        let took = started.elapsed();
        self.cpu += cpu.elapsed();
        self.total += took;
        self.reading += took;
        self.reads += 1;
        value
    }

    /// A step, staged in the writer: its cost is its own time now and its share of the
    /// group's commit. Its CPU time is read from the thread's clock (about 0.2 us a read here,
    /// against a few us a step, and counted in the step's cost): the wall clock would count
    /// the time the coordinator waits for a core while the HTTP workers have both.
    fn step<T>(&mut self, work: impl FnOnce(&mut Writer, &Ledger) -> T) -> T {
        let cpu = ThreadTime::now();
        let started = Instant::now();
        let value = work(&mut self.writer, self.ledger);
        let took = started.elapsed();
        self.cpu += cpu.elapsed();
        self.total += took;
        self.group.push(took);
        value
    }

    /// Drops the open group's steps (one failed: none of the group is kept).
    pub(crate) fn rollback_group(&mut self) -> Result<(), LedgerError> {
        self.group.clear();
        self.writer.discard();
        self.holds_all = false;
        // The kept counts may include steps that are now undone.
        self.counts = None;
        Ok(())
    }

    /// Writes the steps taken since the last commit (a group) in one transaction; each of them
    /// is charged an equal share.
    pub(crate) fn commit_group(&mut self) -> Result<(), LedgerError> {
        let cpu = ThreadTime::now();
        let started = Instant::now();
        let committed = self.writer.commit(self.ledger);
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
        if committed.is_err() {
            self.counts = None;
            self.holds_all = false;
        }
        committed
    }

    /// A step that reserves credits, written at once within the batch's budget (see
    /// [`Writer::reserve`]): the open group is committed first. Timed as a group of its own.
    pub(crate) fn reserve(
        &mut self,
        key: &str,
        step: Step,
        limit: f64,
        now: Timestamp,
    ) -> Result<Reservation, LedgerError> {
        self.commit_group()?;
        let to = step.phase;
        let before = self.item_phase(key)?;
        let cpu = ThreadTime::now();
        let started = Instant::now();
        let reserved = self.writer.reserve(self.ledger, key, step, limit, now);
        let took = started.elapsed();
        self.cpu += cpu.elapsed();
        self.total += took;
        self.groups += 1;
        self.group_commit_max = self.group_commit_max.max(took);
        self.commits
            .push(u32::try_from(took.as_micros()).unwrap_or(u32::MAX));
        match reserved {
            Ok(Reservation::Made) => self.moved(before, to),
            Ok(Reservation::Refused { .. }) => {}
            Err(_) => {
                self.counts = None;
                self.holds_all = false;
            }
        }
        reserved
    }

    /// The item as the ledger has it, with the steps of the open group (a query only the
    /// first time).
    pub(crate) fn item(&mut self, key: &str) -> Result<Arc<Item>, LedgerError> {
        if self.writer.holds(key) {
            return self.writer.item(self.ledger, key).cloned();
        }
        self.read(|writer, ledger| writer.item(ledger, key).cloned())
    }

    /// Every item of the batch, read from the ledger: kept for the steps to come, and
    /// counted per phase. Call before the first step.
    pub(crate) fn load(&mut self) -> Result<Vec<Arc<Item>>, LedgerError> {
        let items: Vec<Arc<Item>> = self
            .read(|writer, ledger| ledger.items(writer.batch()))?
            .into_iter()
            .map(Arc::new)
            .collect();
        let mut counts = HashMap::new();
        for item in &items {
            *counts.entry(item.phase).or_insert(0) += 1;
        }
        self.counts = Some(counts);
        self.writer.hold(items.iter().cloned());
        self.holds_all = true;
        Ok(items)
    }

    /// Every item of the batch, as the file has it (no group open): the writer's copies when
    /// it holds them all, the file's rows otherwise.
    pub(crate) fn items(&mut self) -> Result<Vec<Arc<Item>>, LedgerError> {
        if self.holds_all && self.writer.pending() == 0 {
            return Ok(self.writer.held().into_iter().cloned().collect());
        }
        let items = self.read(|writer, ledger| ledger.items(writer.batch()))?;
        Ok(items.into_iter().map(Arc::new).collect())
    }

    pub(crate) fn counts(&mut self) -> Result<Counts, LedgerError> {
        if self.shared {
            // Other workers move items too: only the database knows.
            return self.read(|writer, ledger| ledger.counts(writer.batch()));
        }
        if self.counts.is_none() {
            let counts = self.read(|writer, ledger| ledger.counts(writer.batch()))?;
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
        key: &str,
        step: Step,
        now: Timestamp,
    ) -> Result<(), LedgerError> {
        let to = step.phase;
        let before = self.step(|writer, ledger| writer.record(ledger, key, step, now))?;
        self.moved(before, to);
        Ok(())
    }

    /// The intent of a create.
    pub(crate) fn begin_create(
        &mut self,
        key: &str,
        now: Timestamp,
    ) -> Result<String, LedgerError> {
        let before = self.item_phase(key)?;
        let idempotency_key = self.step(|writer, ledger| writer.begin_create(ledger, key, now))?;
        self.moved(before, Some(ItemPhase::Creating));
        Ok(idempotency_key)
    }

    /// A status change.
    pub(crate) fn record_status(
        &mut self,
        key: &str,
        record: &TransitionRecord,
        phase: Option<ItemPhase>,
    ) -> Result<bool, LedgerError> {
        let before = self.item_phase(key)?;
        let recorded =
            self.step(|writer, ledger| writer.record_status(ledger, key, record, phase))?;
        if recorded {
            self.moved(before, phase);
        }
        Ok(recorded)
    }

    fn item_phase(&mut self, key: &str) -> Result<ItemPhase, LedgerError> {
        if self.writer.holds(key) {
            return Ok(self.writer.item(self.ledger, key)?.phase);
        }
        self.read(|writer, ledger| Ok(writer.item(ledger, key)?.phase))
    }

    /// Written at once, in a transaction of its own (what it records is true whether or not
    /// the open group commits).
    pub(crate) fn set_keys_honoured(&mut self, honoured: bool) -> Result<(), LedgerError> {
        let cpu = ThreadTime::now();
        let started = Instant::now();
        let written = self.ledger.set_keys_honoured(self.writer.batch(), honoured);
        self.total += started.elapsed();
        self.cpu += cpu.elapsed();
        written
    }

    /// The cost so far.
    pub(crate) fn cost(&self) -> LedgerCost {
        let checkpoints = self.ledger.checkpoint_cpu() - self.checkpoints_before;
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
            cpu_ms: (self.cpu + checkpoints).as_secs_f64() * 1000.0,
            checkpoints_ms: checkpoints.as_secs_f64() * 1000.0,
            claims: self.claims,
        }
    }
}
