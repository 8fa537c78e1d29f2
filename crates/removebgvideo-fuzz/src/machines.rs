//! The rate gate and the call machine over arbitrary answers, failures, cancels and times.
//!
//! - The gate: a reserved send time is never before the asking time, never inside the pause a
//!   429 (here or elsewhere) set, the pace never passes the ceiling (as it changes), and with
//!   nothing out a key left idle is never stopped, whatever the bucket hints said.
//! - A call: it ends within its retries (a transmit per attempt, never one more), never sends
//!   before the time it asked to be woken at, never sends a POST again once its outcome may
//!   have acted while the server is not known to honour keys, and once ended stays ended.

use std::time::Duration;

use arbitrary::Unstructured;
use removebgvideo_core::machine::{
    CallMachine, IdempotencySupport, Machine, Shared, TransmitBody, TransportError,
    TransportErrorKind,
};
use removebgvideo_core::rate::{BucketHint, Priority, RateGate};
use removebgvideo_core::retry;
use removebgvideo_core::{
    ApiKey, CreateJobRequest, FixedDraws, Job, JobAccepted, Replay, RequestBuilder, RetryBudget,
    RetryPolicy, Timestamp,
};

const T0: Timestamp = Timestamp::from_unix_secs(1_795_000_000);

fn later(u: &mut Unstructured<'_>, now: Timestamp) -> arbitrary::Result<Timestamp> {
    Ok(now.plus(Duration::from_millis(u.int_in_range(0..=5_000)?)))
}

fn gate_run(u: &mut Unstructured<'_>) -> arbitrary::Result<()> {
    let ceiling_of = |u: &mut Unstructured<'_>| -> arbitrary::Result<Option<f64>> {
        Ok(if u.arbitrary()? {
            Some(f64::from(u.int_in_range(1..=500u32)?) / 10.0)
        } else {
            None
        })
    };
    let mut ceiling = ceiling_of(u)?;
    let phase = f64::from(u.int_in_range(0..=1000u32)?) / 1000.0;
    let mut gate = RateGate::new(ceiling).with_phase(phase);
    let mut now = T0;
    let mut paused_until = T0;
    let mut out = 0u32;
    for _ in 0..u.int_in_range(0..=300)? {
        now = later(u, now)?;
        match u.int_in_range(0..=5)? {
            0 | 1 => {
                let priority = if u.arbitrary()? {
                    Priority::Write
                } else {
                    Priority::Read
                };
                let slot = gate.reserve(now, priority);
                assert!(slot.at >= now, "a slot before the asking time");
                assert!(slot.at >= paused_until, "a slot inside a 429's pause");
                assert!(slot.firm || slot.at > now, "asked to ask again at once");
                if slot.firm && slot.at == now {
                    gate.on_sent();
                    out += 1;
                }
            }
            2 | 3 => {
                let status = if u.ratio(1, 3)? { 429 } else { 200 };
                let wait = Duration::from_millis(u.int_in_range(0..=10_000)?);
                let hint = if u.arbitrary()? { Some(wait) } else { None };
                let bucket = if u.arbitrary()? {
                    let limit = u.int_in_range(1..=200u32)?;
                    Some(BucketHint {
                        limit,
                        remaining: u.int_in_range(0..=limit)?,
                    })
                } else {
                    None
                };
                let sent_at = Timestamp::from_unix_millis(
                    u.int_in_range(T0.unix_millis()..=now.unix_millis())?,
                );
                if out > 0 {
                    gate.on_returned();
                    out -= 1;
                }
                gate.on_answer(status, hint, bucket, sent_at, now);
                if status == 429 {
                    let pause = hint.unwrap_or(Duration::from_secs(1));
                    paused_until = paused_until.max(now.plus(pause));
                }
            }
            4 => {
                let until = later(u, now)?;
                gate.on_limited_elsewhere(until);
                paused_until = paused_until.max(until);
            }
            _ => {
                ceiling = ceiling_of(u)?;
                gate.set_ceiling(ceiling);
            }
        }
        if let (Some(pace), Some(ceiling)) = (gate.pace(), ceiling) {
            assert!(
                pace <= ceiling + 1e-9,
                "pace {pace} above the ceiling {ceiling}"
            );
        }
    }
    // Nothing out: the gate lets a request go once every pause is over, whatever the hints
    // said (a stale hint never stops the key).
    while out > 0 {
        gate.on_returned();
        out -= 1;
    }
    let after = paused_until.max(now).plus(Duration::from_secs(60));
    let slot = gate.reserve(after, Priority::Write);
    assert!(
        slot.firm && slot.at <= after.plus(Duration::from_secs(20)),
        "a key left idle is stopped: {slot:?}"
    );
    Ok(())
}

/// The rate gate (see the module doc).
pub fn rate_gate(data: &[u8]) {
    let _ = gate_run(&mut Unstructured::new(data));
}

fn shared(u: &mut Unstructured<'_>, max_retries: u32) -> arbitrary::Result<Shared> {
    let idempotency = match u.int_in_range(0..=2)? {
        0 => IdempotencySupport::Detect,
        1 => IdempotencySupport::Honoured,
        _ => IdempotencySupport::NotHonoured,
    };
    let policy = RetryPolicy {
        max_retries,
        ..RetryPolicy::default()
    };
    Ok(Shared::new(
        policy,
        RetryBudget::default(),
        Duration::from_secs(60),
        Duration::from_secs(60),
        idempotency,
        Box::new(FixedDraws::new(vec![0.5])),
    ))
}

fn answer_body(u: &mut Unstructured<'_>, status: u16) -> arbitrary::Result<Vec<u8>> {
    Ok(match u.int_in_range(0..=3)? {
        0 if status < 300 => br#"{"id":"job_1","status":"queued"}"#.to_vec(),
        1 => format!(r#"{{"error":{{"code":"e{status}","message":"x"}}}}"#).into_bytes(),
        2 => Vec::new(),
        _ => u.arbitrary::<Vec<u8>>()?,
    })
}

fn call_run(u: &mut Unstructured<'_>) -> arbitrary::Result<()> {
    let max_retries = u.int_in_range(0..=4)?;
    let shared = shared(u, max_retries)?;
    let builder = RequestBuilder::new(ApiKey::new("rbv_fuzz"), "fuzz");
    let post = u.arbitrary::<bool>()?;
    let deadline = if u.arbitrary()? {
        Some(T0.plus(Duration::from_millis(u.int_in_range(0..=120_000)?)))
    } else {
        None
    };
    let create = builder
        .create_job(&CreateJobRequest::new("https://example.com/a.mp4"), "key-1")
        .expect("a valid request");
    let replay = shared.replay(&create);
    if post {
        let machine = CallMachine::<JobAccepted>::new(
            create,
            TransmitBody::Json,
            &shared,
            None,
            None,
            deadline,
        );
        drive(u, machine, replay == Replay::Unsafe, max_retries)
    } else {
        let request = builder.get_job("job_1").expect("a valid request");
        let machine =
            CallMachine::<Job>::new(request, TransmitBody::Json, &shared, None, None, deadline);
        drive(u, machine, false, max_retries)
    }
}

/// Drives one call with arbitrary answers; `unsafe_replay`: a re-send could act twice.
fn drive<M: Machine>(
    u: &mut Unstructured<'_>,
    mut machine: M,
    unsafe_replay: bool,
    max_retries: u32,
) -> arbitrary::Result<()> {
    let mut now = T0;
    let mut sends = 0u32;
    let mut may_have_acted = false;
    let mut ended = false;
    for _ in 0..64 {
        while machine.poll_event().is_some() {}
        if machine.poll_outcome().is_some() {
            ended = true;
            break;
        }
        now = later(u, now)?;
        if u.ratio(1, 16)? {
            machine.cancel();
            continue;
        }
        if let Some(at) = machine.poll_timeout()
            && now < at
        {
            assert!(
                machine.poll_transmit(now).is_none(),
                "sent before its wake-up time"
            );
            now = at;
            machine.handle_timeout(now);
            continue;
        }
        machine.handle_timeout(now);
        if machine.poll_transmit(now).is_none() {
            continue;
        }
        sends += 1;
        assert!(sends <= max_retries + 1, "more sends than attempts");
        assert!(
            !(unsafe_replay && may_have_acted),
            "a POST sent again after it may have acted, to a server not known to honour keys"
        );
        now = later(u, now)?;
        if u.arbitrary()? {
            let status: u16 = *u.choose(&[200, 201, 400, 409, 429, 500, 502, 503, 504])?;
            let headers = crate::headers(u, &["retry-after", "retry-after-ms", "x-request-id"])?;
            let body = answer_body(u, status)?;
            may_have_acted |= retry::MAY_HAVE_ACTED_STATUSES.contains(&status);
            machine.handle_response(status, headers, &body, now);
        } else {
            let kind = *u.choose(&[
                TransportErrorKind::ConnectFailed,
                TransportErrorKind::NotSentWhole,
                TransportErrorKind::TimedOut,
                TransportErrorKind::Broken,
            ])?;
            let failure = TransportError::new(kind, "fuzz");
            may_have_acted |= retry::may_have_acted(&failure.outcome());
            machine.handle_transport_error(failure, now);
        }
    }
    if ended || machine.poll_outcome().is_some() {
        let later = now.plus(Duration::from_secs(3600));
        machine.cancel();
        machine.handle_timeout(later);
        assert!(
            machine.poll_transmit(later).is_none(),
            "an ended call sends again"
        );
    }
    Ok(())
}

/// The call machine (see the module doc).
pub fn call_machine(data: &[u8]) {
    let _ = call_run(&mut Unstructured::new(data));
}
