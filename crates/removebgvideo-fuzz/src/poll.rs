//! The poller over arbitrary sequences of statuses, progress, hints and errors: every poll it
//! schedules is after now + min_interval (or exactly at the deadline) and never past it.

use std::time::Duration;

use arbitrary::Unstructured;
use removebgvideo_core::{
    Error, ErrorCode, Job, JobStatus, PollPolicy, PollStep, Poller, SeededDraws, Timestamp,
};

fn millis(u: &mut Unstructured<'_>, max: u64) -> arbitrary::Result<Duration> {
    Ok(Duration::from_millis(u.int_in_range(0..=max)?))
}

fn run(u: &mut Unstructured<'_>) -> arbitrary::Result<()> {
    let initial = millis(u, 20_000)?;
    let policy = PollPolicy {
        initial_interval: initial,
        factor: 1.0 + f64::from(u.int_in_range(0..=900u32)?) / 100.0,
        max_interval: initial + millis(u, 60_000)?,
        jitter: f64::from(u.int_in_range(0..=90u32)?) / 100.0,
        min_interval: millis(u, 5_000)?,
        max_hint: millis(u, 120_000)?,
        progress_eta: u.arbitrary()?,
        max_eta_interval: millis(u, 60_000)?,
        eta_margin: millis(u, 2_000)?,
    };
    policy.check().expect("the policy is within its bounds");
    let start = Timestamp::from_unix_millis(u.int_in_range(0..=4_102_444_800_000)?);
    let deadline = if u.ratio(1, 8)? {
        None
    } else {
        Some(start.plus(millis(u, 3_600_000)?))
    };
    let mut poller = Poller::new(policy.clone(), deadline);
    let mut random = SeededDraws::new(u.arbitrary()?);
    let mut now = start;
    for _ in 0..u.int_in_range(1..=64)? {
        let step = if u.ratio(1, 6)? {
            let mut error = Error::new(
                ErrorCode::from(*u.choose(&["internal_error", "rate_limited", "not_found"])?),
                "injected",
            );
            if u.arbitrary()? {
                error.retry_after =
                    Some(Duration::from_millis(u64::from(u.arbitrary::<u16>()?) * 10));
            }
            match poller.on_error(error, now, &mut random) {
                Ok(step) => step,
                Err(_) => return Ok(()),
            }
        } else {
            let status = *u.choose(&[
                "created",
                "pending",
                "processing",
                "completed",
                "failed",
                "paused",
            ])?;
            let mut job = Job::new("job_1", JobStatus::from(status));
            job.progress = match u.int_in_range(0..=3)? {
                0 => None,
                1 => Some(f64::from(u.int_in_range(0..=100u32)?)),
                2 => Some(f64::from(u.arbitrary::<u32>()?) / 1e3 - 1e6),
                _ => Some(*u.choose(&[f64::NAN, f64::INFINITY, -0.0, 100.0])?),
            };
            let hint = if u.arbitrary()? {
                Some(Duration::from_millis(u64::from(u.arbitrary::<u32>()?)))
            } else {
                None
            };
            poller.on_job(job, now, hint, &mut random).step
        };
        match step {
            PollStep::PollAt(at) => {
                let earliest = now.plus(policy.min_interval);
                match deadline {
                    Some(deadline) => {
                        assert!(at <= deadline, "a poll past the deadline");
                        assert!(at >= earliest.min(deadline), "a poll before min_interval");
                    }
                    None => assert!(at >= earliest, "a poll before min_interval"),
                }
                // The caller polls at `at`, or a little late.
                now = at.plus(millis(u, 3_000)?);
            }
            PollStep::DeadlineReached(_) => {
                assert!(
                    deadline.is_some_and(|d| now >= d),
                    "ended before the deadline"
                );
                return Ok(());
            }
            PollStep::Completed(job) => {
                assert_eq!(job.status, JobStatus::Completed);
                return Ok(());
            }
            PollStep::Failed(job) => {
                assert_eq!(job.status, JobStatus::Failed);
                return Ok(());
            }
        }
    }
    Ok(())
}

pub fn poller(data: &[u8]) {
    let _ = run(&mut Unstructured::new(data));
}
