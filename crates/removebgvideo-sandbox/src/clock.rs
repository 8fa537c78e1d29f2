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
    /// Starts now, running `speed` times faster than real time (`SandboxConfig::check` bounds
    /// it; anything unusable that reaches here runs at real time).
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

    /// The virtual now. Saturating: it is read under the state lock, where a panic would
    /// poison the lock and fail every later request.
    pub fn now(&self) -> Timestamp {
        self.origin_virtual
            .plus(scale(self.origin_real.elapsed(), self.speed))
    }

    /// How long, in real time, until the virtual clock reads `at`.
    pub fn real_until(&self, at: Timestamp) -> Duration {
        scale(at.since(self.now()), 1.0 / self.speed)
    }
}

/// `duration * factor`, saturating at `Duration::MAX` instead of panicking.
fn scale(duration: Duration, factor: f64) -> Duration {
    Duration::try_from_secs_f64(duration.as_secs_f64() * factor).unwrap_or(Duration::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extreme_speeds_saturate_instead_of_panicking() {
        for speed in [1e-300, 1e300, f64::MAX, f64::MIN_POSITIVE] {
            let clock = Clock::start(speed);
            let far = clock.now().plus(Duration::from_secs(3600));
            let _ = clock.real_until(far);
            assert!(clock.now() >= clock.origin_virtual);
        }
        assert_eq!(scale(Duration::from_secs(1), f64::MAX), Duration::MAX);
        assert_eq!(scale(Duration::from_secs(2), 0.5), Duration::from_secs(1));
    }
}
