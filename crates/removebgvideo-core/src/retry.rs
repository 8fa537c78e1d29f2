//! Retry decisions: whether a failed HTTP attempt is tried again, after how long, within what budget.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::ErrorCode;
use crate::http::Headers;
use crate::random::Random;
use crate::timestamp::Timestamp;

/// How HTTP attempts are retried. Defaults from PEERS.md; each field can be overridden per
/// client and per call.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
// Absent fields take the defaults, so bindings can pass only what the caller changed; a
// misspelt one is an error rather than silently a default.
#[serde(default, deny_unknown_fields)]
pub struct RetryPolicy {
    /// Retries after the first attempt (2 means 3 attempts in all).
    pub max_retries: u32,
    /// First backoff step: the n-th retry waits within [d/2, d], d = min(base * 2^n, max).
    #[serde(with = "millis")]
    pub base_delay: Duration,
    /// Cap of the backoff step.
    #[serde(with = "millis")]
    pub max_delay: Duration,
    /// First step for a 429 without a hint: the documented table 1-2 s, 2-4 s, 4-8 s.
    #[serde(with = "millis")]
    pub rate_limit_base_delay: Duration,
    /// Cap for a 429 without a hint: the documented 8-16 s.
    #[serde(with = "millis")]
    pub rate_limit_max_delay: Duration,
    /// The longest server hint (Retry-After) honoured; a longer one ends the retries with a
    /// rate-limit error carrying `retry_after`.
    #[serde(with = "millis")]
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_retries: 2,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(8),
            rate_limit_base_delay: Duration::from_secs(2),
            rate_limit_max_delay: Duration::from_secs(16),
            max_retry_after: Duration::from_secs(60),
        }
    }
}

/// HTTP statuses worth another attempt: timeouts, too early, rate limits, and server errors
/// that say nothing was done (or that are safe to repeat with an idempotency key).
pub const RETRYABLE_STATUSES: [u16; 7] = [408, 425, 429, 500, 502, 503, 504];

/// Retryable statuses that a gateway can answer after the origin already acted (an internal
/// error, a bad or timed-out upstream answer): a POST that got one may have taken effect, so
/// it is repeated only when the server is known to honour its Idempotency-Key. 408, 425, 429
/// and 503 say the request was not processed, and stay retryable.
pub const MAY_HAVE_ACTED_STATUSES: [u16; 3] = [500, 502, 504];

/// Whether an attempt that ended this way may have taken effect on the server: no answer came
/// (or one that could not be read), or a status a gateway gives after the origin acted. A POST
/// that ends so, for whatever reason (no retries left, a deadline, a cancel), is reported as
/// `outcome_unknown` with its key, never as an error that reads "nothing happened".
pub fn may_have_acted(outcome: &Outcome<'_>) -> bool {
    match outcome {
        Outcome::NoAnswer { .. } => true,
        Outcome::Status { status, .. } => MAY_HAVE_ACTED_STATUSES.contains(status),
        Outcome::ConnectFailed => false,
    }
}

/// Whether repeating the request could do something twice.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Replay {
    /// A GET, or a POST whose Idempotency-Key the server is known to honour.
    Safe,
    /// A POST to a server not known to honour Idempotency-Key: not re-sent once it may have
    /// arrived.
    Unsafe,
}

/// What happened to one attempt.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome<'a> {
    /// The server answered with a non-2xx status.
    Status {
        /// The HTTP status.
        status: u16,
        /// The error code of the body (or the one the status implies).
        code: &'a ErrorCode,
        /// The response headers (for Retry-After).
        headers: &'a Headers,
    },
    /// No connection could be made: nothing was sent.
    ConnectFailed,
    /// The connection broke, or the request timed out, after the request may have been sent.
    NoAnswer {
        /// Whether it was a timeout (which costs more of the budget).
        timed_out: bool,
    },
}

/// Why an attempt is retried (for logs and progress events).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RetryReason {
    /// A retryable HTTP status.
    Status {
        /// The status.
        status: u16,
    },
    /// The connection could not be made.
    ConnectFailed,
    /// The connection broke or timed out.
    NoAnswer {
        /// Whether it timed out.
        timed_out: bool,
    },
}

impl std::fmt::Display for RetryReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RetryReason::Status { status } => write!(f, "HTTP {status}"),
            RetryReason::ConnectFailed => f.write_str("connection failed"),
            RetryReason::NoAnswer { timed_out: true } => f.write_str("timed out"),
            RetryReason::NoAnswer { timed_out: false } => f.write_str("connection broken"),
        }
    }
}

/// Why no further attempt is made.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum GiveUp {
    /// The failure is not one that another attempt can fix (400, 401, 402, 404, ...).
    NotRetryable,
    /// Every allowed retry was used.
    AttemptsExhausted,
    /// The client's retry budget is empty: too many retries lately.
    BudgetExhausted,
    /// The server asked for a longer wait than we honour.
    RetryAfterTooLong {
        /// What it asked for, in milliseconds.
        retry_after_ms: u64,
    },
    /// A POST may have taken effect on a server that does not honour Idempotency-Key (no
    /// answer came, or a 500, 502 or 504 that may follow acting): repeating it could do it twice.
    OutcomeUnknown,
}

/// The decision after a failed attempt.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "decision", rename_all = "snake_case")]
pub enum RetryDecision {
    /// Try again after `delay`.
    Retry {
        /// How long to wait first.
        #[serde(rename = "delay_ms", with = "millis")]
        delay: Duration,
        /// Why.
        reason: RetryReason,
    },
    /// Stop and report the failure.
    GiveUp {
        /// Why.
        reason: GiveUp,
    },
}

/// A token bucket shared by all calls of one client, so that a batch cannot turn an outage
/// into a retry storm (botocore's standard mode).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetryBudget {
    tokens: u32,
    capacity: u32,
    retry_cost: u32,
    timeout_cost: u32,
    success_refund: u32,
}

impl Default for RetryBudget {
    /// 500 tokens; a retry costs 5, a retry after a timeout 10; each success gives back 1.
    fn default() -> Self {
        RetryBudget::new(500, 5, 10, 1)
    }
}

impl RetryBudget {
    /// A full bucket of `capacity` tokens.
    pub fn new(capacity: u32, retry_cost: u32, timeout_cost: u32, success_refund: u32) -> Self {
        RetryBudget {
            tokens: capacity,
            capacity,
            retry_cost,
            timeout_cost,
            success_refund,
        }
    }

    /// The same bucket holding `tokens` (at most its capacity): a client restored from settings,
    /// or a test starting from a given level.
    pub fn with_tokens(mut self, tokens: u32) -> Self {
        self.tokens = tokens.min(self.capacity);
        self
    }

    /// Tokens left.
    pub fn tokens(&self) -> u32 {
        self.tokens
    }

    /// Takes the cost of one retry, if there is enough; never goes below zero.
    pub fn withdraw(&mut self, timed_out: bool) -> bool {
        let cost = if timed_out {
            self.timeout_cost
        } else {
            self.retry_cost
        };
        match self.tokens.checked_sub(cost) {
            Some(left) => {
                self.tokens = left;
                true
            }
            None => false,
        }
    }

    /// Gives back a little after a success, up to the capacity.
    pub fn on_success(&mut self) {
        self.tokens = (self.tokens + self.success_refund).min(self.capacity);
    }
}

/// Decides what follows the failed attempt number `retries_done` (0 for the first attempt).
///
/// Order matters: a failure no retry can fix ends at once; a POST whose outcome is unknown (no
/// answer, or a status that may follow acting) is never re-sent unless its key is honoured;
/// then the attempt count, the server's hint and the budget are checked.
pub fn decide(
    policy: &RetryPolicy,
    budget: &mut RetryBudget,
    retries_done: u32,
    outcome: &Outcome<'_>,
    replay: Replay,
    now: Timestamp,
    random: &mut dyn Random,
) -> RetryDecision {
    let give_up = |reason| RetryDecision::GiveUp { reason };
    let (reason, hint, rate_limited, timed_out) = match outcome {
        Outcome::Status {
            status,
            code,
            headers,
        } => {
            if !RETRYABLE_STATUSES.contains(status) || **code == ErrorCode::InsufficientCredits {
                return give_up(GiveUp::NotRetryable);
            }
            if replay == Replay::Unsafe && may_have_acted(outcome) {
                return give_up(GiveUp::OutcomeUnknown);
            }
            (
                RetryReason::Status { status: *status },
                retry_after(headers, now),
                *status == 429,
                false,
            )
        }
        Outcome::ConnectFailed => (RetryReason::ConnectFailed, None, false, false),
        Outcome::NoAnswer { timed_out } => {
            if replay == Replay::Unsafe {
                return give_up(GiveUp::OutcomeUnknown);
            }
            (
                RetryReason::NoAnswer {
                    timed_out: *timed_out,
                },
                None,
                false,
                *timed_out,
            )
        }
    };
    if retries_done >= policy.max_retries {
        return give_up(GiveUp::AttemptsExhausted);
    }
    if let Some(hint) = hint
        && hint > policy.max_retry_after
    {
        return give_up(GiveUp::RetryAfterTooLong {
            retry_after_ms: crate::timestamp::duration_millis(hint),
        });
    }
    if !budget.withdraw(timed_out) {
        return give_up(GiveUp::BudgetExhausted);
    }
    let delay = match hint {
        Some(hint) => hint,
        None if rate_limited => backoff(
            policy.rate_limit_base_delay,
            policy.rate_limit_max_delay,
            retries_done,
            random,
        ),
        None => backoff(policy.base_delay, policy.max_delay, retries_done, random),
    };
    RetryDecision::Retry { delay, reason }
}

/// Exponential backoff with "equal jitter": uniform in [d/2, d], d = min(base * 2^n, max).
/// Half the step is kept so a retry never comes back immediately; half is random so that
/// clients that failed together do not return together.
pub fn backoff(base: Duration, max: Duration, n: u32, random: &mut dyn Random) -> Duration {
    let step = base
        .checked_mul(1u32.checked_shl(n.min(31)).unwrap_or(u32::MAX))
        .unwrap_or(max)
        .min(max);
    step.mul_f64(0.5 + 0.5 * random.unit())
}

/// The wait a response asks for: `retry-after-ms`, else `Retry-After` in seconds or as an
/// HTTP-date (relative to `now`; a date in the past means no wait).
pub fn retry_after(headers: &Headers, now: Timestamp) -> Option<Duration> {
    if let Some(ms) = headers
        .get("retry-after-ms")
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|ms| ms.is_finite() && *ms >= 0.0)
    {
        // try_from: a huge hint from a proxy must not panic; it is then "too long" below.
        return Some(Duration::try_from_secs_f64(ms / 1000.0).unwrap_or(Duration::MAX));
    }
    let value = headers.get("retry-after")?.trim();
    if let Ok(secs) = value.parse::<f64>() {
        return (secs.is_finite() && secs >= 0.0)
            .then(|| Duration::try_from_secs_f64(secs).unwrap_or(Duration::MAX));
    }
    let date = httpdate::parse_http_date(value).ok()?;
    Some(Timestamp::from(date).since(now))
}

pub(crate) mod millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(value: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(crate::timestamp::duration_millis(*value))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        Ok(Duration::from_millis(u64::deserialize(d)?))
    }
}
