//! Time as plain data: the core never reads a clock, callers pass `now` in.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// A point in time, in milliseconds since the Unix epoch.
///
/// Callers feed the wall clock (or a virtual clock in tests and simulations); the core only
/// compares and adds. Millisecond resolution is finer than any delay this protocol uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Timestamp(u64);

impl Timestamp {
    /// The Unix epoch; also the origin of virtual clocks.
    pub const EPOCH: Timestamp = Timestamp(0);

    /// From milliseconds since the Unix epoch.
    pub const fn from_unix_millis(millis: u64) -> Self {
        Timestamp(millis)
    }

    /// From whole seconds since the Unix epoch.
    pub const fn from_unix_secs(secs: u64) -> Self {
        Timestamp(secs.saturating_mul(1000))
    }

    /// Milliseconds since the Unix epoch.
    pub const fn unix_millis(self) -> u64 {
        self.0
    }

    /// This time moved forward, saturating instead of overflowing.
    pub fn plus(self, delay: Duration) -> Self {
        Timestamp(self.0.saturating_add(duration_millis(delay)))
    }

    /// This time moved back, saturating at the epoch.
    pub fn minus(self, delay: Duration) -> Self {
        Timestamp(self.0.saturating_sub(duration_millis(delay)))
    }

    /// Time elapsed from `earlier` to `self`; zero when `earlier` is later.
    pub fn since(self, earlier: Timestamp) -> Duration {
        Duration::from_millis(self.0.saturating_sub(earlier.0))
    }

    /// Absolute distance between two times.
    pub fn distance(self, other: Timestamp) -> Duration {
        Duration::from_millis(self.0.abs_diff(other.0))
    }
}

impl From<std::time::SystemTime> for Timestamp {
    /// Converts a wall-clock reading taken by the caller; times before 1970 clamp to the epoch.
    fn from(time: std::time::SystemTime) -> Self {
        let millis = time
            .duration_since(std::time::UNIX_EPOCH)
            .map(duration_millis)
            .unwrap_or(0);
        Timestamp(millis)
    }
}

/// Whole milliseconds of a duration, saturating at `u64::MAX`.
pub(crate) fn duration_millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}
