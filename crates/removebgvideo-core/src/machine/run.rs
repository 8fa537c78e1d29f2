//! A whole run: (upload) -> create -> (start) -> wait -> (download), each step one of the other
//! machines, all under one deadline, every POST's Idempotency-Key derived from one run key.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::time::Duration;

use super::{
    BodyPlan, CallMachine, DownloadMachine, Fetched, Shared, Transmit, TransmitBody,
    TransportError, WaitMachine,
};
use crate::error::{Error, ErrorCode};
use crate::events::Event;
use crate::http::{Headers, RequestBuilder};
use crate::job::{Job, JobAccepted};
use crate::poll::PollPolicy;
use crate::requests::{CreateJobRequest, StartJobRequest};
use crate::responses::UploadResult;
use crate::timestamp::Timestamp;
use crate::validate::{Problem, ProblemCode};

/// The longest run key: each step's key adds at most `:upload` (7 characters) to it, within
/// the 255 an Idempotency-Key may have.
pub const MAX_RUN_KEY_LENGTH: usize = crate::http::IDEMPOTENCY_KEY_MAX_BYTES - 7;

/// Where a run's video comes from.
#[derive(Clone, Debug, PartialEq)]
pub enum RunSource {
    /// A URL the API can fetch.
    Url(String),
    /// A local file, uploaded first.
    File {
        /// The file.
        path: PathBuf,
        /// Its size (the driver read it).
        size: u64,
        /// The multipart boundary (the driver drew it).
        boundary: String,
    },
}

/// Everything a run is made of.
#[derive(Clone, Debug)]
pub struct RunSpec {
    /// The input.
    pub source: RunSource,
    /// The job settings; `video_url` is filled in from the source.
    pub job: CreateJobRequest,
    /// When given, the job is created as a draft and started with these settings.
    pub start: Option<StartJobRequest>,
    /// Whether to download the output at the end.
    pub download: bool,
    /// The run key every step's key derives from (the caller's, or a new one).
    pub run_key: String,
    /// The polling schedule.
    pub poll: PollPolicy,
    /// Retries of each request, instead of the client's.
    pub max_retries: Option<u32>,
    /// Limit of each API request, instead of the client's.
    pub timeout: Option<Duration>,
    /// Headers of each request (and of downloads from the API's own host).
    pub headers: Vec<(String, String)>,
    /// Set when the job's events also come by webhook: the wait is a hybrid one, polling
    /// this far apart once a delivery came (see [`WaitMachine::with_deliveries`]).
    pub webhook_fallback: Option<Duration>,
}

/// What a run produced.
#[derive(Clone, Debug, PartialEq)]
pub struct RunOutput {
    /// The completed job.
    pub job: Job,
    /// The upload, when the source was a file.
    pub upload: Option<UploadResult>,
    /// The whole part file of the output, when a download was asked for: the driver makes it
    /// durable and puts it in place.
    pub fetched: Option<Fetched>,
}

#[derive(Debug)]
enum Step {
    Upload(CallMachine<UploadResult>),
    Create(CallMachine<JobAccepted>),
    Start(CallMachine<JobAccepted>),
    Wait(Box<WaitMachine>),
    Download(Box<DownloadMachine>),
    Done,
}

/// Drives a run. Every failure carries the run key: a run repeated with it repeats each step
/// under the same keys, so the server answers the first job instead of creating a second.
#[derive(Debug)]
pub struct RunMachine {
    spec: RunSpec,
    builder: RequestBuilder,
    api_base: String,
    shared: Shared,
    deadline: Option<Timestamp>,
    upload: Option<UploadResult>,
    job_id: Option<String>,
    step: Step,
    /// The time of the latest input, for steps started by a cancel (which takes no time).
    last_now: Timestamp,
    /// Cancelled: the step under way ends as it will, and no next step starts.
    cancel_requested: bool,
    events: VecDeque<Event>,
    outcome: Option<Result<RunOutput, Error>>,
    /// The latest update of the job that came before its wait began (a delivery can beat the
    /// start's answer), for the wait.
    early_update: Option<Job>,
}

impl RunMachine {
    /// A run of `spec` under `deadline`, building its requests with `builder`; `api_base` is the
    /// API's base URL (see [`DownloadMachine::new`]).
    pub fn new(
        spec: RunSpec,
        builder: RequestBuilder,
        api_base: &str,
        shared: &Shared,
        deadline: Option<Timestamp>,
    ) -> Result<Self, Error> {
        if spec.run_key.len() > MAX_RUN_KEY_LENGTH {
            return Err(Error::validation(vec![Problem::error(
                "/idempotency_key",
                ProblemCode::InvalidIdempotencyKey,
                format!(
                    "idempotency_key of a run must have at most {MAX_RUN_KEY_LENGTH} characters (its steps add :upload, :create, :start)"
                ),
            )]));
        }
        spec.poll.check()?;
        let mut run = RunMachine {
            builder,
            api_base: api_base.to_owned(),
            shared: shared.clone(),
            deadline,
            upload: None,
            job_id: None,
            step: Step::Done,
            last_now: Timestamp::from_unix_millis(0),
            cancel_requested: false,
            events: VecDeque::new(),
            outcome: None,
            early_update: None,
            spec,
        };
        run.step = match run.spec.source.clone() {
            RunSource::Url(url) => run.create_step(url)?,
            RunSource::File {
                path,
                size,
                boundary,
            } => {
                let key = run.step_key("upload");
                let (request, body) =
                    super::upload_request(&run.builder, &path, size, &boundary, &key)
                        .map_err(|e| e.with_idempotency_key(Some(run.spec.run_key.clone())))?;
                Step::Upload(run.call(request, body))
            }
        };
        Ok(run)
    }

    /// The job whose updates it takes, once its create was answered.
    pub fn updates_for(&self) -> Option<&str> {
        self.job_id()
    }

    /// The run key (for a caller to repeat the run with).
    pub fn run_key(&self) -> &str {
        &self.spec.run_key
    }

    /// The job, once created.
    pub fn job_id(&self) -> Option<&str> {
        self.job_id.as_deref()
    }

    /// How many more bytes the output body being streamed may bring.
    pub fn room(&self) -> Option<u64> {
        match &self.step {
            Step::Download(download) => download.room(),
            _ => None,
        }
    }

    /// The next request, when one is due.
    pub fn poll_transmit(&mut self, now: Timestamp) -> Option<Transmit> {
        let transmit = match &mut self.step {
            Step::Upload(call) => call.poll_transmit(now),
            Step::Create(call) | Step::Start(call) => call.poll_transmit(now),
            Step::Wait(wait) => wait.poll_transmit(now),
            Step::Download(download) => download.poll_transmit(now),
            Step::Done => None,
        };
        if transmit.is_none() {
            // A step may end without sending (the rate gate had no slot in time).
            self.advance(now);
        }
        transmit
    }

    /// When `handle_timeout` is next due.
    pub fn poll_timeout(&self) -> Option<Timestamp> {
        match &self.step {
            Step::Upload(call) => call.poll_timeout(),
            Step::Create(call) | Step::Start(call) => call.poll_timeout(),
            Step::Wait(wait) => wait.poll_timeout(),
            Step::Download(download) => download.poll_timeout(),
            Step::Done => None,
        }
    }

    /// Time passed.
    pub fn handle_timeout(&mut self, now: Timestamp) {
        match &mut self.step {
            Step::Upload(call) => call.handle_timeout(now),
            Step::Create(call) | Step::Start(call) => call.handle_timeout(now),
            Step::Wait(wait) => wait.handle_timeout(now),
            Step::Download(download) => download.handle_timeout(now),
            Step::Done => {}
        }
        self.advance(now);
    }

    /// A whole answer to the API request in flight (or an output URL's error answer).
    pub fn handle_response(&mut self, status: u16, headers: Headers, body: &[u8], now: Timestamp) {
        match &mut self.step {
            Step::Upload(call) => call.handle_response(status, headers, body, now),
            Step::Create(call) | Step::Start(call) => {
                call.handle_response(status, headers, body, now)
            }
            Step::Wait(wait) => wait.handle_response(status, headers, body, now),
            Step::Download(download) => download.handle_response(status, headers, body, now),
            Step::Done => {}
        }
        self.advance(now);
    }

    /// The request in flight got no answer.
    pub fn handle_transport_error(&mut self, failure: TransportError, now: Timestamp) {
        match &mut self.step {
            Step::Upload(call) => call.handle_transport_error(failure, now),
            Step::Create(call) | Step::Start(call) => call.handle_transport_error(failure, now),
            Step::Wait(wait) => wait.handle_transport_error(failure, now),
            Step::Download(download) => download.handle_transport_error(failure, now),
            Step::Done => {}
        }
        self.advance(now);
    }

    /// The head of an output URL's answer (see [`DownloadMachine::handle_head`]).
    pub fn handle_head(&mut self, status: u16, headers: Headers, now: Timestamp) -> BodyPlan {
        let plan = match &mut self.step {
            Step::Download(download) => download.handle_head(status, headers, now),
            _ => BodyPlan::Discard,
        };
        self.advance(now);
        plan
    }

    /// Bytes of the output written.
    pub fn handle_body_bytes(&mut self, n: u64, now: Timestamp) {
        if let Step::Download(download) = &mut self.step {
            download.handle_body_bytes(n, now);
        }
        self.advance(now);
    }

    /// The output's body ended.
    pub fn handle_body_end(&mut self, end: Result<(), TransportError>, now: Timestamp) {
        if let Step::Download(download) = &mut self.step {
            download.handle_body_end(end, now);
        }
        self.advance(now);
    }

    /// A job read elsewhere (a webhook delivery), for the wait.
    pub fn handle_job_update(&mut self, job: Job, now: Timestamp) {
        match &mut self.step {
            Step::Wait(wait) => wait.handle_job_update(job, now),
            Step::Done | Step::Download(_) => {}
            _ if self.job_id.as_deref() == Some(job.id.as_str()) => self.early_update = Some(job),
            _ => {}
        }
        self.advance(now);
    }

    /// The caller cancelled.
    pub fn cancel(&mut self) {
        self.cancel_requested = true;
        match &mut self.step {
            Step::Upload(call) => call.cancel(),
            Step::Create(call) | Step::Start(call) => call.cancel(),
            Step::Wait(wait) => wait.cancel(),
            Step::Download(download) => download.cancel(),
            Step::Done => {}
        }
        self.advance(self.last_now);
    }

    /// The next progress event.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// The outcome, once decided (given once).
    pub fn poll_outcome(&mut self) -> Option<Result<RunOutput, Error>> {
        self.outcome.take()
    }

    /// Whether the outcome is decided.
    pub fn is_done(&self) -> bool {
        matches!(self.step, Step::Done)
    }

    fn step_key(&self, step: &str) -> String {
        format!("{}:{step}", self.spec.run_key)
    }

    fn call<T: crate::http::ResponseBody>(
        &self,
        request: crate::http::HttpRequest,
        body: TransmitBody,
    ) -> CallMachine<T> {
        CallMachine::new(
            request,
            body,
            &self.shared,
            self.spec.max_retries,
            self.spec.timeout,
            self.deadline,
        )
    }

    fn create_step(&self, video_url: String) -> Result<Step, Error> {
        let mut job = self.spec.job.clone();
        job.video_url = video_url;
        if self.spec.start.is_some() {
            job.auto_start = Some(false);
        }
        let request = self
            .builder
            .create_job(&job, &self.step_key("create"))
            .map_err(|e| self.with_run_key(e))?;
        Ok(Step::Create(self.call(request, TransmitBody::Json)))
    }

    /// Moves the events of the step under way up, and starts the next step once it is done.
    fn advance(&mut self, now: Timestamp) {
        self.last_now = self.last_now.max(now);
        loop {
            let finished = match &mut self.step {
                Step::Upload(call) => drain(call.poll_outcome(), &mut self.events, call),
                Step::Create(call) | Step::Start(call) => {
                    drain(call.poll_outcome(), &mut self.events, call)
                }
                Step::Wait(wait) => {
                    while let Some(event) = wait.poll_event() {
                        self.events.push_back(event);
                    }
                    wait.poll_outcome().map(|o| o.map(Finished::Job))
                }
                Step::Download(download) => {
                    while let Some(event) = download.poll_event() {
                        self.events.push_back(event);
                    }
                    download.poll_outcome().map(|o| o.map(Finished::Fetched))
                }
                Step::Done => return,
            };
            let Some(finished) = finished else {
                return;
            };
            let next = finished
                .and_then(|finished| {
                    if self.cancel_requested {
                        // The step ended (its answer came after the cancel); no next one starts.
                        let job_id = match &finished {
                            Finished::Accepted(accepted) => Some(accepted.id.as_str()),
                            _ => self.job_id.as_deref(),
                        };
                        let what = job_id.map_or_else(
                            || "the run was cancelled".to_owned(),
                            |id| format!("the run was cancelled (its job {id} exists)"),
                        );
                        return Err(Error::new(ErrorCode::Cancelled, what));
                    }
                    Ok(finished)
                })
                .map_err(|e| self.with_run_key(e))
                .and_then(|finished| self.next_step(finished, now));
            match next {
                Ok(step) => self.step = step,
                Err(error) => {
                    self.step = Step::Done;
                    self.outcome = Some(Err(error));
                    return;
                }
            }
        }
    }

    fn next_step(&mut self, finished: Finished, now: Timestamp) -> Result<Step, Error> {
        match finished {
            Finished::Upload(upload) => {
                let url = upload.video_url.clone();
                self.upload = Some(upload);
                self.create_step(url)
            }
            Finished::Accepted(accepted) if self.job_id.is_none() => {
                self.job_id = Some(accepted.id.clone());
                match self.spec.start.clone() {
                    Some(start) => {
                        let request = self
                            .builder
                            .start_job(&accepted.id, &start, &self.step_key("start"))
                            .map_err(|e| self.with_run_key(e))?;
                        Ok(Step::Start(self.call(request, TransmitBody::Json)))
                    }
                    None => self.wait_step(),
                }
            }
            Finished::Accepted(_) => self.wait_step(),
            Finished::Job(job) if self.spec.download => {
                if self.deadline.is_some_and(|d| now >= d) {
                    return Err(self.with_run_key(
                        Error::new(
                            ErrorCode::WaitTimeout,
                            "the run's deadline passed during the download",
                        )
                        .with_job(job),
                    ));
                }
                let refresh = self.builder.get_job(&job.id)?;
                let download = DownloadMachine::new(
                    job,
                    refresh,
                    &self.api_base,
                    self.spec.headers.clone(),
                    &self.shared,
                    self.spec.max_retries,
                    self.deadline,
                )
                .map_err(|e| self.with_run_key(e))?;
                Ok(Step::Download(Box::new(download)))
            }
            Finished::Job(job) => self.done(job, None),
            Finished::Fetched(fetched) => {
                let job = fetched.job.clone();
                self.done(job, Some(fetched))
            }
        }
    }

    fn wait_step(&mut self) -> Result<Step, Error> {
        let job_id = self.job_id.clone().unwrap_or_default();
        let request = self.builder.get_job(&job_id)?;
        let mut wait = WaitMachine::new(
            &job_id,
            request,
            self.spec.poll.clone(),
            &self.shared,
            self.spec.max_retries,
            self.spec.timeout,
            self.deadline,
        )?;
        if let Some(fallback) = self.spec.webhook_fallback {
            wait = wait.with_deliveries(fallback)?;
        }
        if let Some(job) = self.early_update.take() {
            wait.handle_job_update(job, self.last_now);
        }
        Ok(Step::Wait(Box::new(wait)))
    }

    fn done(&mut self, job: Job, fetched: Option<Fetched>) -> Result<Step, Error> {
        self.outcome = Some(Ok(RunOutput {
            job,
            upload: self.upload.clone(),
            fetched,
        }));
        Ok(Step::Done)
    }

    /// A failed step reports the run key, the one to repeat the whole run with.
    fn with_run_key(&self, mut error: Error) -> Error {
        let run_key = &self.spec.run_key;
        if error.code == ErrorCode::OutcomeUnknown {
            error.message +=
                &format!("; to repeat the whole run, give it idempotency_key {run_key:?}");
        }
        error.with_idempotency_key(Some(run_key.clone()))
    }
}

/// What a step produced.
enum Finished {
    Upload(UploadResult),
    Accepted(JobAccepted),
    Job(Job),
    Fetched(Fetched),
}

/// Moves a call's events up and maps its outcome.
fn drain<T: IntoFinished + crate::http::ResponseBody>(
    outcome: Option<Result<super::Answer<T>, Error>>,
    events: &mut VecDeque<Event>,
    call: &mut CallMachine<T>,
) -> Option<Result<Finished, Error>> {
    while let Some(event) = call.poll_event() {
        events.push_back(event);
    }
    outcome.map(|o| o.map(|answer| answer.value.into_finished()))
}

trait IntoFinished {
    fn into_finished(self) -> Finished;
}

impl IntoFinished for UploadResult {
    fn into_finished(self) -> Finished {
        Finished::Upload(self)
    }
}

impl IntoFinished for JobAccepted {
    fn into_finished(self) -> Finished {
        Finished::Accepted(self)
    }
}
