//! The poll and retry policies as bindings give them: only the fields the caller set, each
//! checked, the rest the SDK's defaults.

use std::time::Duration;

use removebgvideo_core::{PollPolicy, RetryPolicy};
use schemars::JsonSchema;
use serde::Deserialize;

use super::checks::{Problems, moved};

/// The polling schedule of waits; absent fields keep the SDK's defaults. Durations in
/// milliseconds.
#[derive(Clone, Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PollPolicyArgs {
    /// The first interval (default 1 s).
    pub initial_interval: Option<u64>,
    /// Growth factor per poll, 1 to 10 (default 1.5).
    pub factor: Option<f64>,
    /// The longest interval (default 10 s).
    pub max_interval: Option<u64>,
    /// Jitter, as a fraction either way, 0 to 0.9 (default 0.2).
    pub jitter: Option<f64>,
    /// The shortest interval, whatever jitter or a hint say (default 0.5 s).
    pub min_interval: Option<u64>,
    /// The longest server hint honoured (default 60 s).
    pub max_hint: Option<u64>,
    /// Aim polls at the completion the job's progress projects (default true).
    pub progress_eta: Option<bool>,
    /// The longest wait towards a projected completion (default 30 s).
    pub max_eta_interval: Option<u64>,
    /// How long after the projected completion a poll lands (default 0.1 s).
    pub eta_margin: Option<u64>,
}

impl PollPolicyArgs {
    /// The policy; problems are named under `path` (`/settings/poll_policy`).
    pub(crate) fn resolve(&self, problems: &mut Problems, path: &str) -> PollPolicy {
        let mut policy = PollPolicy::default();
        let ms = Duration::from_millis;
        set(&mut policy.initial_interval, self.initial_interval.map(ms));
        set(&mut policy.factor, self.factor);
        set(&mut policy.max_interval, self.max_interval.map(ms));
        set(&mut policy.jitter, self.jitter);
        set(&mut policy.min_interval, self.min_interval.map(ms));
        set(&mut policy.max_hint, self.max_hint.map(ms));
        set(&mut policy.progress_eta, self.progress_eta);
        set(&mut policy.max_eta_interval, self.max_eta_interval.map(ms));
        set(&mut policy.eta_margin, self.eta_margin.map(ms));
        if let Err(error) = policy.check() {
            // The core names the policy `/poll`; the caller knows it by where it was given.
            for problem in error.problems {
                problems.push(moved(problem, "/poll", path));
            }
        }
        policy
    }
}

/// How each request is retried; absent fields keep the SDK's defaults. Durations in
/// milliseconds.
#[derive(Clone, Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RetryPolicyArgs {
    /// Retries after the first attempt (default 2).
    pub max_retries: Option<u32>,
    /// First backoff step (default 0.5 s).
    pub base_delay: Option<u64>,
    /// Cap of the backoff step (default 8 s).
    pub max_delay: Option<u64>,
    /// First step for a 429 without a hint (default 2 s).
    pub rate_limit_base_delay: Option<u64>,
    /// Cap for a 429 without a hint (default 16 s).
    pub rate_limit_max_delay: Option<u64>,
    /// The longest Retry-After honoured (default 60 s).
    pub max_retry_after: Option<u64>,
}

impl RetryPolicyArgs {
    /// The policy.
    pub(crate) fn resolve(&self, _problems: &mut Problems, _path: &str) -> RetryPolicy {
        let mut policy = RetryPolicy::default();
        let ms = Duration::from_millis;
        set(&mut policy.max_retries, self.max_retries);
        set(&mut policy.base_delay, self.base_delay.map(ms));
        set(&mut policy.max_delay, self.max_delay.map(ms));
        set(
            &mut policy.rate_limit_base_delay,
            self.rate_limit_base_delay.map(ms),
        );
        set(
            &mut policy.rate_limit_max_delay,
            self.rate_limit_max_delay.map(ms),
        );
        set(&mut policy.max_retry_after, self.max_retry_after.map(ms));
        policy
    }
}

fn set<T>(field: &mut T, value: Option<T>) {
    if let Some(value) = value {
        *field = value;
    }
}
