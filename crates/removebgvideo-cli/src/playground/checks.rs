//! The Integration Verification checks of the API Playground page, each with evidence.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use removebgvideo::{
    CallOptions, CreateJobRequest, ErrorKind, Event, ListJobsQuery, UsageSummaryQuery, WaitOptions,
};
use serde::Serialize;
use serde_json::Value;

use super::Target;

/// The result of one check.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Pass,
    Fail,
    Skipped,
}

/// One check, with what was seen.
#[derive(Clone, Debug, Serialize)]
pub struct Check {
    pub name: &'static str,
    pub status: Status,
    /// What was seen, for a person; for a skipped check, why it was skipped.
    pub evidence: String,
    /// The same figures for a program (request ids, counts, deltas), when the check has any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<Value>,
}

impl Check {
    /// Adds the figures behind the evidence.
    pub fn with_data(mut self, data: Value) -> Self {
        self.data = Some(data);
        self
    }
}

pub fn check(name: &'static str, ok: bool, evidence: String) -> Check {
    Check {
        name,
        status: if ok { Status::Pass } else { Status::Fail },
        evidence,
        data: None,
    }
}

/// A check that was not run, and why.
pub fn skipped(name: &'static str, reason: impl Into<String>) -> Check {
    Check {
        name,
        status: Status::Skipped,
        evidence: reason.into(),
        data: None,
    }
}

/// `url` with one more query parameter (a sandbox hint such as `scenario=stuck`).
pub fn with_query(url: &str, parameter: &str) -> String {
    let separator = if url.contains('?') { '&' } else { '?' };
    format!("{url}{separator}{parameter}")
}

/// Valid key 200, invalid key 401.
pub fn authentication(target: &Target) -> Check {
    let valid = target
        .client
        .usage_summary(&UsageSummaryQuery::default(), &target.call());
    let invalid = target
        .invalid_client
        .usage_summary(&UsageSummaryQuery::default(), &target.call());
    match (valid, invalid) {
        (Ok(_), Err(error))
            if error.kind() == ErrorKind::Authentication && error.status == Some(401) =>
        {
            check(
                "authentication",
                true,
                format!(
                    "valid key: 200; invalid key: 401 {} (request_id {})",
                    error.code,
                    error.request_id.unwrap_or_default()
                ),
            )
        }
        (valid, invalid) => check(
            "authentication",
            false,
            format!(
                "valid key: {:?}; invalid key: {:?}",
                valid.map(|_| 200).map_err(|e| e.to_string()),
                invalid.map(|_| 200).map_err(|e| e.to_string())
            ),
        ),
    }
}

/// A bounded burst until 429, then a call that backs off as told and succeeds.
pub fn rate_limits(target: &Target, skip: bool) -> Check {
    if skip {
        return skipped("rate_limits", "skipped with --skip-rate-limit");
    }
    const BURST: usize = 10;
    let limited = target
        .rate_limited_client
        .as_ref()
        .unwrap_or(&target.client);
    let no_retries = CallOptions {
        max_retries: Some(0),
        ..target.call()
    };
    let answers: Vec<_> = (0..BURST)
        .map(|_| limited.usage_summary(&UsageSummaryQuery::default(), &no_retries))
        .collect();
    let refused: Vec<_> = answers
        .iter()
        .filter_map(|a| a.as_ref().err())
        .filter(|e| e.kind() == ErrorKind::RateLimit)
        .collect();
    let Some(first) = refused.first() else {
        return skipped(
            "rate_limits",
            format!("a burst of {BURST} requests got no 429: the limit was not reached"),
        );
    };
    let retries = Arc::new(Mutex::new(Vec::new()));
    let sink = retries.clone();
    let options = CallOptions {
        on_event: Some(Arc::new(move |e: &Event| {
            if let Event::Retry {
                reason, delay_ms, ..
            } = e
            {
                sink.lock().expect("events").push(format!(
                    "{reason} -> waited {:.1} s",
                    *delay_ms as f64 / 1000.0
                ));
            }
        })),
        ..target.call()
    };
    let started = Instant::now();
    let recovered = limited.usage_summary(&UsageSummaryQuery::default(), &options);
    let retries = retries.lock().expect("events").clone();
    check(
        "rate_limits",
        recovered.is_ok(),
        format!(
            "burst of {BURST}: {} answered 429 (Retry-After {} s); the next call {} after {:.1} s [{}]",
            refused.len(),
            first.retry_after.map(|d| d.as_secs_f64()).unwrap_or(0.0),
            if recovered.is_ok() {
                "succeeded"
            } else {
                "still failed"
            },
            started.elapsed().as_secs_f64(),
            retries.join("; ")
        ),
    )
}

/// The same create sent twice with one Idempotency-Key makes one job. Returns the draft it
/// made, which later checks read and wait on (a draft costs nothing and never finishes).
pub fn idempotency(target: &Target) -> (Check, Option<String>) {
    let key = format!("playground-{}", uuid::Uuid::new_v4());
    let options = CallOptions {
        idempotency_key: Some(key.clone()),
        ..target.call()
    };
    let draft = CreateJobRequest {
        auto_start: Some(false),
        ..CreateJobRequest::new(target.video_urls[0].clone())
    };
    let first = target.client.create_job(&draft, &options);
    let second = target.client.create_job(&draft, &options);
    let listed = target.client.list_jobs(
        &ListJobsQuery {
            limit: Some(100),
            ..Default::default()
        },
        &target.call(),
    );
    match (first, second, listed) {
        (Ok(a), Ok(b), Ok(list)) => {
            let count = list.jobs.iter().filter(|j| j.id == a.id).count();
            let check = check(
                "idempotency",
                a.id == b.id && count == 1,
                format!(
                    "two creates with Idempotency-Key {key} returned {} and {}; the job is listed {count} time(s)",
                    a.id, b.id
                ),
            );
            (check, Some(a.id))
        }
        (a, b, list) => {
            let draft = a.as_ref().ok().map(|x| x.id.clone());
            let check = check(
                "idempotency",
                false,
                format!(
                    "{:?} / {:?} / {:?}",
                    a.map(|x| x.id).map_err(|e| e.to_string()),
                    b.map(|x| x.id).map_err(|e| e.to_string()),
                    list.map(|_| ()).map_err(|e| e.to_string())
                ),
            );
            (check, draft)
        }
    }
}

/// Every response recorded had a request id, and every job response a job id.
pub fn observability(responses: &[super::ResponseRecord]) -> Check {
    let missing: Vec<&super::ResponseRecord> = responses
        .iter()
        .filter(|r| r.request_id.is_none() || r.job_id.is_empty())
        .collect();
    check(
        "observability",
        !responses.is_empty() && missing.is_empty(),
        format!(
            "{} responses recorded, {} without a request id or job id",
            responses.len(),
            missing.len()
        ),
    )
}

/// An invalid request, a missing job and (on the sandbox) a failing job are typed errors.
pub fn failure_branch(target: &Target) -> Check {
    let mut evidence = Vec::new();
    let mut ok = true;
    let invalid = CreateJobRequest {
        model: Some("ultra".into()),
        ..CreateJobRequest::new(target.video_urls[0].clone())
    };
    match target.client.create_job(&invalid, &target.call()) {
        Err(e) if e.kind() == ErrorKind::Validation => evidence.push(format!(
            "invalid request: {} at {} (not sent)",
            e.code, e.problems[0].path
        )),
        other => {
            ok = false;
            evidence.push(format!(
                "invalid request: unexpected {:?}",
                other.map(|a| a.id)
            ));
        }
    }
    match target
        .client
        .get_job("job_playground_missing", &target.call())
    {
        Err(e) if e.kind() == ErrorKind::NotFound => evidence.push(format!(
            "missing job: {} {} (request_id {})",
            e.status.unwrap_or(0),
            e.code,
            e.request_id.unwrap_or_default()
        )),
        other => {
            ok = false;
            evidence.push(format!("missing job: unexpected {:?}", other.map(|j| j.id)));
        }
    }
    if target.sandbox.is_some() {
        let failing = CreateJobRequest::new(with_query(
            &target.video_urls[0],
            "scenario=fail&error=sandbox%20decoder%20failure",
        ));
        let result = target
            .client
            .create_job(&failing, &target.call())
            .and_then(|a| {
                target.client.wait(
                    &a.id,
                    &WaitOptions {
                        call: target.call(),
                        ..WaitOptions::default()
                    },
                )
            });
        match result {
            Err(e) if e.kind() == ErrorKind::JobFailed => evidence.push(format!(
                "failing job: {} with {:?}",
                e.code,
                e.job
                    .as_ref()
                    .and_then(|j| j.error.clone())
                    .unwrap_or_default()
            )),
            other => {
                ok = false;
                evidence.push(format!(
                    "failing job: unexpected {:?}",
                    other.map(|j| j.status)
                ));
            }
        }
    }
    check("failure_branch", ok, evidence.join("; "))
}
