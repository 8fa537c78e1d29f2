//! A shared ledger: this worker's rate gate kept in step with every other worker of the same
//! API key, through the ledger's `rate_gates` row. A 429 any worker gets pauses all of them
//! (its `Retry-After`), and a ceiling in requests per second is the key's, split between the
//! workers that use it. The gate's own rules (how a 429 paces it) are the
//! core's [`removebgvideo_core::rate::RateGate`]; this only carries what each worker saw.

use std::time::{Duration, Instant};

use removebgvideo::Client;
use removebgvideo_ledger::LedgerError;
use sha2::{Digest, Sha256};

use crate::ledger_cost::TimedLedger;

/// How often a worker tells the row of its 429s and reads the others': a 429 elsewhere
/// reaches this worker within it, while the bucket it emptied refills.
pub(crate) const SYNC_EVERY: Duration = Duration::from_millis(100);

/// One worker's side of a key's shared gate.
pub(crate) struct SharedGate {
    /// The key, hashed: the ledger never holds it.
    key_hash: String,
    /// The key's ceiling (requests per second), split between its workers.
    ceiling: Option<f64>,
    next_sync: Instant,
    /// The client's count of its own 429s at the last sync.
    own_limited: u64,
    /// The row's count of every worker's 429s at the last sync (none before the first).
    seen_limited: Option<u64>,
}

impl SharedGate {
    /// The gate of `client`'s key; `ceiling` is the key's, for every worker together.
    pub(crate) fn new(client: &Client, ceiling: Option<f64>) -> SharedGate {
        let digest = Sha256::digest(client.settings().api_key.expose().as_bytes());
        let key_hash = digest[..12].iter().map(|b| format!("{b:02x}")).collect();
        SharedGate {
            key_hash,
            ceiling,
            next_sync: Instant::now(),
            own_limited: client.with_rate_gate(|gate, _| gate.rate_limited_count()),
            seen_limited: None,
        }
    }

    /// Tells the row of the 429s this worker got since the last sync, and brings the row's
    /// news to the client's gate: a pause still running, the 429s of the others, this
    /// worker's share of the ceiling. Does nothing before it is due.
    pub(crate) fn sync(
        &mut self,
        client: &Client,
        ledger: &mut TimedLedger<'_>,
    ) -> Result<(), LedgerError> {
        if Instant::now() < self.next_sync {
            return Ok(());
        }
        self.next_sync = Instant::now() + SYNC_EVERY;
        let (own, pause) = client.with_rate_gate(|gate, now| {
            (gate.rate_limited_count(), gate.paused_until().since(now))
        });
        // The row counts one 429 per sync that reports any: what the others add is the rest.
        let reported = own > self.own_limited;
        let row = ledger.sync_rate_gate(&self.key_hash, reported.then_some(pause))?;
        self.own_limited = own;
        let elsewhere = match self.seen_limited {
            Some(seen) => row.limited.saturating_sub(seen + u64::from(reported)),
            // A newcomer takes up a pause that is still running, not the key's history.
            None => u64::from(!row.pause_left.is_zero()),
        };
        self.seen_limited = Some(row.limited);
        let ceiling = self.ceiling;
        client.with_rate_gate(|gate, now| {
            if elsewhere > 0 {
                // The row's clock is the database's: only the pause's length carries over.
                gate.on_limited_elsewhere(now.plus(row.pause_left));
            }
            if let Some(ceiling) = ceiling {
                gate.set_ceiling(Some(ceiling / f64::from(row.workers)));
            }
        });
        Ok(())
    }
}
