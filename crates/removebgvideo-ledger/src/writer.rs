//! The writer of one batch: the batch's items held in memory by the process that runs it,
//! each step applied to its item at once (the lifecycle checked, the item's next read served
//! from memory) and written with the others at the next commit, in one transaction.
//!
//! A runner takes a step per answer, between its other work, and commits the answers of a
//! window together; nothing it sends depends on a step before that commit. Writing a group's
//! rows and events one after another at its commit, rather than one at a time between the
//! runner's other work, finds SQLite's pages and code still in the CPU's caches: each step
//! costs a fraction of what it did, and a row that took several steps is written once.

use std::sync::Arc;

use removebgvideo_core::Timestamp;
use removebgvideo_core::state::{TransitionRecord, Verdict};
use rustc_hash::FxHashMap;

use crate::LedgerError;
use crate::backend::BudgetLimit;
use crate::item::{Item, ItemPhase};
use crate::ledger::{self, Ledger};
use crate::step::Step;

/// What became of a [`Writer::reserve`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Reservation {
    /// Written: the batch stays within its budget.
    Made,
    /// Not written: the batch's other items commit `committed` credits already.
    Refused { committed: f64 },
}

/// A batch's items and the steps not yet written (see the module doc). Only one writer may
/// run a batch at a time: a row another connection changed since it was read makes the
/// commit fail ([`LedgerError::Conflict`]), so that neither overwrites the other.
#[derive(Debug)]
pub struct Writer {
    batch: String,
    /// Shared with the runner's reads, which clone no item: a step copies an item only while
    /// a reader still holds the copy it changes. Keys are hashed several times per step: a
    /// fast hash, as the keys come from the batch's own manifest, not from the network.
    items: FxHashMap<String, Arc<Item>>,
    /// The items changed since the last commit, with the revision the file has each at.
    changed: FxHashMap<String, i64>,
    /// The events of those steps, in order.
    events: Vec<StagedEvent>,
}

#[derive(Debug)]
struct StagedEvent {
    item_id: i64,
    at: Timestamp,
    from: ItemPhase,
    step: Step,
}

impl Writer {
    pub fn new(batch: &str) -> Writer {
        Writer {
            batch: batch.to_owned(),
            items: FxHashMap::default(),
            changed: FxHashMap::default(),
            events: Vec::new(),
        }
    }

    /// The batch it writes.
    pub fn batch(&self) -> &str {
        &self.batch
    }

    /// Keeps items just read from the ledger (a runner's first read of its batch), so that no
    /// step needs a read of its own.
    pub fn hold(&mut self, items: impl IntoIterator<Item = Arc<Item>>) {
        for item in items {
            self.items.insert(item.key.clone(), item);
        }
    }

    /// The items it holds, in manifest order, as its steps left them (written or not).
    pub fn held(&self) -> Vec<&Arc<Item>> {
        let mut items: Vec<&Arc<Item>> = self.items.values().collect();
        items.sort_unstable_by_key(|item| item.id);
        items
    }

    /// Whether it holds the item (asking for it needs no read).
    pub fn holds(&self, key: &str) -> bool {
        self.items.contains_key(key)
    }

    /// The item as its steps left it (read from the ledger the first time it is asked for).
    pub fn item(&mut self, ledger: &Ledger, key: &str) -> Result<&Arc<Item>, LedgerError> {
        if !self.items.contains_key(key) {
            let item = ledger.item(&self.batch, key)?;
            self.items.insert(key.to_owned(), Arc::new(item));
        }
        Ok(&self.items[key])
    }

    /// Takes a step of an item (see [`Ledger::record`]): checked and applied now, written at
    /// the next [`Writer::commit`]. Returns the phase the item was in; a step the lifecycle
    /// refuses changes nothing.
    pub fn record(
        &mut self,
        ledger: &Ledger,
        key: &str,
        step: Step,
        now: Timestamp,
    ) -> Result<ItemPhase, LedgerError> {
        let (item, noted) = self.changing(ledger, key)?;
        let advanced = ledger::advance(item, &step, now);
        let item_id = item.id;
        let before = self.unless_refused(key, noted, advanced)?;
        self.events.push(StagedEvent {
            item_id,
            at: now,
            from: before,
            step,
        });
        Ok(before)
    }

    /// Records the intent to create the item's job (see [`Ledger::begin_create`]) and returns
    /// the idempotency key to send once the intent is committed.
    pub fn begin_create(
        &mut self,
        ledger: &Ledger,
        key: &str,
        now: Timestamp,
    ) -> Result<String, LedgerError> {
        let batch = self.batch.clone();
        let (item, noted) = self.changing(ledger, key)?;
        let intended = ledger::intend(&batch, item, now);
        let item_id = item.id;
        let (before, idempotency_key) = self.unless_refused(key, noted, intended)?;
        self.events.push(StagedEvent {
            item_id,
            at: now,
            from: before,
            step: ledger::intent_event(&idempotency_key, before),
        });
        Ok(idempotency_key)
    }

    /// Records a job status change (see [`Ledger::record_status`]); returns whether it was one.
    pub fn record_status(
        &mut self,
        ledger: &Ledger,
        key: &str,
        record: &TransitionRecord,
        phase: Option<ItemPhase>,
    ) -> Result<bool, LedgerError> {
        if record.verdict == Verdict::Unchanged {
            return Ok(false);
        }
        self.record(ledger, key, ledger::status_step(record, phase), record.at)?;
        Ok(true)
    }

    /// Steps taken and not yet written.
    pub fn pending(&self) -> usize {
        self.events.len()
    }

    /// Writes every step taken since the last commit, all or none, in one transaction: each
    /// changed row once, whole, then the events in order. On an error none is written, and
    /// the items those steps changed are read again when next asked for.
    pub fn commit(&mut self, ledger: &mut Ledger) -> Result<(), LedgerError> {
        self.commit_within(ledger, None)
    }

    /// Takes a step that reserves credits for the item (`step.credits_reserved`) and writes
    /// it at once, in a transaction of its own that first sums what every item of the batch
    /// commits, under a lock that makes every worker's reservations on the batch take turns:
    /// the step is written only when the batch stays within `limit` credits. This is what
    /// holds a budget shared by many workers; the steps staged before it are committed first.
    /// Returns [`Reservation::Refused`] (nothing written) when it would pass the limit.
    pub fn reserve(
        &mut self,
        ledger: &mut Ledger,
        key: &str,
        step: Step,
        limit: f64,
        now: Timestamp,
    ) -> Result<Reservation, LedgerError> {
        self.commit(ledger)?;
        self.record(ledger, key, step, now)?;
        let batch = self.batch.clone();
        let budget = BudgetLimit {
            batch: &batch,
            limit,
        };
        match self.commit_within(ledger, Some(&budget)) {
            Ok(()) => Ok(Reservation::Made),
            Err(LedgerError::OverBudget { committed, .. }) => {
                Ok(Reservation::Refused { committed })
            }
            Err(error) => Err(error),
        }
    }

    fn commit_within(
        &mut self,
        ledger: &mut Ledger,
        budget: Option<&BudgetLimit<'_>>,
    ) -> Result<(), LedgerError> {
        if self.events.is_empty() {
            self.changed.clear();
            return Ok(());
        }
        let mut rows: Vec<(&Item, i64)> = self
            .changed
            .iter()
            .map(|(key, read_at)| (&*self.items[key], *read_at))
            .collect();
        // In row order: neighbouring rows share pages.
        rows.sort_unstable_by_key(|(item, _)| item.id);
        let events: Vec<ledger::NewEvent<'_>> = self
            .events
            .iter()
            .map(|event| ledger::NewEvent {
                item_id: event.item_id,
                at: event.at,
                kind: event.step.kind,
                from: Some(event.from),
                to: event.step.phase,
                step: &event.step,
            })
            .collect();
        let written = ledger.write_steps(&rows, &events, budget);
        drop(events);
        match written {
            Ok(()) => {
                self.changed.clear();
                self.events.clear();
                Ok(())
            }
            Err(error) => {
                self.discard();
                Err(error)
            }
        }
    }

    /// Drops the steps not yet written; the items they changed are read again when next
    /// asked for.
    pub fn discard(&mut self) {
        for (key, _) in self.changed.drain() {
            self.items.remove(&key);
        }
        self.events.clear();
    }

    /// The held item a step is about to change, noted as changed with the revision it was
    /// read at; and whether this step noted it (the group's first step of the item).
    fn changing(&mut self, ledger: &Ledger, key: &str) -> Result<(&mut Item, bool), LedgerError> {
        let revision = self.item(ledger, key)?.revision;
        let noted = !self.changed.contains_key(key);
        if noted {
            self.changed.insert(key.to_owned(), revision);
        }
        let item = self.items.get_mut(key).expect("held above");
        Ok((Arc::make_mut(item), noted))
    }

    /// A step's outcome; a refused step (which changed nothing) leaves its item unnoted, so
    /// the commit neither rewrites its row nor fails over it.
    fn unless_refused<T>(
        &mut self,
        key: &str,
        noted: bool,
        outcome: Result<T, LedgerError>,
    ) -> Result<T, LedgerError> {
        if outcome.is_err() && noted {
            self.changed.remove(key);
        }
        outcome
    }
}
