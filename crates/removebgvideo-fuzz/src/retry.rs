//! Retry decisions with arbitrary policies, budgets, outcomes and headers: never a panic, never
//! a re-sent POST whose outcome is unknown, never a delay beyond what the policy allows.

use std::time::Duration;

use arbitrary::Unstructured;
use removebgvideo_core::retry::{self, MAY_HAVE_ACTED_STATUSES, Outcome};
use removebgvideo_core::{
    ErrorCode, ErrorKind, FixedDraws, Replay, RetryBudget, RetryDecision, RetryPolicy, Timestamp,
};

fn millis(u: &mut Unstructured<'_>) -> arbitrary::Result<Duration> {
    Ok(Duration::from_millis(u.int_in_range(0..=120_000)?))
}

fn run(u: &mut Unstructured<'_>) -> arbitrary::Result<()> {
    let policy = RetryPolicy {
        max_retries: u.int_in_range(0..=10)?,
        base_delay: millis(u)?,
        max_delay: millis(u)?,
        rate_limit_base_delay: millis(u)?,
        rate_limit_max_delay: millis(u)?,
        max_retry_after: millis(u)?,
    };
    let mut budget = RetryBudget::new(
        u.int_in_range(0..=1000)?,
        u.int_in_range(0..=20)?,
        u.int_in_range(0..=20)?,
        u.int_in_range(0..=5)?,
    )
    .with_tokens(u.int_in_range(0..=1000)?);
    let before = budget.tokens();
    let retries_done = u.int_in_range(0..=12)?;
    let replay = if u.arbitrary()? {
        Replay::Safe
    } else {
        Replay::Unsafe
    };
    let now = Timestamp::from_unix_millis(u.int_in_range(0..=4_102_444_800_000)?);
    let headers = crate::headers(u, &["retry-after", "retry-after-ms"])?;
    let code = ErrorCode::from(u.arbitrary::<String>()?.as_str());
    let status: u16 = u.int_in_range(100..=599)?;
    let outcome = match u.int_in_range(0..=2)? {
        0 => Outcome::Status {
            status,
            code: &code,
            headers: &headers,
        },
        1 => Outcome::ConnectFailed,
        _ => Outcome::NoAnswer {
            timed_out: u.arbitrary()?,
        },
    };
    let draws: Vec<f64> = (0..4)
        .map(|_| u.int_in_range(0..=999_999u32).map(|n| f64::from(n) / 1e6))
        .collect::<arbitrary::Result<_>>()?;
    let decision = retry::decide(
        &policy,
        &mut budget,
        retries_done,
        &outcome,
        replay,
        now,
        &mut FixedDraws::new(draws),
    );
    assert!(budget.tokens() <= before, "a decision never adds tokens");
    if let RetryDecision::Retry { delay, .. } = decision {
        assert!(
            retries_done < policy.max_retries,
            "retries stay within the policy"
        );
        let longest = policy
            .max_delay
            .max(policy.rate_limit_max_delay)
            .max(policy.max_retry_after);
        assert!(delay <= longest, "{delay:?} beyond {longest:?}");
        if replay == Replay::Unsafe {
            assert!(
                !matches!(outcome, Outcome::NoAnswer { .. }),
                "a POST that got no answer is re-sent only when its key is honoured"
            );
            if let Outcome::Status { status, .. } = outcome {
                assert!(
                    !MAY_HAVE_ACTED_STATUSES.contains(&status),
                    "a POST that got {status} is re-sent only when its key is honoured"
                );
            }
        }
        if let Outcome::Status { status, code, .. } = outcome {
            assert!(retry::RETRYABLE_STATUSES.contains(&status));
            assert_ne!(code.kind(Some(status)), ErrorKind::InsufficientCredits);
        }
    }
    Ok(())
}

pub fn decisions(data: &[u8]) {
    let _ = run(&mut Unstructured::new(data));
}
