//! The client's clock: wall time at start plus monotonic elapsed time, so a wall-clock jump
//! cannot stretch or cut a wait.

use std::time::{Duration, Instant, SystemTime};

use removebgvideo_core::Timestamp;

/// Reads `now` for the core's decisions.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Clock {
    origin: Instant,
    origin_wall: Timestamp,
}

impl Clock {
    pub(crate) fn start() -> Self {
        Clock {
            origin: Instant::now(),
            origin_wall: Timestamp::from(SystemTime::now()),
        }
    }

    pub(crate) fn now(&self) -> Timestamp {
        self.origin_wall.plus(self.origin.elapsed())
    }

    /// The moment `duration` from now, rounded up to the millisecond: `now` rounds down, so a
    /// deadline from it could fall up to a millisecond early.
    pub(crate) fn after(&self, duration: Duration) -> Timestamp {
        let at = self.origin.elapsed().saturating_add(duration);
        let millis = u64::try_from(at.as_nanos().div_ceil(1_000_000)).unwrap_or(u64::MAX);
        self.origin_wall.plus(Duration::from_millis(millis))
    }
}

/// Jitter for the core's decisions, from a fast thread-local generator.
#[derive(Debug, Default)]
pub(crate) struct ThreadRandom;

impl removebgvideo_core::Random for ThreadRandom {
    fn unit(&mut self) -> f64 {
        fastrand::f64()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_deadline_is_never_before_now_plus_its_duration() {
        let clock = Clock::start();
        for _ in 0..1000 {
            let before = clock.origin.elapsed();
            let deadline = clock.after(Duration::from_millis(600));
            assert!(deadline.since(clock.origin_wall) >= before + Duration::from_millis(600));
        }
    }
}
