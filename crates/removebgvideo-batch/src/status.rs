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
}

/// The status of `batch`.
pub fn status(ledger: &Ledger, batch: &str) -> Result<Status, LedgerError> {
    let counts = ledger.counts(batch)?;
    let items = ledger.items(batch)?;
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
    })
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
        out
    }
}
