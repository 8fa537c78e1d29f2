//! Where a batch stands, read from its ledger: items per phase and the credits (what
//! `batch status` prints and the bindings' `status()` return).

use removebgvideo_ledger::{ItemPhase, Ledger, LedgerError};
use serde::Serialize;
use serde_json::{Map, Value, json};

/// Credits of a batch's items.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Credits {
    pub estimated: f64,
    pub reserved: f64,
    pub charged: f64,
}

/// A batch's standing.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Status {
    pub batch: String,
    pub total: u64,
    /// Items per phase, every phase named (0 when none).
    pub phases: Map<String, Value>,
    pub credits: Credits,
    /// Each worker (each run, on a SQLite file) that wrote to the batch, first seen first.
    pub workers: Vec<WorkerShare>,
}

/// One worker's share of a batch, from the log and the leases.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct WorkerShare {
    /// `host:pid:tag`.
    pub worker: String,
    /// Items it brought to an end (done, failed, unknown, error).
    pub finished: u64,
    /// Items it took over from a worker whose lease lapsed.
    pub takeovers: u64,
    /// Events it wrote.
    pub events: u64,
    /// Items it holds now (live leases).
    pub leases: u64,
}

/// The status of `batch`.
pub fn status(ledger: &Ledger, batch: &str) -> Result<Status, LedgerError> {
    let counts = ledger.counts(batch)?;
    let items = ledger.items(batch)?;
    let workers = shares(ledger, batch)?;
    // 0.0 + : an empty f64 sum is -0.0.
    let sum = |pick: fn(&removebgvideo_ledger::Item) -> Option<f64>| -> f64 {
        0.0 + items.iter().filter_map(pick).sum::<f64>()
    };
    Ok(Status {
        batch: batch.to_owned(),
        total: counts.total,
        phases: ItemPhase::ALL
            .iter()
            .map(|phase| (phase.as_str().to_owned(), json!(counts.of(*phase))))
            .collect(),
        credits: Credits {
            estimated: sum(|i| i.credits_estimated),
            reserved: sum(|i| i.credits_reserved),
            charged: sum(|i| i.credits_charged),
        },
        workers,
    })
}

/// Each worker's share: counted from the whole log (every event names its worker), with the
/// leases held now.
fn shares(ledger: &Ledger, batch: &str) -> Result<Vec<WorkerShare>, LedgerError> {
    let mut shares: Vec<WorkerShare> = Vec::new();
    let mut index: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    let mut share_of = |worker: &str, shares: &mut Vec<WorkerShare>| -> usize {
        *index.entry(worker.to_owned()).or_insert_with(|| {
            shares.push(WorkerShare {
                worker: worker.to_owned(),
                ..WorkerShare::default()
            });
            shares.len() - 1
        })
    };
    for (_, event) in ledger.batch_events(batch)? {
        // Events older than schema 5 name no worker.
        let Some(worker) = event.worker.as_deref() else {
            continue;
        };
        let at = share_of(worker, &mut shares);
        let share = &mut shares[at];
        share.events += 1;
        if event.kind == "claimed" {
            share.takeovers += 1;
        }
        let ends = event.phase_to.is_some_and(ItemPhase::is_final)
            && event.phase_from.is_some_and(|from| !from.is_final());
        if ends {
            share.finished += 1;
        }
    }
    for lease in ledger.leases(batch, crate::runner::now())? {
        let at = share_of(&lease.worker, &mut shares);
        shares[at].leases += 1;
    }
    Ok(shares)
}

impl Status {
    /// Lines for people.
    pub fn human(&self) -> String {
        let mut out = format!("batch {}: {} items\n", self.batch, self.total);
        for (phase, n) in &self.phases {
            if n.as_u64() != Some(0) {
                out.push_str(&format!("  {phase:<12} {n}\n"));
            }
        }
        out.push_str(&format!(
            "  credits: {} estimated, {} reserved, {} charged",
            self.credits.estimated, self.credits.reserved, self.credits.charged
        ));
        for share in &self.workers {
            out.push_str(&format!(
                "\n  worker {}: {} finished, {} taken over, {} held now, {} events",
                share.worker, share.finished, share.takeovers, share.leases, share.events
            ));
        }
        out
    }
}
