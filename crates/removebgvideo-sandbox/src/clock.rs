//! The sandbox clock: wall time at start, then real elapsed time multiplied by `speed`.

use std::time::{Duration, Instant, SystemTime};

use removebgvideo_core::Timestamp;

/// Virtual time for job lifecycles; real time for everything a client waits on directly
/// (rate limits, URL expiry, idempotency TTL).
#[derive(Clone, Debug)]
pub struct Clock {
    origin_real: Instant,
    origin_virtual: Timestamp,
    speed: f64,
}

impl Clock {
    /// Starts now, running `speed` times faster than real time.
    pub fn start(speed: f64) -> Self {
        Clock {
            origin_real: Instant::now(),
            origin_virtual: Timestamp::from(SystemTime::now()),
            speed: if speed.is_finite() && speed > 0.0 {
                speed
            } else {
                1.0
            },
        }
    }

    /// The virtual now.
    pub fn now(&self) -> Timestamp {
        self.origin_virtual
            .plus(self.origin_real.elapsed().mul_f64(self.speed))
    }

    /// How long, in real time, until the virtual clock reads `at`.
    pub fn real_until(&self, at: Timestamp) -> Duration {
        at.since(self.now()).div_f64(self.speed)
    }
}
