//! Calls from Rust threads (the engine's) into Python, fenced off from interpreter shutdown:
//! taking the GIL while the interpreter finalizes aborts the process. An `atexit` hook closes
//! the fence before finalization starts and waits for the calls already inside to leave.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use pyo3::prelude::*;

/// Raised by the `atexit` hook: no Rust thread calls into Python any more.
static CLOSED: AtomicBool = AtomicBool::new(false);
/// Rust threads inside (or about to enter) Python now.
static INSIDE: AtomicUsize = AtomicUsize::new(0);
/// The longest the hook waits for calls already inside (a user's callback may be slow).
const DRAIN_LIMIT: Duration = Duration::from_secs(5);

/// Runs `work` with the GIL, unless the interpreter is stopping (then `None`).
pub fn with_python<R>(work: impl for<'py> FnOnce(Python<'py>) -> R) -> Option<R> {
    INSIDE.fetch_add(1, Ordering::SeqCst);
    let result = if CLOSED.load(Ordering::SeqCst) {
        None
    } else {
        Python::try_attach(work)
    };
    INSIDE.fetch_sub(1, Ordering::SeqCst);
    result
}

/// The `atexit` hook: closes the fence, then waits (without the GIL) for the calls inside.
#[pyfunction]
pub fn close_for_exit(py: Python<'_>) {
    CLOSED.store(true, Ordering::SeqCst);
    py.detach(|| {
        let until = Instant::now() + DRAIN_LIMIT;
        while INSIDE.load(Ordering::SeqCst) > 0 && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(1));
        }
    });
}
