//! The client's clock: wall time at start plus monotonic elapsed time, so a wall-clock jump
//! cannot stretch or cut a wait.

use std::time::{Instant, SystemTime};

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
}

/// Jitter for the core's decisions, from a fast thread-local generator.
#[derive(Debug, Default)]
pub(crate) struct ThreadRandom;

impl removebgvideo_core::Random for ThreadRandom {
    fn unit(&mut self) -> f64 {
        fastrand::f64()
    }
}
