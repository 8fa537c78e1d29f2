//! Cancelling a wait (or a run) from another thread, promptly even in the middle of a pause.

use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// A flag another thread can raise; every pause of the client wakes up on it at once.
#[derive(Clone, Debug, Default)]
pub struct CancelToken(Arc<(Mutex<bool>, Condvar)>);

impl CancelToken {
    /// A token not yet cancelled.
    pub fn new() -> Self {
        CancelToken::default()
    }

    /// Cancels: waits and runs using this token stop with a `cancelled` error.
    pub fn cancel(&self) {
        let (flag, wake) = &*self.0;
        *flag.lock().expect("cancel flag") = true;
        wake.notify_all();
    }

    /// Whether it was cancelled.
    pub fn is_cancelled(&self) -> bool {
        *self.0.0.lock().expect("cancel flag")
    }

    /// Pauses for `duration`, or less if cancelled; returns whether it was cancelled.
    pub fn sleep(&self, duration: Duration) -> bool {
        let (flag, wake) = &*self.0;
        let until = Instant::now() + duration;
        let mut cancelled = flag.lock().expect("cancel flag");
        while !*cancelled {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            cancelled = wake.wait_timeout(cancelled, left).expect("cancel flag").0;
        }
        *cancelled
    }
}
