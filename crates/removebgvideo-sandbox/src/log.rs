//! The request log: one JSON record per request, kept in memory and optionally on stderr.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;

/// Records kept in memory; older ones are dropped.
const KEPT: usize = 20_000;

/// One request as the sandbox saw it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RequestRecord {
    /// When it arrived (RFC 3339, wall clock).
    pub at: String,
    /// Its request id.
    pub request_id: String,
    /// Method.
    pub method: String,
    /// Path and query.
    pub path: String,
    /// The status answered; `None` when the connection was dropped.
    pub status: Option<u16>,
    /// The first characters of the key, never the key.
    pub key_prefix: Option<String>,
    /// The Idempotency-Key sent.
    pub idempotency_key: Option<String>,
    /// Whether a stored answer was replayed.
    pub replayed: bool,
    /// Faults applied.
    pub fault: Option<String>,
    /// Time to answer, in milliseconds.
    pub latency_ms: u64,
}

/// The shared log.
#[derive(Debug)]
pub struct RequestLog {
    records: Mutex<VecDeque<RequestRecord>>,
    // Counted apart from the kept records, which are capped: a benchmark's request count
    // must not stop at the cap.
    total: AtomicU64,
    to_stderr: bool,
}

impl RequestLog {
    /// A log that also prints each record when `to_stderr`.
    pub fn new(to_stderr: bool) -> Self {
        RequestLog {
            records: Mutex::new(VecDeque::new()),
            total: AtomicU64::new(0),
            to_stderr,
        }
    }

    /// Adds a record.
    pub fn push(&self, record: RequestRecord) {
        self.total.fetch_add(1, Ordering::Relaxed);
        if self.to_stderr {
            eprintln!("{}", serde_json::to_string(&record).expect("JSON"));
        }
        let mut records = self.records.lock().expect("request log");
        if records.len() == KEPT {
            records.pop_front();
        }
        records.push_back(record);
    }

    /// Requests seen since the start, kept or not.
    pub fn total(&self) -> u64 {
        self.total.load(Ordering::Relaxed)
    }

    /// Every kept record, oldest first.
    pub fn snapshot(&self) -> Vec<RequestRecord> {
        self.records
            .lock()
            .expect("request log")
            .iter()
            .cloned()
            .collect()
    }
}

/// A key shown in logs: enough to tell keys apart, never enough to use one.
pub fn key_prefix(key: &str) -> String {
    let shown: String = key.chars().take(8).collect();
    format!("{shown}…")
}
