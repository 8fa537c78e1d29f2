//! Property tests: the state machine, the retry and poll schedules and validation hold their
//! invariants for any input, not just the vectors.

use std::time::Duration;

use proptest::prelude::*;
use removebgvideo_core::http::Headers;
use removebgvideo_core::retry::{self, Outcome, Replay, backoff};
use removebgvideo_core::validate::parse_and_validate;
use removebgvideo_core::{
    CreateJobRequest, Error, ErrorCode, FixedDraws, Job, JobStatus, JobTracker, PollPolicy,
    PollStep, Poller, RetryBudget, RetryDecision, RetryPolicy, Timestamp, Verdict,
};

fn any_status() -> impl Strategy<Value = JobStatus> {
    prop_oneof![
        Just(JobStatus::Created),
        Just(JobStatus::Pending),
        Just(JobStatus::Processing),
        Just(JobStatus::Completed),
        Just(JobStatus::Failed),
        "[a-z]{1,8}".prop_map(JobStatus::from),
    ]
}

fn unit() -> impl Strategy<Value = f64> {
    0.0..1.0f64
}

proptest! {
    #[test]
    fn completed_is_never_left(statuses in prop::collection::vec(any_status(), 0..40)) {
        let mut tracker = JobTracker::new();
        let mut completed_seen = false;
        for (i, status) in statuses.iter().enumerate() {
            let verdict = tracker.observe(status, None, Timestamp::from_unix_secs(i as u64), None);
            if completed_seen {
                prop_assert_eq!(tracker.current(), Some(&JobStatus::Completed));
                prop_assert!(matches!(verdict, Verdict::Unchanged | Verdict::Illegal));
            }
            completed_seen |= tracker.current() == Some(&JobStatus::Completed);
        }
        for record in tracker.log() {
            if record.from == Some(JobStatus::Completed) {
                prop_assert_eq!(record.verdict, Verdict::Illegal);
            }
            if record.from == Some(JobStatus::Processing) && matches!(record.to, JobStatus::Created | JobStatus::Pending) {
                prop_assert_eq!(record.verdict, Verdict::Illegal, "backwards moves are reported");
            }
        }
    }

    #[test]
    fn backoff_stays_within_half_step_and_step(base_ms in 1u64..5_000, cap_ms in 1u64..60_000, n in 0u32..64, draw in unit()) {
        let (base, cap) = (Duration::from_millis(base_ms), Duration::from_millis(cap_ms));
        let delay = backoff(base, cap, n, &mut FixedDraws::new(vec![draw]));
        let step = base.saturating_mul(1u32.checked_shl(n.min(31)).unwrap_or(u32::MAX)).min(cap);
        prop_assert!(delay >= step / 2 && delay <= step, "{delay:?} outside [{:?}, {step:?}]", step / 2);
    }

    #[test]
    fn retry_delays_are_bounded_and_the_budget_is_honest(
        statuses in prop::collection::vec(prop::sample::select(vec![200u16, 400, 401, 402, 404, 408, 425, 429, 500, 502, 503, 504]), 1..60),
        hints in prop::collection::vec(prop::option::of(0u64..200), 60),
        draws in prop::collection::vec(unit(), 1..8),
    ) {
        let policy = RetryPolicy { max_retries: 3, ..RetryPolicy::default() };
        let mut budget = RetryBudget::new(40, 5, 10, 1);
        let mut random = FixedDraws::new(draws);
        for (i, status) in statuses.iter().enumerate() {
            if *status == 200 {
                let before = budget.tokens();
                budget.on_success();
                prop_assert!(budget.tokens() <= 40 && budget.tokens() >= before);
                continue;
            }
            let mut headers = Headers::new();
            if let Some(secs) = hints[i] {
                headers.push("Retry-After", secs.to_string());
            }
            let code = ErrorCode::from("x");
            let before = budget.tokens();
            let outcome = Outcome::Status { status: *status, code: &code, headers: &headers };
            match retry::decide(&policy, &mut budget, (i % 4) as u32, &outcome, Replay::Safe, Timestamp::EPOCH, &mut random) {
                RetryDecision::Retry { delay, .. } => {
                    prop_assert!(retry::RETRYABLE_STATUSES.contains(status));
                    prop_assert!(delay <= policy.max_retry_after.max(policy.rate_limit_max_delay));
                    prop_assert_eq!(budget.tokens(), before - 5, "a retry costs exactly its price");
                }
                RetryDecision::GiveUp { .. } => prop_assert_eq!(budget.tokens(), before, "giving up is free"),
            }
        }
    }

    #[test]
    fn polls_never_overshoot_the_deadline_and_respect_the_floor(
        deadline_ms in 0u64..200_000,
        reads in prop::collection::vec((any_status(), prop::option::of(0u8..=100), prop::option::of(0u64..120_000), any::<bool>()), 1..80),
        draws in prop::collection::vec(unit(), 1..8),
    ) {
        let policy = PollPolicy::default();
        let deadline = Timestamp::from_unix_millis(deadline_ms);
        let mut poller = Poller::new(policy.clone(), Some(deadline));
        let mut random = FixedDraws::new(draws);
        let mut now = Timestamp::EPOCH;
        for (status, progress, hint, transient_error) in reads {
            let step = if transient_error {
                let error = Error::new(ErrorCode::InternalError, "flaky").with_status(503);
                poller.on_error(error, now, &mut random).expect("transient errors never end a wait")
            } else {
                let hint = hint.map(Duration::from_millis);
                let mut job = Job::new("j", status);
                job.progress = progress.map(f64::from);
                poller.on_job(job, now, hint, &mut random).step
            };
            match step {
                PollStep::PollAt(at) => {
                    prop_assert!(at <= deadline, "poll at {at:?} after the deadline");
                    prop_assert!(at > now || at == deadline);
                    let wait = at.since(now);
                    prop_assert!(wait >= policy.min_interval || at == deadline);
                    prop_assert!(wait <= policy.max_hint.max(policy.max_eta_interval).max(policy.max_interval.mul_f64(1.0 + policy.jitter)));
                    now = at;
                }
                PollStep::DeadlineReached(_) => {
                    prop_assert!(now >= deadline);
                    return Ok(());
                }
                PollStep::Completed(job) => { prop_assert_eq!(job.status, JobStatus::Completed); return Ok(()); }
                PollStep::Failed(job) => { prop_assert_eq!(job.status, JobStatus::Failed); return Ok(()); }
            }
        }
    }

    #[test]
    fn validation_never_panics_and_always_explains(
        video_url in ".{0,40}",
        model in prop::option::of("[a-z]{0,8}"),
        format in prop::option::of(prop::sample::select(vec!["webm", "mp4", "mov", "gif", "avi", ""])),
        bg_type in prop::option::of(prop::sample::select(vec!["transparent", "green", "custom", "color", "image", "plaid"])),
        bg_color in prop::option::of(prop::collection::vec(-2.0..2.0f64, 0..5)),
        prompt in prop::option::of(".{0,10}"),
    ) {
        let body = serde_json::json!({
            "video_url": video_url, "model": model, "output_format": format,
            "bg_type": bg_type, "bg_color": bg_color, "text_prompt": prompt,
        });
        match parse_and_validate::<CreateJobRequest>(&body) {
            Ok(_) => {}
            Err(error) => {
                prop_assert_eq!(error.code, ErrorCode::ValidationError);
                prop_assert!(!error.problems.is_empty());
                for problem in &error.problems {
                    prop_assert!(problem.path.starts_with('/'));
                    prop_assert!(!problem.message.is_empty());
                }
            }
        }
    }

    #[test]
    fn following_progress_takes_at_most_one_poll_more_than_the_schedule_and_sees_the_end_soon(
        processing_ms in 5_000u64..900_000,
        queue_ms in 0u64..3_000,
        draws in prop::collection::vec(unit(), 1..8),
    ) {
        let eta = wait_for_linear_job(PollPolicy::default(), queue_ms, processing_ms, &draws);
        let plain = wait_for_linear_job(
            PollPolicy { progress_eta: false, ..PollPolicy::default() },
            queue_ms,
            processing_ms,
            &draws,
        );
        // Per job, an aimed poll can land just before the end and cost one more read than the
        // plain schedule happened to need; over a workload following progress takes far
        // fewer (docs/benchmarks.md).
        prop_assert!(eta.0 <= plain.0 + 1, "{} polls following progress, {} without", eta.0, plain.0);
        // The projection is off by at most its uncertainty, and a vague one is checked at the
        // early half of its range: past the end by at most a tenth of the run (or 2 s).
        let bound = Duration::from_millis(processing_ms / 10).max(Duration::from_secs(2));
        prop_assert!(eta.1 <= bound, "lag {:?} for {processing_ms} ms", eta.1);
    }
}

/// Polls and detection lag of one wait on a job that is pending for `queue_ms`, then
/// processes linearly for `processing_ms`, reporting whole percents as the sandbox does.
fn wait_for_linear_job(
    policy: PollPolicy,
    queue_ms: u64,
    processing_ms: u64,
    draws: &[f64],
) -> (u32, Duration) {
    let mut poller = Poller::new(policy, None);
    let mut random = FixedDraws::new(draws.to_vec());
    let end = queue_ms + processing_ms;
    let mut now = 0u64;
    loop {
        let mut job = if now < queue_ms {
            Job::new("j", JobStatus::Pending)
        } else if now >= end {
            Job::new("j", JobStatus::Completed)
        } else {
            Job::new("j", JobStatus::Processing)
        };
        job.progress = Some(if now >= end {
            100.0
        } else {
            (now.saturating_sub(queue_ms) as f64 * 100.0 / processing_ms as f64)
                .floor()
                .min(99.0)
        });
        match poller
            .on_job(job, Timestamp::from_unix_millis(now), None, &mut random)
            .step
        {
            PollStep::PollAt(at) => now = at.unix_millis(),
            PollStep::Completed(_) => {
                return (poller.polls(), Duration::from_millis(now - end));
            }
            other => panic!("unexpected {other:?}"),
        }
    }
}

#[test]
fn a_projection_landing_just_early_costs_at_most_one_extra_poll() {
    // Found in review: the aimed poll lands 13 ms before the end (the margin is smaller than
    // the projection's uncertainty), so one more read follows it.
    let draws = [0.9999];
    let eta = wait_for_linear_job(PollPolicy::default(), 2_870, 6_423, &draws);
    let plain = wait_for_linear_job(
        PollPolicy {
            progress_eta: false,
            ..PollPolicy::default()
        },
        2_870,
        6_423,
        &draws,
    );
    assert!(eta.0 <= plain.0 + 1, "{eta:?} vs {plain:?}");
    assert!(eta.1 < Duration::from_secs(1), "{eta:?}");
}
