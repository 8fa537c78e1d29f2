//! The paths the page's FAQ asks to verify besides success and failure: timeout, retry and
//! insufficient credits, each provoked only where that is safe.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use removebgvideo::{
    CallOptions, CreateJobRequest, ErrorCode, ErrorKind, Event, StartJobRequest, UsageSummaryQuery,
    WaitLimit, WaitOptions,
};
use removebgvideo_sandbox::FAULT_HEADER;
use serde_json::json;

use super::Target;
use super::checks::{Check, check, skipped, with_query};

/// The deadline of the timeout check on the embedded sandbox: short, as the playground is the
/// README's first command, and long enough for a few polls of its fast clock.
const SANDBOX_WAIT_DEADLINE: Duration = Duration::from_millis(300);
/// The deadline against a real server: one poll at the client's default schedule, then the end.
const SERVER_WAIT_DEADLINE: Duration = Duration::from_secs(1);
/// How late after its deadline a wait may end and still count as ending "at" it: the last
/// poll in flight and a loaded machine.
const DEADLINE_SLACK: Duration = Duration::from_secs(1);

/// One retry the client announced.
#[derive(Clone, Debug)]
struct Retried {
    reason: String,
    delay_ms: u64,
    request_id: Option<String>,
}

/// Call options that also record the client's `Event::Retry`s.
fn recording(target: &Target, mut call: CallOptions) -> (CallOptions, Arc<Mutex<Vec<Retried>>>) {
    let retries = Arc::new(Mutex::new(Vec::new()));
    let sink = retries.clone();
    call.cancel = target.call().cancel;
    call.on_event = Some(Arc::new(move |event: &Event| {
        if let Event::Retry {
            reason,
            delay_ms,
            request_id,
            ..
        } = event
        {
            sink.lock().expect("retries").push(Retried {
                reason: reason.clone(),
                delay_ms: *delay_ms,
                request_id: request_id.clone(),
            });
        }
    }));
    (call, retries)
}

fn taken(retries: &Arc<Mutex<Vec<Retried>>>) -> Vec<Retried> {
    retries.lock().expect("retries").clone()
}

/// A wait on a job that does not finish ends with `wait_timeout` at its deadline. On the
/// sandbox the job is a `scenario=stuck` one (processing forever); against a real server it is
/// the idempotency check's draft, which is never started, so nothing is spent. Returns the job
/// it created, if any (for the usage check's count).
pub fn timeout(target: &Target, draft: Option<&str>) -> (Check, Option<String>) {
    const NAME: &str = "timeout";
    let (job_id, deadline, what, created) = if target.sandbox.is_some() {
        let stuck = CreateJobRequest::new(with_query(&target.video_urls[0], "scenario=stuck"));
        match target.client.create_job(&stuck, &target.call()) {
            Ok(accepted) => (
                accepted.id.clone(),
                SANDBOX_WAIT_DEADLINE,
                "a job that stays processing (scenario=stuck)",
                Some(accepted.id),
            ),
            Err(e) => {
                return (
                    check(NAME, false, format!("creating the stuck job failed: {e}")),
                    None,
                );
            }
        }
    } else {
        let Some(draft) = draft else {
            return (
                skipped(
                    NAME,
                    "no draft to wait on (the idempotency check made none), and a job that does not finish cannot be made safely on a real server",
                ),
                None,
            );
        };
        (
            draft.to_owned(),
            SERVER_WAIT_DEADLINE,
            "the idempotency check's draft (never started, costs nothing)",
            None,
        )
    };
    let options = WaitOptions {
        limit: WaitLimit::After(deadline),
        poll: target.poll.clone(),
        call: target.call(),
    };
    let started = Instant::now();
    let result = target.client.wait(&job_id, &options);
    let elapsed = started.elapsed();
    let (ok, evidence, data) = match result {
        Err(e) if e.kind() == ErrorKind::WaitTimeout => {
            let last = e.job.as_ref().map(|j| j.status.to_string());
            let on_time = elapsed >= deadline && elapsed <= deadline + DEADLINE_SLACK;
            let unfinished = e.job.as_ref().is_some_and(|j| !j.status.is_terminal());
            (
                on_time && unfinished,
                format!(
                    "a wait with a {:.2} s deadline on {job_id}, {what}, ended with {} after {:.3} s; last status {} (request_id {})",
                    deadline.as_secs_f64(),
                    e.code,
                    elapsed.as_secs_f64(),
                    last.as_deref().unwrap_or("never seen"),
                    e.request_id.as_deref().unwrap_or("-")
                ),
                json!({
                    "job_id": job_id,
                    "deadline_seconds": deadline.as_secs_f64(),
                    "elapsed_seconds": elapsed.as_secs_f64(),
                    "error_code": e.code.to_string(),
                    "last_status": last,
                    "request_id": e.request_id,
                }),
            )
        }
        other => (
            false,
            format!(
                "a wait with a {:.2} s deadline on {job_id} ended after {:.3} s with {:?}, not wait_timeout",
                deadline.as_secs_f64(),
                elapsed.as_secs_f64(),
                other.map(|j| j.status).map_err(|e| e.code)
            ),
            json!({ "job_id": job_id }),
        ),
    };
    (check(NAME, ok, evidence).with_data(data), created)
}

/// A transient 503 and a dropped answer are each recovered by one retry, with the request
/// ids of the failed and the recovering attempt. Only the sandbox can be made to fail on
/// purpose (its `X-Sandbox-Fault` header), so a real server skips this check.
pub fn retry(target: &Target, job_id: Option<&str>) -> Check {
    const NAME: &str = "retry";
    let Some(sandbox) = &target.sandbox else {
        return skipped(
            NAME,
            "needs the embedded sandbox: faults are injected with its X-Sandbox-Fault header, and a real server cannot be made to fail safely",
        );
    };
    let Some(job_id) = job_id else {
        return check(
            NAME,
            false,
            "no job to read (the idempotency check made none)".into(),
        );
    };
    let plan = uuid::Uuid::new_v4();
    let mut ok = true;
    let mut evidence = Vec::new();
    let mut probes = Vec::new();
    for (fault, what) in [
        ("status=503", "a transient HTTP 503"),
        ("drop-after", "a dropped answer"),
    ] {
        // times=1: only the first attempt fails; a unique id keeps the plan this run's own.
        let header = format!("{fault}; times=1; id=playground-{plan}");
        let (call, retries) = recording(
            target,
            CallOptions {
                headers: vec![(FAULT_HEADER.to_owned(), header)],
                ..CallOptions::default()
            },
        );
        let result = target.client.get_job(job_id, &call);
        let retries = taken(&retries);
        let path = format!("/v1/jobs/{job_id}");
        // The failed attempt, as the sandbox logged it: a dropped answer never reached the
        // client, so its request id is known only there.
        let failed = sandbox
            .request_log()
            .into_iter()
            .rev()
            .find(|r| r.path == path && r.fault.as_deref() == Some(fault));
        let (failed_request_id, from_log) = match retries.first().and_then(|r| r.request_id.clone())
        {
            Some(id) => (Some(id), false),
            None => (failed.as_ref().map(|r| r.request_id.clone()), true),
        };
        match result {
            Ok(job) if retries.len() == 1 && failed_request_id.is_some() => {
                let retry = &retries[0];
                evidence.push(format!(
                    "get_job with {what}: {} (request_id {}{}), retried after {:.2} s, then 200 (request_id {})",
                    retry.reason,
                    failed_request_id.as_deref().unwrap_or("-"),
                    if from_log {
                        ", from the sandbox's log: the answer never arrived"
                    } else {
                        ""
                    },
                    retry.delay_ms as f64 / 1000.0,
                    job.request_id.as_deref().unwrap_or("-")
                ));
                probes.push(json!({
                    "fault": fault,
                    "failed_request_id": failed_request_id,
                    "failed_status": failed.and_then(|r| r.status),
                    "retries": retries.len(),
                    "reason": retry.reason,
                    "recovered_request_id": job.request_id,
                }));
            }
            other => {
                ok = false;
                evidence.push(format!(
                    "get_job with {what}: {} retries ({}), ended with {:?}",
                    retries.len(),
                    retries
                        .iter()
                        .map(|r| r.reason.as_str())
                        .collect::<Vec<_>>()
                        .join(", "),
                    other.map(|j| j.status).map_err(|e| e.to_string())
                ));
                probes.push(json!({ "fault": fault, "retries": retries.len() }));
            }
        }
    }
    check(NAME, ok, evidence.join("; ")).with_data(json!({ "probes": probes }))
}

/// A start with no credits is answered 402 `insufficient_credits` and is not retried: one
/// request, no `Event::Retry`. Runs with the sandbox's no-credit key, or against a real server
/// only with `--no-credits-key` (and not when that key reports credits left).
pub fn insufficient_credits(target: &Target) -> Check {
    const NAME: &str = "insufficient_credits";
    let Some(poor) = &target.no_credits_client else {
        return skipped(
            NAME,
            "needs a key without credits against a real server: pass --no-credits-key",
        );
    };
    if target.sandbox.is_none() {
        // A key that still has credits would start a paid job: never on a guess.
        match poor.usage_summary(&UsageSummaryQuery::default(), &target.call()) {
            Ok(summary) if summary.credits_remaining.is_some_and(|c| c > 0.0) => {
                return skipped(
                    NAME,
                    format!(
                        "the --no-credits-key has {} credits left: starting a job with it would spend them",
                        summary.credits_remaining.unwrap_or_default()
                    ),
                );
            }
            Ok(_) => {}
            Err(e) => {
                return check(
                    NAME,
                    false,
                    format!("reading the --no-credits-key's usage failed: {e}"),
                );
            }
        }
    }
    let draft = CreateJobRequest {
        auto_start: Some(false),
        ..CreateJobRequest::new(target.video_urls[0].clone())
    };
    let accepted = match poor.create_job(&draft, &target.call()) {
        Ok(accepted) => accepted,
        Err(e) => {
            return check(
                NAME,
                false,
                format!("creating a draft with the key without credits failed: {e}"),
            );
        }
    };
    let (call, retries) = recording(target, CallOptions::default());
    let result = poor.start_job(&accepted.id, &StartJobRequest::default(), &call);
    let retries = taken(&retries);
    // Timing-free counting where the server can be asked: the sandbox's request log.
    let start_path = format!("/v1/jobs/{}/start", accepted.id);
    let requests = target.sandbox.as_ref().map(|s| {
        s.request_log()
            .iter()
            .filter(|r| r.method == "POST" && r.path == start_path)
            .count()
    });
    let after = poor
        .get_job(&accepted.id, &target.call())
        .map(|j| j.status.to_string())
        .ok();
    let counted = requests
        .map(|n| format!("{n} request(s) in the sandbox's log"))
        .unwrap_or_else(|| "no log to count in".into());
    match result {
        Err(e) if e.status == Some(402) && e.code == ErrorCode::InsufficientCredits => {
            let ok = retries.is_empty() && requests.is_none_or(|n| n == 1);
            check(
                NAME,
                ok,
                format!(
                    "start of draft {} with a key without credits: 402 {} (request_id {}), {} retries, {counted}; the job is still {}",
                    accepted.id,
                    e.code,
                    e.request_id.as_deref().unwrap_or("-"),
                    retries.len(),
                    after.as_deref().unwrap_or("unknown")
                ),
            )
            .with_data(json!({
                "job_id": accepted.id,
                "status": 402,
                "code": e.code.to_string(),
                "request_id": e.request_id,
                "retries": retries.len(),
                "requests": requests,
                "job_status_after": after,
            }))
        }
        other => check(
            NAME,
            false,
            format!(
                "start of draft {} with a key without credits: expected 402 insufficient_credits, got {:?} after {} retries",
                accepted.id,
                other.map(|a| a.status).map_err(|e| e.to_string()),
                retries.len()
            ),
        )
        .with_data(json!({ "job_id": accepted.id, "retries": retries.len() })),
    }
}
