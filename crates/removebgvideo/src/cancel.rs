//! Cancelling a wait (or a run) from another thread, promptly even in the middle of a pause,
//! and telling the engine at once when a call it drives is cancelled.

use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

type Hook = Box<dyn Fn() + Send + Sync>;

#[derive(Default)]
struct State {
    cancelled: Mutex<bool>,
    wake: Condvar,
    /// Called once on cancel (the engine's way of hearing about it without polling).
    hooks: Mutex<Vec<Hook>>,
}

/// A flag another thread can raise; every pause of the client wakes up on it at once.
#[derive(Clone, Default)]
pub struct CancelToken(Arc<State>);

impl std::fmt::Debug for CancelToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CancelToken")
            .field("cancelled", &self.is_cancelled())
            .finish()
    }
}

impl CancelToken {
    /// A token not yet cancelled.
    pub fn new() -> Self {
        CancelToken::default()
    }

    /// Cancels: waits and runs using this token stop with a `cancelled` error.
    pub fn cancel(&self) {
        let state = &*self.0;
        {
            let mut cancelled = lock(&state.cancelled);
            if *cancelled {
                return;
            }
            *cancelled = true;
        }
        state.wake.notify_all();
        let hooks = std::mem::take(&mut *lock(&state.hooks));
        for hook in hooks {
            hook();
        }
    }

    /// Whether it was cancelled.
    pub fn is_cancelled(&self) -> bool {
        *lock(&self.0.cancelled)
    }

    /// Runs `hook` once when the token is cancelled (at once if it already is).
    pub(crate) fn on_cancel(&self, hook: Hook) {
        let state = &*self.0;
        {
            let cancelled = lock(&state.cancelled);
            if !*cancelled {
                lock(&state.hooks).push(hook);
                return;
            }
        }
        hook();
    }

    /// Pauses for `duration`, or less if cancelled; returns whether it was cancelled.
    pub fn sleep(&self, duration: Duration) -> bool {
        let state = &*self.0;
        let until = Instant::now() + duration;
        let mut cancelled = lock(&state.cancelled);
        while !*cancelled {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            cancelled = state
                .wake
                .wait_timeout(cancelled, left)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
        *cancelled
    }
}

/// A poisoned lock still holds a usable flag (a bool, or a list of hooks).
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[test]
    fn hooks_run_once_on_cancel_or_at_once_when_already_cancelled() {
        let token = CancelToken::new();
        let calls = Arc::new(AtomicU32::new(0));
        let counted = calls.clone();
        token.on_cancel(Box::new(move || {
            counted.fetch_add(1, Ordering::SeqCst);
        }));
        token.cancel();
        token.cancel();
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        let counted = calls.clone();
        token.on_cancel(Box::new(move || {
            counted.fetch_add(1, Ordering::SeqCst);
        }));
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }
}
