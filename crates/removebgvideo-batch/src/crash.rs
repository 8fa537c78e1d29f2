//! Crash points for the kill -9 tests: `REMOVEBGVIDEO_BATCH_CRASH=<point>:<n>` ends the process
//! at once (`abort`, as a kill would: no destructor, no flush) the n-th time the runner passes
//! `<point>`. The points are the moments a crash hurts most: after an intent is committed but
//! before its request goes, after an answer arrives but before it is committed, and after an
//! output is renamed into place but before it is recorded. Unset (always, outside tests), a
//! point costs one relaxed load.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

/// The variable the tests set.
pub const CRASH_ENV: &str = "REMOVEBGVIDEO_BATCH_CRASH";

/// Every point the runner passes.
pub const POINTS: [&str; 5] = [
    "intent_committed",
    "create_answered",
    "start_answered",
    "job_ended",
    "output_renamed",
];

struct Plan {
    point: String,
    at: u64,
    passed: AtomicU64,
}

fn plan() -> Option<&'static Plan> {
    static PLAN: OnceLock<Option<Plan>> = OnceLock::new();
    PLAN.get_or_init(|| {
        let value = std::env::var(CRASH_ENV).ok()?;
        let (point, at) = value.rsplit_once(':')?;
        Some(Plan {
            point: point.to_owned(),
            at: at.parse().ok()?,
            passed: AtomicU64::new(0),
        })
    })
    .as_ref()
}

/// Passes the point `name` (one of [`POINTS`]).
pub fn point(name: &str) {
    debug_assert!(POINTS.contains(&name), "unknown crash point {name}");
    if let Some(plan) = plan()
        && plan.point == name
        && plan.passed.fetch_add(1, Ordering::Relaxed) + 1 == plan.at
    {
        std::process::abort();
    }
}
