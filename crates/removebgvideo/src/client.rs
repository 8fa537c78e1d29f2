//! The client: every endpoint, each call driven by the core's retry decisions.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use removebgvideo_core::http::{
    Headers, HttpRequest, RequestBuilder, ResponseBody, honours_idempotency, parse_response,
};
use removebgvideo_core::retry::{self, GiveUp, Outcome, Replay, RetryDecision};
use removebgvideo_core::{
    CreateJobRequest, Error, ErrorCode, Event, Health, Job, JobAccepted, JobList, LegacyDownload,
    ListJobsQuery, Method, RetryBudget, StartJobRequest, Timestamp, UsageEvents, UsageEventsQuery,
    UsageSummary, UsageSummaryQuery,
};
use ureq::http;

use crate::clock::{Clock, ThreadRandom};
use crate::config::{ClientBuilder, IdempotencySupport, Settings};
use crate::options::CallOptions;
use crate::transport::{self, AttemptError, RawResponse};

/// The shortest limit an attempt gets, however close the deadline is.
const FINAL_ATTEMPT_FLOOR: Duration = Duration::from_secs(2);

/// The RemoveBGVideo client. Cheap to clone (clones share one connection pool and one retry
/// budget) and safe to share between threads. The key never appears in its Debug output.
#[derive(Clone, Debug)]
pub struct Client {
    pub(crate) inner: Arc<Inner>,
}

#[derive(Debug)]
pub(crate) struct Inner {
    pub(crate) settings: Settings,
    pub(crate) agent: ureq::Agent,
    pub(crate) builder: RequestBuilder,
    pub(crate) clock: Clock,
    budget: Mutex<RetryBudget>,
    /// Set once a response shows the server honours Idempotency-Key.
    idempotency_seen: AtomicBool,
}

/// What a request sends as its body.
pub(crate) enum Payload<'a> {
    /// The request's own JSON body, if any.
    Json,
    /// A streamed upload: called once per attempt for a fresh reader.
    Stream {
        length: u64,
        open: &'a dyn Fn() -> Result<Box<dyn std::io::Read + Send>, Error>,
        /// Raised when the body stopped because the call was cancelled: the server never
        /// had the whole request.
        cut_short: &'a AtomicBool,
    },
}

impl Client {
    /// A client for the public API with this key.
    pub fn new(api_key: impl Into<String>) -> Result<Client, Error> {
        Client::builder().api_key(api_key).build()
    }

    /// A client with the key from `REMOVEBGVIDEO_API_KEY`.
    pub fn from_env() -> Result<Client, Error> {
        Client::builder().build()
    }

    /// Every setting, with defaults.
    pub fn builder() -> ClientBuilder {
        ClientBuilder::default()
    }

    /// A client from checked settings.
    pub fn with_settings(settings: Settings) -> Client {
        let budget = Mutex::new(settings.retry_budget.clone());
        Client {
            inner: Arc::new(Inner {
                agent: transport::agent(&settings),
                builder: RequestBuilder::new(settings.api_key.clone(), settings.user_agent()),
                clock: Clock::start(),
                budget,
                idempotency_seen: AtomicBool::new(false),
                settings,
            }),
        }
    }

    /// The settings in use.
    pub fn settings(&self) -> &Settings {
        &self.inner.settings
    }

    /// Closes every connection of this client and its clones, in use or idle, and refuses new
    /// ones: a call blocked in the network fails at once instead of at its timeout. For a
    /// process that is stopping (a second Ctrl-C); the client cannot be used afterwards.
    pub fn shutdown(&self) {
        self.inner.agent.clone().shutdown();
    }

    /// Tokens left in the retry budget.
    pub fn retry_budget_tokens(&self) -> u32 {
        self.inner.budget.lock().expect("retry budget").tokens()
    }

    pub(crate) fn inner_budget(&self) -> std::sync::MutexGuard<'_, RetryBudget> {
        self.inner.budget.lock().expect("retry budget")
    }

    pub(crate) fn now(&self) -> Timestamp {
        self.inner.clock.now()
    }

    pub(crate) fn builder_ref(&self) -> &RequestBuilder {
        &self.inner.builder
    }

    fn replay(&self, request: &HttpRequest) -> Replay {
        let honoured = match self.inner.settings.idempotency {
            IdempotencySupport::Honoured => true,
            IdempotencySupport::NotHonoured => false,
            IdempotencySupport::Detect => self.inner.idempotency_seen.load(Ordering::Relaxed),
        };
        if request.method == Method::Get || honoured {
            Replay::Safe
        } else {
            Replay::Unsafe
        }
    }

    /// The `http::Request` of one attempt, with the client's and the call's headers.
    pub(crate) fn http_request<B>(
        &self,
        request: &HttpRequest,
        options: &CallOptions,
        body: B,
    ) -> Result<http::Request<B>, Error> {
        let url = format!(
            "{}{}",
            self.inner.settings.base_url,
            request.path_and_query()
        );
        let mut builder = http::Request::builder()
            .method(request.method.as_str())
            .uri(&url);
        let headers = request
            .headers
            .iter()
            .map(|h| (h.name.as_str(), h.value.as_str()));
        let defaults = self
            .inner
            .settings
            .default_headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()));
        let extra = options
            .headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()));
        for (name, value) in headers.chain(defaults).chain(extra) {
            builder = builder.header(name, value);
        }
        builder.body(body).map_err(|e| {
            Error::new(
                ErrorCode::ValidationError,
                format!("cannot build the request: {e}"),
            )
        })
    }

    fn attempt(
        &self,
        request: &HttpRequest,
        payload: &Payload<'_>,
        options: &CallOptions,
        timeout: Duration,
        total: Option<Duration>,
    ) -> Result<Result<RawResponse, AttemptError>, Error> {
        let agent = &self.inner.agent;
        Ok(match payload {
            Payload::Json => match &request.body {
                Some(body) => transport::send_api(
                    agent,
                    self.http_request(request, options, body.clone())?,
                    timeout,
                ),
                None => {
                    transport::send_api(agent, self.http_request(request, options, ())?, timeout)
                }
            },
            Payload::Stream { length, open, .. } => {
                let reader = open()?;
                let body = ureq::SendBody::from_owned_reader(ReadSend(reader));
                let mut http = self.http_request(request, options, body)?;
                http.headers_mut().insert(
                    http::header::CONTENT_LENGTH,
                    http::HeaderValue::from(*length),
                );
                let idle = self.inner.settings.transfer_idle_timeout;
                transport::send_transfer(agent, http, idle, total, false).and_then(|response| {
                    let status = response.status().as_u16();
                    let headers = transport::headers_of(&response);
                    let body =
                        response
                            .into_body()
                            .read_to_vec()
                            .map_err(|e| AttemptError::NoAnswer {
                                timed_out: false,
                                detail: e.to_string(),
                            })?;
                    Ok(RawResponse {
                        status,
                        headers,
                        body,
                    })
                })
            }
        })
    }

    /// Sends a request until it succeeds or the core says to stop; returns the answer and its
    /// headers. A retry pause that would pass `deadline` is not taken.
    pub(crate) fn execute<T: ResponseBody>(
        &self,
        request: &HttpRequest,
        payload: Payload<'_>,
        options: &CallOptions,
        deadline: Option<Timestamp>,
    ) -> Result<(T, Headers), Error> {
        for warning in &request.warnings {
            tracing::warn!(target: "removebgvideo", operation = request.operation.name(), "{}", warning.message);
        }
        let operation = request.operation.name();
        let mut policy = self.inner.settings.retry.clone();
        if let Some(retries) = options.max_retries {
            policy.max_retries = retries;
        }
        let with_key = |error: Error| error.with_idempotency_key(request.idempotency_key.clone());
        let mut retries_done = 0;
        loop {
            if options.cancelled() {
                return Err(with_key(Error::new(
                    ErrorCode::Cancelled,
                    format!("{operation} was cancelled"),
                )));
            }
            let now = self.now();
            let mut timeout = options
                .timeout
                .unwrap_or(self.inner.settings.request_timeout);
            // What is left before the deadline bounds the attempt, but never below a usable
            // floor: the last poll of a wait happens at the deadline itself and must be able
            // to see a job that completed just before it.
            let remaining = deadline.map(|d| d.since(now).max(FINAL_ATTEMPT_FLOOR));
            if let Some(remaining) = remaining {
                timeout = timeout.min(remaining);
            }
            let mut response_headers = Headers::new();
            let (error, transport_outcome, status) =
                match self.attempt(request, &payload, options, timeout, remaining)? {
                    Ok(raw) => {
                        // Only a success proves the origin honours keys: a gateway's 5xx may
                        // echo the header without anything behind it remembering the key.
                        if request.method == Method::Post
                            && (200..300).contains(&raw.status)
                            && honours_idempotency(&raw.headers)
                        {
                            self.inner.idempotency_seen.store(true, Ordering::Relaxed);
                        }
                        match parse_response::<T>(raw.status, &raw.headers, &raw.body, self.now()) {
                            Ok(value) => {
                                self.inner.budget.lock().expect("retry budget").on_success();
                                return Ok((value, raw.headers));
                            }
                            Err(error) => {
                                response_headers = raw.headers;
                                (error, None, raw.status)
                            }
                        }
                    }
                    Err(failure) => {
                        let what = format!("{} {}", request.method.as_str(), request.path);
                        (failure.to_error(&what), Some(failure.outcome()), 0)
                    }
                };
            let outcome = match transport_outcome {
                Some(outcome) => outcome,
                // A 2xx whose body did not parse was lost in transit: we do not know what the
                // server said, so it counts as no answer (a GET is repeated, a POST only if safe).
                None if (200..300).contains(&status) => Outcome::NoAnswer { timed_out: false },
                None => Outcome::Status {
                    status,
                    code: &error.code,
                    headers: &response_headers,
                },
            };
            // A POST that may have acted and ends here, whatever ends it, reports that it may
            // have: an upload cut short by its own cancellation never reached the server whole.
            let cut_short = matches!(&payload, Payload::Stream { cut_short, .. } if cut_short.load(Ordering::Relaxed));
            let unknown =
                request.method == Method::Post && !cut_short && retry::may_have_acted(&outcome);
            let outcome_unknown = |why: &str| {
                let key = request.idempotency_key.as_deref().unwrap_or("");
                with_key(Error {
                    // The status a gateway answered, if any, stays visible.
                    status: error.status,
                    ..Error::new(
                        ErrorCode::OutcomeUnknown,
                        format!(
                            "{operation} was sent but {why} ({}); it may have taken effect, so it was not sent again. \
                             Check with a GET, or repeat it with idempotency_key {key:?} so the server can answer the first result",
                            error.message
                        ),
                    )
                    .with_request_id(error.request_id.clone())
                })
            };
            let what_came = if status < 300 {
                "no usable answer came".to_owned()
            } else {
                format!(
                    "the answer was HTTP {status}, which a gateway can give after the server acted"
                )
            };
            if options.cancelled() {
                if unknown {
                    return Err(outcome_unknown(&format!(
                        "{what_came} before it was cancelled"
                    )));
                }
                return Err(with_key(Error::new(
                    ErrorCode::Cancelled,
                    format!("{operation} was cancelled"),
                )));
            }
            let decision = retry::decide(
                &policy,
                &mut self.inner.budget.lock().expect("retry budget"),
                retries_done,
                &outcome,
                self.replay(request),
                now,
                &mut ThreadRandom,
            );
            match decision {
                RetryDecision::Retry { delay, reason } => {
                    if deadline.is_some_and(|d| self.now().plus(delay) > d) {
                        return Err(if unknown {
                            outcome_unknown(&format!("{what_came}, and no time was left to retry"))
                        } else {
                            with_key(error)
                        });
                    }
                    retries_done += 1;
                    tracing::info!(
                        target: "removebgvideo",
                        "retry {retries_done}/{} of {operation} in {:.1} s ({reason}, request_id {})",
                        policy.max_retries,
                        delay.as_secs_f64(),
                        error.request_id.as_deref().unwrap_or("none")
                    );
                    options.emit(Event::Retry {
                        operation: operation.to_owned(),
                        attempt: retries_done,
                        max_retries: policy.max_retries,
                        delay_ms: delay.as_millis() as u64,
                        reason: reason.to_string(),
                        request_id: error.request_id.clone(),
                    });
                    let cancelled = match &options.cancel {
                        Some(cancel) => cancel.sleep(delay),
                        None => {
                            std::thread::sleep(delay);
                            false
                        }
                    };
                    if cancelled {
                        // The attempt before the pause may have acted; the cancel changes
                        // nothing about that.
                        return Err(if unknown {
                            outcome_unknown(&format!("{what_came} before it was cancelled"))
                        } else {
                            with_key(Error::new(
                                ErrorCode::Cancelled,
                                format!("{operation} was cancelled"),
                            ))
                        });
                    }
                }
                RetryDecision::GiveUp { reason } if unknown => {
                    tracing::info!(target: "removebgvideo", "giving up {operation}: {reason:?} ({})", error.code);
                    return Err(outcome_unknown(&what_came));
                }
                RetryDecision::GiveUp { reason } => {
                    if reason != GiveUp::NotRetryable {
                        tracing::info!(target: "removebgvideo", "giving up {operation}: {reason:?} ({})", error.code);
                    }
                    return Err(with_key(error));
                }
            }
        }
    }

    pub(crate) fn idempotency_key(options: &CallOptions) -> String {
        options
            .idempotency_key
            .clone()
            .unwrap_or_else(|| uuid::Uuid::new_v4().to_string())
    }

    /// `POST /v1/jobs`.
    pub fn create_job(
        &self,
        request: &CreateJobRequest,
        options: &CallOptions,
    ) -> Result<JobAccepted, Error> {
        let http = self
            .inner
            .builder
            .create_job(request, &Client::idempotency_key(options))?;
        self.execute(&http, Payload::Json, options, None)
            .map(|(v, _)| v)
    }

    /// `POST /v1/jobs/{job_id}/start`: start a draft, or restart a failed job.
    pub fn start_job(
        &self,
        job_id: &str,
        request: &StartJobRequest,
        options: &CallOptions,
    ) -> Result<JobAccepted, Error> {
        let http =
            self.inner
                .builder
                .start_job(job_id, request, &Client::idempotency_key(options))?;
        self.execute(&http, Payload::Json, options, None)
            .map(|(v, _)| v)
    }

    /// `GET /v1/jobs/{job_id}`.
    pub fn get_job(&self, job_id: &str, options: &CallOptions) -> Result<Job, Error> {
        let http = self.inner.builder.get_job(job_id)?;
        self.execute(&http, Payload::Json, options, None)
            .map(|(v, _)| v)
    }

    /// `GET /v1/jobs`.
    pub fn list_jobs(
        &self,
        query: &ListJobsQuery,
        options: &CallOptions,
    ) -> Result<JobList, Error> {
        let http = self.inner.builder.list_jobs(query)?;
        self.execute(&http, Payload::Json, options, None)
            .map(|(v, _)| v)
    }

    /// `GET /v1/usage/summary`.
    pub fn usage_summary(
        &self,
        query: &UsageSummaryQuery,
        options: &CallOptions,
    ) -> Result<UsageSummary, Error> {
        let http = self.inner.builder.usage_summary(query)?;
        self.execute(&http, Payload::Json, options, None)
            .map(|(v, _)| v)
    }

    /// `GET /v1/usage/events`.
    pub fn usage_events(
        &self,
        query: &UsageEventsQuery,
        options: &CallOptions,
    ) -> Result<UsageEvents, Error> {
        let http = self.inner.builder.usage_events(query)?;
        self.execute(&http, Payload::Json, options, None)
            .map(|(v, _)| v)
    }

    /// `GET /api/download/{job_id}` (legacy).
    pub fn legacy_download(
        &self,
        job_id: &str,
        options: &CallOptions,
    ) -> Result<LegacyDownload, Error> {
        let http = self.inner.builder.legacy_download(job_id)?;
        self.execute(&http, Payload::Json, options, None)
            .map(|(v, _)| v)
    }

    /// `GET /health`.
    pub fn health(&self, options: &CallOptions) -> Result<Health, Error> {
        let http = self.inner.builder.health();
        self.execute(&http, Payload::Json, options, None)
            .map(|(v, _)| v)
    }
}

/// ureq wants `Read + 'static`; our readers are also `Send`.
struct ReadSend(Box<dyn std::io::Read + Send>);

impl std::io::Read for ReadSend {
    fn read(&mut self, buffer: &mut [u8]) -> std::io::Result<usize> {
        self.0.read(buffer)
    }
}
