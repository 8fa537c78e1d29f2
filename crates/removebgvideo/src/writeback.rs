//! Early writeback of a download's part file.
//!
//! A finished download is synced to disk before it is renamed into place, so a crash never
//! leaves a complete-looking but empty or partial output. Syncing a whole gigabyte at the end
//! took as long as a third of the transfer (docs/benchmarks.md); syncing each new stretch on a
//! helper thread while the next one downloads leaves the final sync almost nothing to do.

use std::fs::File;
use std::io;
use std::thread::JoinHandle;

/// Bytes written between two background syncs.
const STRETCH: u64 = 32 << 20;

pub(crate) struct Writeback {
    file: Option<File>,
    in_flight: Option<JoinHandle<io::Result<()>>>,
    next_at: u64,
}

impl Writeback {
    /// Syncs `file` in the background as it grows; without a second handle (a platform that
    /// cannot clone one) everything is left to the final sync.
    pub(crate) fn new(file: &File) -> Writeback {
        Writeback {
            file: file.try_clone().ok(),
            in_flight: None,
            next_at: STRETCH,
        }
    }

    /// `written` bytes are in the file: start a sync when a stretch has been added and the
    /// previous sync is done (never more than one at a time, never blocking the download).
    pub(crate) fn wrote(&mut self, written: u64) {
        if written < self.next_at || self.in_flight.as_ref().is_some_and(|h| !h.is_finished()) {
            return;
        }
        let Some(file) = self.file.as_ref().and_then(|f| f.try_clone().ok()) else {
            return;
        };
        // A failed early sync is not an error: the final sync reports what matters.
        let _ = self.in_flight.take().map(JoinHandle::join);
        self.in_flight = std::thread::Builder::new()
            .name("removebgvideo-writeback".into())
            .spawn(move || file.sync_data())
            .ok();
        self.next_at = written + STRETCH;
    }

    /// Waits for the sync in flight, so the caller's final sync is the last word.
    pub(crate) fn finish(&mut self) {
        if let Some(handle) = self.in_flight.take() {
            let _ = handle.join();
        }
    }
}

impl Drop for Writeback {
    fn drop(&mut self) {
        self.finish();
    }
}
