//! The poll and retry policies as bindings give them: only the fields the caller set, each
//! checked, the rest the SDK's defaults. Durations in milliseconds (`initial_interval_ms`);
//! the bindings' public policies take seconds under the name without `_ms`.

use removebgvideo_core::{PollPolicy, RetryPolicy};
use schemars::JsonSchema;
use serde::Deserialize;

use super::checks::{Problems, moved, ms, positive_ms};
use super::number::Float;

/// The polling schedule of waits; absent fields keep the SDK's defaults.
#[derive(Clone, Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PollPolicyArgs {
    /// The first interval (default 1 s).
    pub initial_interval_ms: Option<Float>,
    /// Growth factor per poll, 1 to 10 (default 1.5).
    pub factor: Option<Float>,
    /// The longest interval (default 10 s).
    pub max_interval_ms: Option<Float>,
    /// Jitter, as a fraction either way, 0 to 0.9 (default 0.2).
    pub jitter: Option<Float>,
    /// The shortest interval, whatever jitter or a hint say (default 0.5 s).
    pub min_interval_ms: Option<Float>,
    /// The longest server hint honoured (default 60 s).
    pub max_hint_ms: Option<Float>,
    /// Aim polls at the completion the job's progress projects (default true).
    pub progress_eta: Option<bool>,
    /// The longest wait towards a projected completion (default 30 s).
    pub max_eta_interval_ms: Option<Float>,
    /// How long after the projected completion a poll lands (default 0.1 s).
    pub eta_margin_ms: Option<Float>,
}

impl PollPolicyArgs {
    /// The policy; `None` when it has problems, which are kept, named under `path`
    /// (`/settings/poll_policy`).
    pub(crate) fn resolve(&self, problems: &mut Problems, path: &str) -> Option<PollPolicy> {
        let before = problems.len();
        let mut policy = PollPolicy::default();
        let at = |field: &str| format!("{path}/{field}");
        let p = &mut *problems;
        set(
            &mut policy.initial_interval,
            positive_ms(p, &at("initial_interval"), self.initial_interval_ms),
        );
        set(
            &mut policy.max_interval,
            positive_ms(p, &at("max_interval"), self.max_interval_ms),
        );
        set(
            &mut policy.min_interval,
            ms(p, &at("min_interval"), self.min_interval_ms),
        );
        set(
            &mut policy.max_hint,
            ms(p, &at("max_hint"), self.max_hint_ms),
        );
        set(
            &mut policy.max_eta_interval,
            positive_ms(p, &at("max_eta_interval"), self.max_eta_interval_ms),
        );
        set(
            &mut policy.eta_margin,
            ms(p, &at("eta_margin"), self.eta_margin_ms),
        );
        // The core checks the factors (NaN included) and how the intervals relate.
        set(&mut policy.factor, self.factor.map(|f| f.0));
        set(&mut policy.jitter, self.jitter.map(|f| f.0));
        set(&mut policy.progress_eta, self.progress_eta);
        if let Err(error) = policy.check() {
            // The core names the policy `/poll`; the caller knows it by where it was given.
            for problem in error.problems {
                problems.push(moved(problem, "/poll", path));
            }
        }
        (problems.len() == before).then_some(policy)
    }
}

/// How each request is retried; absent fields keep the SDK's defaults.
#[derive(Clone, Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RetryPolicyArgs {
    /// Retries after the first attempt (default 2).
    pub max_retries: Option<u32>,
    /// First backoff step (default 0.5 s).
    pub base_delay_ms: Option<Float>,
    /// Cap of the backoff step (default 8 s).
    pub max_delay_ms: Option<Float>,
    /// First step for a 429 without a hint (default 2 s).
    pub rate_limit_base_delay_ms: Option<Float>,
    /// Cap for a 429 without a hint (default 16 s).
    pub rate_limit_max_delay_ms: Option<Float>,
    /// The longest Retry-After honoured (default 60 s).
    pub max_retry_after_ms: Option<Float>,
}

impl RetryPolicyArgs {
    /// The policy; problems are named under `path` (`/settings/retry_policy`).
    pub(crate) fn resolve(&self, problems: &mut Problems, path: &str) -> RetryPolicy {
        let mut policy = RetryPolicy::default();
        let at = |field: &str| format!("{path}/{field}");
        let p = problems;
        set(&mut policy.max_retries, self.max_retries);
        set(
            &mut policy.base_delay,
            ms(p, &at("base_delay"), self.base_delay_ms),
        );
        set(
            &mut policy.max_delay,
            ms(p, &at("max_delay"), self.max_delay_ms),
        );
        let rate_base = ms(
            p,
            &at("rate_limit_base_delay"),
            self.rate_limit_base_delay_ms,
        );
        set(&mut policy.rate_limit_base_delay, rate_base);
        let rate_max = ms(p, &at("rate_limit_max_delay"), self.rate_limit_max_delay_ms);
        set(&mut policy.rate_limit_max_delay, rate_max);
        let hint = ms(p, &at("max_retry_after"), self.max_retry_after_ms);
        set(&mut policy.max_retry_after, hint);
        policy
    }
}

fn set<T>(field: &mut T, value: Option<T>) {
    if let Some(value) = value {
        *field = value;
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::bridge::parse;

    fn poll(json: &str) -> Result<PollPolicy, crate::Error> {
        let args: PollPolicyArgs = parse("poll_policy", json)?;
        let mut problems = Problems::default();
        let policy = args.resolve(&mut problems, "/poll_policy");
        problems.finish(policy.unwrap_or_default())
    }

    #[test]
    fn fractional_milliseconds_are_kept_and_absent_fields_default() {
        let policy = poll(r#"{"initial_interval_ms": 20.5, "factor": 2}"#).unwrap();
        assert_eq!(policy.initial_interval, Duration::from_micros(20_500));
        assert_eq!(policy.factor, 2.0);
        assert_eq!(policy.max_interval, PollPolicy::default().max_interval);
    }

    #[test]
    fn every_unusable_field_is_named_by_its_public_path() {
        let error =
            poll(r#"{"initial_interval_ms": -1, "max_hint_ms": "Infinity", "factor": "NaN"}"#)
                .unwrap_err();
        let paths: Vec<&str> = error.problems.iter().map(|p| p.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "/poll_policy/initial_interval",
                "/poll_policy/max_hint",
                "/poll_policy/factor"
            ]
        );
        assert!(
            error.problems[2].message.starts_with("poll_policy.factor "),
            "{}",
            error.problems[2].message
        );
        let args: RetryPolicyArgs = parse("retry_policy", r#"{"base_delay_ms": -5}"#).unwrap();
        let mut problems = Problems::default();
        args.resolve(&mut problems, "/retry_policy");
        let error = problems.finish(()).unwrap_err();
        assert_eq!(error.problems[0].path, "/retry_policy/base_delay");
    }
}
