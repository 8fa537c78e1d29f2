//! Per-key token buckets, in real time (a client's backoff waits in real time).

use std::time::{Duration, Instant};

/// A refilling bucket of request tokens.
#[derive(Clone, Debug)]
pub struct TokenBucket {
    tokens: f64,
    burst: f64,
    rate_per_second: f64,
    updated: Instant,
}

/// The answer of the bucket to one request.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Admission {
    /// Let through; tokens left afterwards.
    Allowed {
        /// Whole tokens left.
        remaining: u32,
    },
    /// Refused; ask the client to wait this long.
    Limited {
        /// Until one token is back.
        retry_after: Duration,
    },
}

impl TokenBucket {
    /// A full bucket.
    pub fn new(burst: u32, rate_per_second: f64, now: Instant) -> Self {
        TokenBucket {
            tokens: f64::from(burst),
            burst: f64::from(burst),
            rate_per_second: rate_per_second.max(0.001),
            updated: now,
        }
    }

    /// The bucket size (for `X-RateLimit-Limit`).
    pub fn limit(&self) -> u32 {
        self.burst as u32
    }

    /// Takes one token if there is one.
    pub fn admit(&mut self, now: Instant) -> Admission {
        let elapsed = now.saturating_duration_since(self.updated).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate_per_second).min(self.burst);
        self.updated = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Admission::Allowed {
                remaining: self.tokens.floor() as u32,
            }
        } else {
            let missing = 1.0 - self.tokens;
            Admission::Limited {
                retry_after: Duration::from_secs_f64(missing / self.rate_per_second),
            }
        }
    }

    /// Seconds until the bucket is full again (for `X-RateLimit-Reset`).
    pub fn seconds_to_full(&self) -> u64 {
        ((self.burst - self.tokens) / self.rate_per_second).ceil() as u64
    }
}
