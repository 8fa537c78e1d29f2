//! Time for the drivers: what `now` is and how a pause passes. The real clock is wall time at
//! start plus monotonic elapsed time (a wall-clock jump cannot stretch or cut a wait); a
//! [`VirtualClock`] lets tests run minutes of retries and polls without sleeping.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use removebgvideo_core::Timestamp;

use crate::cancel::CancelToken;

/// The clock and the sleeper of a client's drivers.
pub trait Time: Send + Sync + std::fmt::Debug {
    /// Now.
    fn now(&self) -> Timestamp;

    /// The moment `duration` from now, never earlier.
    fn after(&self, duration: Duration) -> Timestamp {
        self.now().plus(duration)
    }

    /// Pauses for `duration`, or less if `cancel` is raised; returns whether it was.
    fn sleep(&self, duration: Duration, cancel: Option<&CancelToken>) -> bool;

    /// Whether time passes only when slept (the engine then jumps to its next timer whenever
    /// no request is out).
    fn is_virtual(&self) -> bool {
        false
    }
}

/// The real clock.
#[derive(Clone, Copy, Debug)]
pub(crate) struct SystemClock {
    origin: Instant,
    origin_wall: Timestamp,
}

impl SystemClock {
    pub(crate) fn start() -> Self {
        SystemClock {
            origin: Instant::now(),
            origin_wall: Timestamp::from(SystemTime::now()),
        }
    }
}

impl Time for SystemClock {
    fn now(&self) -> Timestamp {
        self.origin_wall.plus(self.origin.elapsed())
    }

    /// Rounded up to the millisecond: `now` rounds down, so a deadline from it could fall up
    /// to a millisecond early.
    fn after(&self, duration: Duration) -> Timestamp {
        let at = self.origin.elapsed().saturating_add(duration);
        let millis = u64::try_from(at.as_nanos().div_ceil(1_000_000)).unwrap_or(u64::MAX);
        self.origin_wall.plus(Duration::from_millis(millis))
    }

    fn sleep(&self, duration: Duration, cancel: Option<&CancelToken>) -> bool {
        match cancel {
            Some(cancel) => cancel.sleep(duration),
            None => {
                std::thread::sleep(duration);
                false
            }
        }
    }
}

/// A clock that only moves when a driver sleeps: a pause of a minute passes at once. For
/// tests of retries, polling and deadlines that must not take real time. Clones share the time.
#[derive(Clone, Debug)]
pub struct VirtualClock {
    now: Arc<Mutex<Timestamp>>,
    slept: Arc<Mutex<Vec<Duration>>>,
}

impl VirtualClock {
    /// A clock reading `start`.
    pub fn new(start: Timestamp) -> Self {
        VirtualClock {
            now: Arc::new(Mutex::new(start)),
            slept: Arc::default(),
        }
    }

    /// Moves the clock forward (as another party's time would pass).
    pub fn advance(&self, duration: Duration) {
        let mut now = self.now.lock().unwrap_or_else(|p| p.into_inner());
        *now = now.plus(duration);
    }

    /// Every pause a driver took, in order.
    pub fn pauses(&self) -> Vec<Duration> {
        self.slept.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

impl Time for VirtualClock {
    fn now(&self) -> Timestamp {
        *self.now.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn sleep(&self, duration: Duration, cancel: Option<&CancelToken>) -> bool {
        if cancel.is_some_and(CancelToken::is_cancelled) {
            return true;
        }
        self.slept
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(duration);
        self.advance(duration);
        false
    }

    fn is_virtual(&self) -> bool {
        true
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
        let clock = SystemClock::start();
        for _ in 0..1000 {
            let before = clock.origin.elapsed();
            let deadline = clock.after(Duration::from_millis(600));
            assert!(deadline.since(clock.origin_wall) >= before + Duration::from_millis(600));
        }
    }

    #[test]
    fn a_virtual_clock_moves_only_when_slept_and_stops_for_a_cancel() {
        let clock = VirtualClock::new(Timestamp::from_unix_secs(1000));
        assert!(!clock.sleep(Duration::from_secs(90), None));
        assert_eq!(clock.now(), Timestamp::from_unix_secs(1090));
        let cancel = CancelToken::new();
        cancel.cancel();
        assert!(clock.sleep(Duration::from_secs(5), Some(&cancel)));
        assert_eq!(
            clock.now(),
            Timestamp::from_unix_secs(1090),
            "a cancelled pause takes no time"
        );
        assert_eq!(clock.pauses(), [Duration::from_secs(90)]);
    }
}
