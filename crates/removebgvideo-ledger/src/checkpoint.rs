//! WAL checkpoints off the commit path. SQLite's automatic checkpoint runs inside the commit
//! that fills the WAL past 1,000 pages, and a checkpoint syncs the database file: that commit
//! took milliseconds where the others take tens of microseconds (the ledger's p99). Instead the
//! ledger's own connection never checkpoints, and a helper thread with a connection of its own
//! runs a PASSIVE checkpoint (it never blocks a writer) every half second; the last connection
//! to close checkpoints what is left. A crash loses nothing either way: the WAL is replayed on
//! the next open.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::thread::JoinHandle;
use std::time::Duration;

use rusqlite::Connection;

/// How often the helper checkpoints.
const EVERY: Duration = Duration::from_millis(500);

/// The helper; dropping it stops it (and waits for a checkpoint under way).
#[derive(Debug)]
pub(crate) struct Checkpointer {
    /// The CPU time its checkpoints took, in nanoseconds (part of what the ledger costs).
    cpu_nanos: Arc<AtomicU64>,
    stop: Option<Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Checkpointer {
    /// Starts checkpointing the ledger file at `path`. `None` if the helper cannot start (the
    /// ledger then keeps SQLite's automatic checkpoints).
    pub(crate) fn start(path: &Path) -> Option<Checkpointer> {
        let conn = Connection::open(path).ok()?;
        conn.busy_timeout(Duration::from_millis(100)).ok()?;
        let (stop, stopped) = mpsc::channel::<()>();
        let cpu_nanos = Arc::new(AtomicU64::new(0));
        let spent = Arc::clone(&cpu_nanos);
        let thread = std::thread::Builder::new()
            .name("removebgvideo-ledger-checkpoint".into())
            .spawn(move || {
                while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(EVERY) {
                    // A busy database or a failed checkpoint is retried at the next tick; the
                    // WAL only grows meanwhile.
                    let cpu = cpu_time::ThreadTime::now();
                    let _ = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()));
                    let nanos = u64::try_from(cpu.elapsed().as_nanos()).unwrap_or(u64::MAX);
                    spent.fetch_add(nanos, Ordering::Relaxed);
                }
            })
            .ok()?;
        Some(Checkpointer {
            cpu_nanos,
            stop: Some(stop),
            thread: Some(thread),
        })
    }
}

impl Checkpointer {
    /// The CPU time its checkpoints took so far.
    pub(crate) fn cpu(&self) -> Duration {
        Duration::from_nanos(self.cpu_nanos.load(Ordering::Relaxed))
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
