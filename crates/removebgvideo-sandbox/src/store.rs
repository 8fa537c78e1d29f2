//! The sandbox's state (the store): accounts, uploads, jobs and usage, advanced lazily to `now`.
//!
//! Pure logic: every method takes the virtual `now`, so the HTTP layer stays thin and the
//! lifecycle is computed, not simulated by timers (timers only trigger webhook deliveries).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::time::Duration;
use std::time::Instant;

use removebgvideo_core::{
    Background, CreateJobRequest, ErrorCode, Job, JobAccepted, JobList, JobStatus, ListJobsQuery,
    Model, OutputFormat, Problem, StartJobRequest, Timestamp, UsageEvent, UsageSummary,
    WebhookEventType, estimate_credits, units, webhook,
};
use serde_json::{Value, json};

use crate::config::{KeyConfig, SandboxConfig};
use crate::lifecycle::{Run, RunOutcome, Scenario, hints_from_url, processing_time};
use crate::ratelimit::TokenBucket;

/// Expired output tokens remembered per job, so a recently expired link answers 403
/// (expired) rather than 404; older ones are forgotten, so refreshing cannot grow the state.
const KEPT_EXPIRED_TOKENS: usize = 3;

/// An error answer: HTTP status, code, message and the problems of a rejected request.
#[derive(Clone, Debug, PartialEq)]
pub struct Failure {
    /// HTTP status.
    pub status: u16,
    /// Stable code.
    pub code: ErrorCode,
    /// A sentence.
    pub message: String,
    /// Each problem with the request.
    pub problems: Vec<Problem>,
}

impl Failure {
    /// An error answer without problems.
    pub fn new(status: u16, code: ErrorCode, message: impl Into<String>) -> Self {
        Failure {
            status,
            code,
            message: message.into(),
            problems: Vec::new(),
        }
    }

    /// 404 for a job this key cannot see.
    pub fn job_not_found(id: &str) -> Self {
        Failure::new(
            404,
            ErrorCode::NotFound,
            format!("No job {id:?} for this API key"),
        )
    }

    /// 400 `invalid_request` from a core validation error.
    pub fn from_validation(error: removebgvideo_core::Error) -> Self {
        Failure {
            status: 400,
            code: ErrorCode::InvalidRequest,
            message: error.message,
            problems: error.problems,
        }
    }

    /// The JSON error body (the transport adds `request_id`).
    pub fn body(&self) -> Value {
        let mut error = json!({ "code": self.code, "message": self.message });
        if !self.problems.is_empty() {
            error["problems"] = json!(self.problems);
        }
        json!({ "error": error })
    }
}

/// An account: one API key, its credits and its rate limit.
#[derive(Debug)]
pub struct Account {
    /// Credits left.
    pub credits: f64,
    /// The rate limit.
    pub bucket: TokenBucket,
}

/// A stored upload.
#[derive(Clone, Debug)]
pub struct Upload {
    /// The key that uploaded it.
    pub key: String,
    /// The file on disk.
    pub path: std::path::PathBuf,
    /// Its name.
    pub filename: String,
    /// Its MIME type.
    pub content_type: String,
    /// The duration read from its MP4 header, when parseable.
    pub duration_secs: Option<f64>,
}

/// A time-bound link to a job's output.
#[derive(Clone, Debug)]
pub struct OutputLink {
    /// The secret part of the URL.
    pub token: String,
    /// Real time after which the link answers 403.
    pub expires: Instant,
}

/// A webhook event waiting to be delivered.
#[derive(Clone, Debug, PartialEq)]
pub struct Delivery {
    /// The job.
    pub job_id: String,
    /// The target.
    pub url: String,
    /// The event.
    pub event: WebhookEventType,
    /// The body: `{"event", "data": job}`.
    pub body: Vec<u8>,
}

#[derive(Debug)]
struct JobRecord {
    id: String,
    key: String,
    created_at: Timestamp,
    request: CreateJobRequest,
    model: Model,
    output_format: OutputFormat,
    duration_secs: f64,
    scenario: Scenario,
    runs: u32,
    run: Option<Run>,
    /// The status last materialized, to see transitions.
    status: JobStatus,
    progress: f64,
    error: Option<String>,
    reserved_credits: f64,
    credits_used: f64,
    billing_status: Option<&'static str>,
    webhook_url: Option<String>,
    webhook_events: BTreeMap<String, Value>,
    output: Option<OutputLink>,
    /// The most recent expired output tokens, oldest first (at most `KEPT_EXPIRED_TOKENS`).
    expired_tokens: VecDeque<String>,
}

/// The whole state behind one mutex.
#[derive(Debug)]
pub struct Store {
    config: SandboxConfig,
    accounts: HashMap<String, Account>,
    uploads: HashMap<String, Upload>,
    jobs: HashMap<String, JobRecord>,
    /// Job ids per key, oldest first.
    jobs_by_key: HashMap<String, Vec<String>>,
    /// Jobs whose run has not ended.
    active: HashSet<String>,
    /// When each job in flight may next change status (its run leaving the queue, or ending),
    /// soonest first: `materialize` looks at these only, so its cost follows the changes due,
    /// not the jobs in flight (walking 10,000 of them on every request made creating them
    /// quadratic). A moment to look, not a promise: the status comes from the run at `now`,
    /// and a change that has not shown yet is looked at again a millisecond later.
    due: BTreeSet<(Timestamp, String)>,
    /// The virtual time of the latest `materialize`: the progress shown of a job in flight.
    now: Timestamp,
    /// Output tokens to job ids.
    outputs: HashMap<String, String>,
    events: HashMap<String, Vec<UsageEvent>>,
    next_id: u64,
    /// Jobs `materialize` has looked at, so a test can hold its cost to the due changes.
    #[cfg(test)]
    examined: u64,
}

impl Store {
    /// The initial state for a configuration.
    pub fn new(config: &SandboxConfig, now: Instant) -> Self {
        let accounts = config
            .all_keys()
            .into_iter()
            .map(
                |KeyConfig {
                     key,
                     credits,
                     rate_per_second,
                     burst,
                 }| {
                    (
                        key,
                        Account {
                            credits,
                            bucket: TokenBucket::new(burst, rate_per_second, now),
                        },
                    )
                },
            )
            .collect();
        Store {
            config: config.clone(),
            accounts,
            uploads: HashMap::new(),
            jobs: HashMap::new(),
            jobs_by_key: HashMap::new(),
            active: HashSet::new(),
            due: BTreeSet::new(),
            now: Timestamp::from_unix_millis(0),
            outputs: HashMap::new(),
            events: HashMap::new(),
            next_id: 1,
            #[cfg(test)]
            examined: 0,
        }
    }

    fn next_id(&mut self, prefix: &str) -> String {
        let id = format!("{prefix}_{:06}{:04x}", self.next_id, fastrand::u16(..));
        self.next_id += 1;
        id
    }

    /// The account of a key, if it exists.
    pub fn account_mut(&mut self, key: &str) -> Option<&mut Account> {
        self.accounts.get_mut(key)
    }

    /// Records an upload and returns its id.
    pub fn add_upload(&mut self, upload: Upload) -> String {
        let id = self.next_id("vid");
        self.uploads.insert(id.clone(), upload);
        id
    }

    /// A stored upload.
    pub fn upload(&self, id: &str) -> Option<&Upload> {
        self.uploads.get(id)
    }

    fn usage_event(&mut self, key: &str, event: &str, job_id: &str, credits: f64, now: Timestamp) {
        let id = self.next_id("evt");
        self.events
            .entry(key.to_owned())
            .or_default()
            .push(UsageEvent {
                id: Some(id),
                event: Some(event.to_owned()),
                job_id: Some(job_id.to_owned()),
                credits: Some(credits),
                created_at: Some(webhook::format_timestamp(now)),
            });
    }

    /// `POST /v1/jobs` (already validated). `upload_duration` is the duration of the video
    /// when it is one of the sandbox's own uploads.
    pub fn create_job(
        &mut self,
        key: &str,
        request: CreateJobRequest,
        upload_duration: Option<f64>,
        now: Timestamp,
    ) -> Result<(JobAccepted, Option<Run>), Failure> {
        let hints = hints_from_url(&request.video_url);
        // An upload's header may claim any duration: only a usable one counts.
        let upload_duration =
            upload_duration.filter(|d| units::positive_seconds("/duration", *d).is_ok());
        let duration_secs = hints
            .duration_secs
            .or(upload_duration)
            .unwrap_or(self.config.default_duration_secs);
        let id = self.next_id("job");
        let model = request.model.clone().unwrap_or(Model::Original);
        let record = JobRecord {
            id: id.clone(),
            key: key.to_owned(),
            created_at: now,
            model,
            output_format: request.output_format.clone().unwrap_or(OutputFormat::Webm),
            duration_secs,
            scenario: hints.scenario,
            runs: 0,
            run: None,
            status: JobStatus::Created,
            progress: 0.0,
            error: None,
            reserved_credits: 0.0,
            credits_used: 0.0,
            billing_status: None,
            webhook_url: request.webhook_url.clone(),
            webhook_events: BTreeMap::new(),
            output: None,
            expired_tokens: VecDeque::new(),
            request,
        };
        let auto_start = record.request.auto_start.unwrap_or(true);
        self.jobs.insert(id.clone(), record);
        let run = if auto_start {
            match self.begin_run(&id, now) {
                Ok(run) => Some(run),
                Err(failure) => {
                    // A job that cannot be paid for is not created at all.
                    self.jobs.remove(&id);
                    return Err(failure);
                }
            }
        } else {
            None
        };
        self.jobs_by_key
            .entry(key.to_owned())
            .or_default()
            .push(id.clone());
        self.usage_event(key, "job.created", &id, 0.0, now);
        let status = self.jobs[&id].status.clone();
        let message = if auto_start {
            "Job created and started"
        } else {
            "Job created"
        };
        Ok((
            JobAccepted {
                success: true,
                id,
                status,
                message: Some(message.into()),
                request_id: None,
            },
            run,
        ))
    }

    /// The credits a run of `model` on job `id` costs, or the 402 when its key cannot pay.
    fn affordable(&self, id: &str, model: &Model) -> Result<f64, Failure> {
        let job = &self.jobs[id];
        let cost = estimate_credits(model, job.duration_secs).unwrap_or(0) as f64;
        let credits = self.accounts.get(&job.key).map_or(0.0, |a| a.credits);
        if credits < cost {
            return Err(Failure::new(
                402,
                ErrorCode::InsufficientCredits,
                format!("This job needs {cost} credits and the key has {credits}"),
            ));
        }
        Ok(cost)
    }

    /// Reserves credits and starts a run; the caller has checked the state allows it.
    fn begin_run(&mut self, id: &str, now: Timestamp) -> Result<Run, Failure> {
        let model = self.jobs[id].model.clone();
        let cost = self.affordable(id, &model)?;
        let key = self.jobs[id].key.clone();
        if let Some(account) = self.accounts.get_mut(&key) {
            account.credits -= cost;
        }
        let job = self.jobs.get_mut(id).expect("checked above");
        let run = Run {
            started_at: now,
            processing: processing_time(&job.model, job.duration_secs, &job.scenario),
            outcome: Run::outcome_for(&job.scenario, job.runs),
        };
        job.runs += 1;
        job.run = Some(run.clone());
        job.status = JobStatus::Pending;
        job.progress = 0.0;
        job.error = None;
        job.reserved_credits = cost;
        job.billing_status = Some("reserved");
        job.output = None;
        self.active.insert(id.to_owned());
        self.due.insert((run.processing_from(), id.to_owned()));
        Ok(run)
    }

    fn job_of(&self, key: &str, id: &str) -> Result<&JobRecord, Failure> {
        self.jobs
            .get(id)
            .filter(|j| j.key == key)
            .ok_or_else(|| Failure::job_not_found(id))
    }

    /// `POST /v1/jobs/{id}/start` (already validated): a draft starts, a failed job restarts.
    pub fn start_job(
        &mut self,
        key: &str,
        id: &str,
        request: StartJobRequest,
        now: Timestamp,
    ) -> Result<(JobAccepted, Run), Failure> {
        let job = self.job_of(key, id)?;
        if !matches!(job.status, JobStatus::Created | JobStatus::Failed) {
            return Err(Failure::new(
                400,
                ErrorCode::InvalidRequest,
                format!(
                    "Job is {}: only a created (draft) or failed job can be started",
                    job.status
                ),
            ));
        }
        // A refused start changes nothing: the credits are checked for the model it would
        // run with before any of the request is applied.
        let model = request.model.clone().unwrap_or_else(|| job.model.clone());
        self.affordable(id, &model)?;
        let job = self.jobs.get_mut(id).expect("checked above");
        if let Some(model) = request.model.clone() {
            job.model = model;
        }
        if let Some(format) = request.output_format.clone() {
            job.output_format = format;
        }
        if let Some(url) = request.webhook_url.clone() {
            job.webhook_url = Some(url);
        }
        if let Some(prompt) = request.text_prompt.clone() {
            job.request.text_prompt = Some(prompt);
        }
        let run = self.begin_run(id, now)?;
        let accepted = JobAccepted {
            success: true,
            id: id.to_owned(),
            status: JobStatus::Processing,
            message: Some("Job started".into()),
            request_id: None,
        };
        Ok((accepted, run))
    }

    /// Advances the jobs due to change by `now`: statuses, billing, and the webhooks they
    /// trigger. The progress of the others is read from their runs at `now` when shown.
    pub fn materialize(&mut self, now: Timestamp) -> Vec<Delivery> {
        self.now = self.now.max(now);
        let mut deliveries = Vec::new();
        while self.due.first().is_some_and(|(at, _)| *at <= now) {
            let (_, id) = self.due.pop_first().expect("just seen");
            if !self.active.contains(&id) {
                continue;
            }
            #[cfg(test)]
            {
                self.examined += 1;
            }
            let job = self.jobs.get_mut(&id).expect("active jobs exist");
            let run = job.run.clone().expect("active jobs have a run");
            let (status, progress) = run.status_at(now);
            let before = job.status.clone();
            job.progress = progress;
            if !status.is_terminal()
                && let Some(at) = next_look(&run, &status, now)
            {
                self.due.insert((at, id.clone()));
            }
            if status == before {
                continue;
            }
            let mut events = Vec::new();
            if before == JobStatus::Pending && status != JobStatus::Pending {
                events.push(WebhookEventType::JobStarted);
            }
            job.status = status.clone();
            let mut usage = None;
            match (&status, &run.outcome) {
                (JobStatus::Completed, _) => {
                    job.credits_used = job.reserved_credits;
                    job.billing_status = Some("charged");
                    usage = Some(("job.charged", job.reserved_credits));
                    events.push(WebhookEventType::JobCompleted);
                }
                (JobStatus::Failed, RunOutcome::Fail(message)) => {
                    job.error = Some(message.clone());
                    job.billing_status = Some("refunded");
                    usage = Some(("job.refunded", -job.reserved_credits));
                    events.push(WebhookEventType::JobFailed);
                }
                _ => {}
            }
            let (key, webhook_url) = (job.key.clone(), job.webhook_url.clone());
            if status.is_terminal() {
                self.active.remove(&id);
            }
            if let Some((event, credits)) = usage {
                // A refund (negative usage) gives the reserved credits back.
                if credits < 0.0
                    && let Some(account) = self.accounts.get_mut(&key)
                {
                    account.credits -= credits;
                }
                self.usage_event(&key, event, &id, credits, now);
            }
            if let Some(url) = webhook_url {
                for event in events {
                    let job = self.jobs.get_mut(&id).expect("still there");
                    job.webhook_events.insert(
                        event.as_str().to_owned(),
                        json!({ "status": "pending", "attempts": 0 }),
                    );
                    let data = self.view(&id, None);
                    let body =
                        serde_json::to_vec(&json!({ "event": event, "data": data })).expect("JSON");
                    deliveries.push(Delivery {
                        job_id: id.clone(),
                        url: url.clone(),
                        event,
                        body,
                    });
                }
            }
        }
        deliveries
    }

    /// Records the outcome of a webhook delivery on the job.
    pub fn record_delivery(&mut self, job_id: &str, event: &WebhookEventType, state: Value) {
        if let Some(job) = self.jobs.get_mut(job_id) {
            job.webhook_events.insert(event.as_str().to_owned(), state);
        }
    }

    /// The job as the API shows it; `output` gives the output URL to show, if any.
    fn view(&self, id: &str, output_url: Option<String>) -> Job {
        let job = &self.jobs[id];
        let mut view = Job::new(&job.id, job.status.clone());
        view.progress = Some(match &job.run {
            Some(run) if self.active.contains(id) => run.status_at(self.now).1,
            _ => job.progress,
        });
        view.output_url = output_url;
        view.error = job.error.clone();
        view.created_at = Some(webhook::format_timestamp(job.created_at));
        view.duration_seconds = Some(job.duration_secs);
        view.billing_status = job.billing_status.map(str::to_owned);
        view.webhook_url = job.webhook_url.clone();
        view.webhook_events = (!job.webhook_events.is_empty())
            .then(|| serde_json::to_value(&job.webhook_events).expect("JSON"));
        view.model = Some(job.model.clone());
        view.output_format = Some(job.output_format.clone());
        view.credits_used = Some(job.credits_used);
        view
    }

    /// A fresh output link when the job is completed and its link is missing or expired.
    fn output_link(&mut self, id: &str, now_real: Instant) -> Option<String> {
        let ttl = self.config.output_url_ttl();
        let job = self.jobs.get_mut(id)?;
        if job.status != JobStatus::Completed {
            return None;
        }
        let fresh = job
            .output
            .as_ref()
            .is_some_and(|link| link.expires > now_real);
        if !fresh {
            let token = format!("{:016x}{:016x}", fastrand::u64(..), fastrand::u64(..));
            let previous = job.output.replace(OutputLink {
                token: token.clone(),
                // The TTL is at most a year (checked), so this saturation never shows.
                expires: now_real.checked_add(ttl).unwrap_or(now_real),
            });
            if let Some(previous) = previous {
                job.expired_tokens.push_back(previous.token);
            }
            while job.expired_tokens.len() > KEPT_EXPIRED_TOKENS {
                if let Some(forgotten) = job.expired_tokens.pop_front() {
                    self.outputs.remove(&forgotten);
                }
            }
            self.outputs.insert(token, id.to_owned());
        }
        let job = &self.jobs[id];
        let link = job.output.as_ref()?;
        let extension = match &job.output_format {
            OutputFormat::PngSequence => "zip".to_owned(),
            other => other.as_str().to_owned(),
        };
        Some(format!(
            "/sandbox/outputs/{}/{}.{extension}",
            job.id, link.token
        ))
    }

    /// `GET /v1/jobs/{id}`; output paths are relative to the base URL.
    pub fn get_job(&mut self, key: &str, id: &str, now_real: Instant) -> Result<Job, Failure> {
        self.job_of(key, id)?;
        let output = self.output_link(id, now_real);
        Ok(self.view(id, output))
    }

    /// Every job of every key with what it was created from, oldest first: what a test counts
    /// duplicates and losses from, whatever the API answered.
    pub fn created_jobs(&self) -> Vec<crate::CreatedJob> {
        let mut jobs: Vec<&JobRecord> = self.jobs.values().collect();
        jobs.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        jobs.into_iter()
            .map(|job| crate::CreatedJob {
                id: job.id.clone(),
                video_url: job.request.video_url.clone(),
                metadata: job.request.metadata.clone(),
                status: job.status.clone(),
                ends_at: job.run.as_ref().and_then(Run::ends_at),
            })
            .collect()
    }

    /// `GET /v1/jobs`: newest first.
    pub fn list_jobs(&mut self, key: &str, query: &ListJobsQuery, now_real: Instant) -> JobList {
        let ids: Vec<String> = self.jobs_by_key.get(key).cloned().unwrap_or_default();
        let matching: Vec<String> = ids
            .into_iter()
            .rev()
            .filter(|id| {
                query
                    .status
                    .as_ref()
                    .is_none_or(|s| self.jobs[id].status == *s)
            })
            .collect();
        let total = matching.len() as u64;
        let offset = query.offset.unwrap_or(0) as usize;
        let limit = query.limit.unwrap_or(20) as usize;
        let jobs = matching
            .iter()
            .skip(offset)
            .take(limit)
            .map(|id| {
                let output = self.output_link(id, now_real);
                self.view(id, output)
            })
            .collect();
        JobList {
            jobs,
            total: Some(total),
            limit: Some(limit as u32),
            offset: Some(offset as u32),
        }
    }

    /// The job an output token belongs to, with its size in bytes; `None` when unknown, and
    /// `Some(Err(()))` when the token has expired.
    pub fn output(
        &self,
        job_id: &str,
        token: &str,
        now_real: Instant,
    ) -> Option<Result<(u64, OutputFormat), ()>> {
        let owner = self.outputs.get(token)?;
        if owner != job_id {
            return None;
        }
        let job = self.jobs.get(job_id)?;
        let current = job.output.as_ref().filter(|link| link.token == token);
        let size =
            (job.duration_secs * self.config.output_bytes_per_second as f64).max(1024.0) as u64;
        match current {
            Some(link) if link.expires > now_real => Some(Ok((size, job.output_format.clone()))),
            _ => Some(Err(())),
        }
    }

    /// `GET /api/download/{id}`.
    pub fn legacy_download(
        &mut self,
        key: &str,
        id: &str,
        now_real: Instant,
    ) -> Result<Value, Failure> {
        let job = self.job_of(key, id)?;
        if job.status != JobStatus::Completed {
            return Err(Failure::new(
                400,
                ErrorCode::InvalidRequest,
                "Job not completed",
            ));
        }
        let format = job.output_format.clone();
        let url = self
            .output_link(id, now_real)
            .expect("completed jobs have outputs");
        Ok(json!({ "success": true, "download_url": url, "output_format": format }))
    }

    /// `GET /v1/usage/summary?days=`.
    pub fn usage_summary(&self, key: &str, days: u32, now: Timestamp) -> UsageSummary {
        let since = Timestamp::from_unix_millis(
            now.unix_millis()
                .saturating_sub(u64::from(days) * 86_400_000),
        );
        let jobs: Vec<&JobRecord> = self
            .jobs_by_key
            .get(key)
            .into_iter()
            .flatten()
            .map(|id| &self.jobs[id])
            .filter(|j| j.created_at >= since)
            .collect();
        UsageSummary {
            days: Some(days),
            total_jobs: jobs.len() as u64,
            completed_jobs: jobs
                .iter()
                .filter(|j| j.status == JobStatus::Completed)
                .count() as u64,
            failed_jobs: Some(
                jobs.iter()
                    .filter(|j| j.status == JobStatus::Failed)
                    .count() as u64,
            ),
            credits_used: jobs.iter().map(|j| j.credits_used).sum(),
            credits_remaining: self.accounts.get(key).map(|a| a.credits),
        }
    }

    /// `GET /v1/usage/events?limit=`: newest first.
    pub fn usage_events(&self, key: &str, limit: u32) -> Vec<UsageEvent> {
        self.events
            .get(key)
            .map(|events| events.iter().rev().take(limit as usize).cloned().collect())
            .unwrap_or_default()
    }

    /// The background a job was made with (for tests and logs).
    pub fn background_of(&self, id: &str) -> Option<Background> {
        self.jobs
            .get(id)
            .and_then(|j| j.request.effective_background())
    }
}

/// When a job in flight, `status` at `now`, may next change: when its run leaves the queue,
/// then when it ends (never, for a stuck one). A moment the status has not caught up with
/// (`status_at` computes in floats) is looked at again a millisecond on.
fn next_look(run: &Run, status: &JobStatus, now: Timestamp) -> Option<Timestamp> {
    let at = if *status == JobStatus::Pending {
        Some(run.processing_from())
    } else {
        run.ends_at()
    }?;
    Some(if at > now {
        at
    } else {
        now.plus(Duration::from_millis(1))
    })
}

#[cfg(test)]
mod tests {

    use super::*;
    use crate::config::{DEMO_KEY, NO_CREDITS_KEY};

    const VIDEO: &str = "https://cdn.example.com/v.mp4";

    fn at(seconds: u64) -> Timestamp {
        Timestamp::from_unix_millis(1_700_000_000_000 + seconds * 1000)
    }

    fn draft(store: &mut Store, key: &str) -> String {
        let request: CreateJobRequest =
            serde_json::from_value(json!({"video_url": VIDEO, "auto_start": false})).unwrap();
        let (accepted, run) = store.create_job(key, request, None, at(0)).unwrap();
        assert!(run.is_none());
        accepted.id
    }

    #[test]
    fn a_start_refused_for_credits_changes_nothing() {
        let real = Instant::now();
        let mut store = Store::new(&SandboxConfig::default(), real);
        let id = draft(&mut store, NO_CREDITS_KEY);
        let before = store.get_job(NO_CREDITS_KEY, &id, real).unwrap();
        let start: StartJobRequest = serde_json::from_value(json!({
            "model": "pro",
            "output_format": "mov",
            "webhook_url": "http://127.0.0.1:9/hook",
            "text_prompt": "the dog"
        }))
        .unwrap();
        let refused = store
            .start_job(NO_CREDITS_KEY, &id, start, at(1))
            .unwrap_err();
        assert_eq!(refused.status, 402);
        assert_eq!(store.get_job(NO_CREDITS_KEY, &id, real).unwrap(), before);
        assert_eq!(store.jobs[&id].request.text_prompt, None);
        assert_eq!(store.accounts[NO_CREDITS_KEY].credits, 0.0);
    }

    #[test]
    fn the_cost_of_a_start_is_that_of_the_model_it_starts_with() {
        let real = Instant::now();
        let mut store = Store::new(&SandboxConfig::default(), real);
        let id = draft(&mut store, DEMO_KEY);
        let credits = store.accounts[DEMO_KEY].credits;
        let start: StartJobRequest = serde_json::from_value(json!({"model": "pro"})).unwrap();
        store.start_job(DEMO_KEY, &id, start, at(1)).unwrap();
        let cost = estimate_credits(&Model::Pro, 10.0).unwrap() as f64;
        assert_eq!(store.accounts[DEMO_KEY].credits, credits - cost);
        assert_eq!(store.jobs[&id].reserved_credits, cost);
    }

    #[test]
    fn materializing_looks_only_at_jobs_due_to_change_and_reads_show_progress_between() {
        // 10,000 jobs in flight made every request walk all of them (quadratic creation, a
        // sandbox that could not keep up with polling): only due changes may cost.
        let real = Instant::now();
        let mut store = Store::new(&SandboxConfig::default(), real);
        let request: CreateJobRequest =
            serde_json::from_value(json!({"video_url": format!("{VIDEO}?duration=100")})).unwrap();
        let ids: Vec<String> = (0..2000)
            .map(|_| {
                let (accepted, _) = store
                    .create_job(DEMO_KEY, request.clone(), None, at(0))
                    .unwrap();
                accepted.id
            })
            .collect();
        store.materialize(at(2));
        let examined = store.examined;
        for second in 3..=51 {
            store.materialize(at(second));
        }
        assert_eq!(
            store.examined - examined,
            0,
            "no job was due to change between its start and its end"
        );
        // 1 s queued, then 100 s of processing: half way at 51 s.
        let job = store.get_job(DEMO_KEY, &ids[7], real).unwrap();
        assert_eq!(
            (job.status, job.progress),
            (JobStatus::Processing, Some(50.0))
        );
        store.materialize(at(101));
        let job = store.get_job(DEMO_KEY, &ids[7], real).unwrap();
        assert_eq!(
            (job.status, job.progress),
            (JobStatus::Completed, Some(100.0))
        );
        assert!(store.active.is_empty());
    }

    #[test]
    fn output_tokens_kept_per_job_are_bounded() {
        let config = SandboxConfig {
            output_url_ttl_ms: 1,
            ..SandboxConfig::default()
        };
        let real = Instant::now();
        let mut store = Store::new(&config, real);
        let request: CreateJobRequest =
            serde_json::from_value(json!({"video_url": VIDEO})).unwrap();
        let (accepted, _) = store.create_job(DEMO_KEY, request, None, at(0)).unwrap();
        store.materialize(at(3600));
        let mut links = Vec::new();
        for i in 0..100 {
            // Each read comes after the previous link expired: a refresh every time.
            let job = store
                .get_job(DEMO_KEY, &accepted.id, real + Duration::from_millis(2 * i))
                .unwrap();
            links.push(job.output_url.expect("a completed job has a link"));
        }
        links.dedup();
        assert_eq!(links.len(), 100, "every read refreshed the link");
        assert!(
            store.outputs.len() <= 1 + KEPT_EXPIRED_TOKENS,
            "{} tokens kept for one job",
            store.outputs.len()
        );
    }
}
