//! A download of a job's output: follows redirects, resumes after a break as [`Resume`]
//! decides, refreshes an expired output URL from the job, retries on the client's policy (the
//! count resets only on new ground), and says when the part file holds the whole object. The
//! driver owns the part file: it cuts it where [`BodyPlan::Stream`] says and writes the bytes.

use std::collections::VecDeque;

use super::{CallMachine, Shared, Transmit, TransmitBody, TransportError, TransportErrorKind};
use crate::download::{Answer, BodyEnd, Resume};
use crate::error::{Error, ErrorCode};
use crate::events::Event;
use crate::http::{Headers, HttpRequest, parse_error};
use crate::job::{Job, JobStatus};
use crate::retry::{self, Outcome, Replay, RetryDecision, RetryPolicy};
use crate::timestamp::Timestamp;

/// How many times an expired output URL is refreshed in one download.
const MAX_REFRESHES: u32 = 3;
/// Redirects followed from one output URL (to a CDN and on).
const MAX_REDIRECTS: u32 = 5;
/// Progress is reported at most every this many bytes.
const REPORT_EVERY: u64 = 1 << 20;
/// The most of an error answer's body read, for its message.
const ERROR_BODY_LIMIT: u64 = 64 * 1024;

/// What the driver does with the body of the answer whose head it just passed in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyPlan {
    /// Cut the part file to `offset`, then write the body from there, never more than
    /// [`DownloadMachine::room`] bytes; report them with `handle_body_bytes` and the end with
    /// `handle_body_end`.
    Stream {
        /// Where the body's first byte belongs.
        offset: u64,
    },
    /// Read at most `limit` bytes of it and pass them to `handle_response` (an error answer,
    /// whose body says why).
    ReadError {
        /// The most to read.
        limit: u64,
    },
    /// Drop the body; the machine has decided without it.
    Discard,
}

/// A finished download: the part file holds the whole object.
#[derive(Clone, Debug, PartialEq)]
pub struct Fetched {
    /// The job, as last read (its `output_url` is the one that worked).
    pub job: Job,
    /// The bytes in the part file.
    pub bytes: u64,
    /// The size the server announced, if it did.
    pub total: Option<u64>,
}

#[derive(Debug)]
enum State {
    Ready,
    AwaitingHead,
    Streaming,
    ReadingError,
    Refreshing(Box<CallMachine<Job>>),
    Paused { until: Timestamp },
    Done,
}

/// A failed attempt.
struct Failure {
    error: Error,
    outcome: FailureKind,
}

enum FailureKind {
    Transport(TransportError),
    Status { status: u16, headers: Headers },
}

/// Drives one download to a whole part file, or to the error that ends it.
#[derive(Debug)]
pub struct DownloadMachine {
    job: Job,
    url: String,
    refresh: HttpRequest,
    api_origin: Option<url::Origin>,
    call_headers: Vec<(String, String)>,
    shared: Shared,
    policy: RetryPolicy,
    deadline: Option<Timestamp>,
    resume: Resume,
    refreshes: u32,
    redirects: u32,
    retries_done: u32,
    /// The most bytes ever held: the retry count resets only on new ground, so a server that
    /// keeps answering from the start cannot keep a download going for ever.
    best: u64,
    reported: u64,
    state: State,
    events: VecDeque<Event>,
    outcome: Option<Result<Fetched, Error>>,
}

impl DownloadMachine {
    /// A download of `job`'s output. `refresh` reads the job again (its `get_job` request) when
    /// the output URL has expired; `api_base` is the API's base URL: the call's own
    /// `call_headers` go only there, never to a CDN. A job that has not completed is an error
    /// here: `job_failed` for a failed one, `download_failed` otherwise.
    pub fn new(
        job: Job,
        refresh: HttpRequest,
        api_base: &str,
        call_headers: Vec<(String, String)>,
        shared: &Shared,
        max_retries: Option<u32>,
        deadline: Option<Timestamp>,
    ) -> Result<Self, Error> {
        match job.status {
            JobStatus::Completed => {}
            JobStatus::Failed => {
                let reason = job.error.clone().unwrap_or_default();
                return Err(Error::new(
                    ErrorCode::JobFailed,
                    format!("job {} failed: {reason}", job.id),
                )
                .with_job(job));
            }
            _ => {
                return Err(failed(format!(
                    "job {} is {}: wait for it to complete first",
                    job.id, job.status
                ))
                .with_job(job));
            }
        }
        let url = output_url(&job)?;
        let mut policy = shared.retry.clone();
        if let Some(retries) = max_retries {
            policy.max_retries = retries;
        }
        Ok(DownloadMachine {
            job,
            url,
            refresh,
            api_origin: origin(api_base),
            call_headers,
            shared: shared.clone(),
            policy,
            deadline,
            resume: Resume::new(),
            refreshes: 0,
            redirects: 0,
            retries_done: 0,
            best: 0,
            reported: 0,
            state: State::Ready,
            events: VecDeque::new(),
            outcome: None,
        })
    }

    /// The job.
    pub fn job(&self) -> &Job {
        &self.job
    }

    /// Bytes held in the part file.
    pub fn written(&self) -> u64 {
        self.resume.written()
    }

    /// The size the server announced, if it did.
    pub fn total(&self) -> Option<u64> {
        self.resume.total()
    }

    /// How many more bytes the body being streamed may bring (`None`: no limit is known).
    pub fn room(&self) -> Option<u64> {
        self.resume.room()
    }

    /// The next request, when one is due: the output URL with the resume's headers, or the
    /// job again for a fresh URL.
    pub fn poll_transmit(&mut self, now: Timestamp) -> Option<Transmit> {
        match &mut self.state {
            State::Ready => {
                self.state = State::AwaitingHead;
                Some(Transmit::Fetch {
                    url: self.url.clone(),
                    headers: self.fetch_headers(),
                    idle_timeout: self.shared.transfer_idle_timeout,
                    total: self.deadline.map(|d| d.since(now)),
                })
            }
            State::Refreshing(call) => {
                let transmit = call.poll_transmit(now);
                if transmit.is_none() {
                    self.after_refresh_input();
                }
                transmit
            }
            _ => None,
        }
    }

    /// When `handle_timeout` is next due.
    pub fn poll_timeout(&self) -> Option<Timestamp> {
        match &self.state {
            State::Paused { until } => Some(*until),
            State::Refreshing(call) => call.poll_timeout(),
            _ => None,
        }
    }

    /// Time passed.
    pub fn handle_timeout(&mut self, now: Timestamp) {
        match &mut self.state {
            State::Paused { until } if now >= *until => self.state = State::Ready,
            State::Refreshing(call) => call.handle_timeout(now),
            _ => {}
        }
    }

    /// The status and headers of the output URL's answer: what to do with its body.
    pub fn handle_head(&mut self, status: u16, headers: Headers, _now: Timestamp) -> BodyPlan {
        if !matches!(self.state, State::AwaitingHead) {
            return BodyPlan::Discard;
        }
        if (300..400).contains(&status)
            && let Some(location) = headers.get("location")
        {
            self.redirect(location);
            return BodyPlan::Discard;
        }
        match self.resume.on_answer(status, &headers) {
            Answer::Complete => self.complete(),
            Answer::Unverifiable { reason } => self.fail(failed(reason)),
            Answer::Restart { reason } => {
                self.retries_done += 1;
                if self.retries_done > self.policy.max_retries {
                    self.fail(failed(format!("the output could not be resumed: {reason}")));
                } else {
                    self.state = State::Ready;
                }
            }
            Answer::Write { offset } => {
                self.state = State::Streaming;
                return BodyPlan::Stream { offset };
            }
            Answer::NotBody => match status {
                401 | 403 | 404 | 410 if self.refreshes < MAX_REFRESHES => {
                    // An expired link: the job gives a fresh one.
                    self.refreshes += 1;
                    self.state = State::Refreshing(Box::new(CallMachine::new(
                        self.refresh.clone(),
                        TransmitBody::Json,
                        &self.shared,
                        Some(self.policy.max_retries),
                        None,
                        self.deadline,
                    )));
                }
                _ => {
                    self.state = State::ReadingError;
                    return BodyPlan::ReadError {
                        limit: ERROR_BODY_LIMIT,
                    };
                }
            },
        }
        BodyPlan::Discard
    }

    /// `n` more bytes of the streamed body are in the part file.
    pub fn handle_body_bytes(&mut self, n: u64, _now: Timestamp) {
        if !matches!(self.state, State::Streaming) {
            return;
        }
        self.resume.on_bytes(n);
        if self.resume.written().saturating_sub(self.reported) >= REPORT_EVERY {
            self.reported = self.resume.written();
            self.events.push_back(Event::Download {
                bytes_done: self.resume.written(),
                bytes_total: self.resume.total(),
            });
        }
    }

    /// The streamed body ended: cleanly, or with a transport failure. Even a broken body may
    /// have brought every byte.
    pub fn handle_body_end(&mut self, end: Result<(), TransportError>, now: Timestamp) {
        if !matches!(self.state, State::Streaming) {
            return;
        }
        match (self.resume.on_body_end(end.is_ok()), end) {
            (BodyEnd::Complete, _) => self.complete(),
            (BodyEnd::Unproven, Ok(())) => self.state = State::Ready,
            (_, Err(failure)) => self.transport_failed(failure, now),
            (BodyEnd::Short { reason }, Ok(())) => {
                self.transport_failed(TransportError::new(TransportErrorKind::Broken, reason), now)
            }
        }
    }

    /// A whole answer: the job read for a fresh URL, or the body of an error answer.
    pub fn handle_response(&mut self, status: u16, headers: Headers, body: &[u8], now: Timestamp) {
        match &mut self.state {
            State::Refreshing(call) => {
                call.handle_response(status, headers, body, now);
                self.after_refresh_input();
            }
            State::ReadingError => {
                let error = parse_error(status, &headers, body, now);
                let failure = Failure {
                    // The message never repeats the URL: its query is a secret.
                    error: failed(format!(
                        "the output URL answered HTTP {status}: {}",
                        error.message
                    ))
                    .with_status(status),
                    outcome: FailureKind::Status { status, headers },
                };
                self.failed(failure, now);
            }
            _ => {}
        }
    }

    /// The request in flight got no answer.
    pub fn handle_transport_error(&mut self, failure: TransportError, now: Timestamp) {
        match &mut self.state {
            State::Refreshing(call) => {
                call.handle_transport_error(failure, now);
                self.after_refresh_input();
            }
            State::AwaitingHead | State::Streaming => self.transport_failed(failure, now),
            _ => {}
        }
    }

    /// The caller cancelled.
    pub fn cancel(&mut self) {
        if !matches!(self.state, State::Done) {
            self.finish(Err(Error::new(
                ErrorCode::Cancelled,
                "the download was cancelled",
            )));
        }
    }

    /// The next progress event (bytes written, retries).
    pub fn poll_event(&mut self) -> Option<Event> {
        if let State::Refreshing(call) = &mut self.state
            && let Some(event) = call.poll_event()
        {
            return Some(event);
        }
        self.events.pop_front()
    }

    /// The outcome, once decided (given once). On success the driver makes the part file
    /// durable and puts it in place.
    pub fn poll_outcome(&mut self) -> Option<Result<Fetched, Error>> {
        self.outcome.take()
    }

    /// Whether the outcome is decided.
    pub fn is_done(&self) -> bool {
        matches!(self.state, State::Done)
    }

    /// The resume's headers, and the call's own headers only when the URL is on the API's host
    /// (output URLs are signed: they need no key, and nothing meant for the API goes to a CDN,
    /// before or after a redirect).
    fn fetch_headers(&self) -> Vec<(String, String)> {
        let mut headers: Vec<(String, String)> = self
            .resume
            .request_headers()
            .into_iter()
            .map(|(name, value)| (name.to_owned(), value))
            .collect();
        if self.api_origin.is_some() && origin(&self.url) == self.api_origin {
            headers.extend(self.call_headers.iter().cloned());
        }
        headers
    }

    fn redirect(&mut self, location: &str) {
        self.redirects += 1;
        if self.redirects > MAX_REDIRECTS {
            return self.fail(failed(format!(
                "the output URL redirected more than {MAX_REDIRECTS} times"
            )));
        }
        match url::Url::parse(&self.url).and_then(|base| base.join(location)) {
            Ok(next) => {
                self.url = next.into();
                self.state = State::Ready;
            }
            Err(e) => self.fail(failed(format!(
                "the output URL redirected to a bad URL: {e}"
            ))),
        }
    }

    fn after_refresh_input(&mut self) {
        let State::Refreshing(call) = &mut self.state else {
            return;
        };
        while let Some(event) = call.poll_event() {
            self.events.push_back(event);
        }
        match call.poll_outcome() {
            None => {}
            Some(Ok(answer)) => match output_url(&answer.value) {
                Ok(url) => {
                    self.job = answer.value;
                    self.url = url;
                    self.redirects = 0;
                    self.state = State::Ready;
                }
                Err(error) => self.finish(Err(error)),
            },
            Some(Err(error)) => self.finish(Err(error)),
        }
    }

    fn transport_failed(&mut self, failure: TransportError, now: Timestamp) {
        let mut error = failure.to_error("downloading the output");
        error.message = error.message.replace(&self.url, &redacted(&self.url));
        self.failed(
            Failure {
                error,
                outcome: FailureKind::Transport(failure),
            },
            now,
        );
    }

    fn failed(&mut self, failure: Failure, now: Timestamp) {
        if self.resume.written() > self.best {
            self.best = self.resume.written();
            self.retries_done = 0;
        }
        let code = failure.error.code.clone();
        let outcome = match &failure.outcome {
            FailureKind::Transport(transport) => transport.outcome(),
            FailureKind::Status { status, headers } => Outcome::Status {
                status: *status,
                code: &code,
                headers,
            },
        };
        let decision = self.shared.with_random(|random| {
            self.shared.with_budget(|budget| {
                retry::decide(
                    &self.policy,
                    budget,
                    self.retries_done,
                    &outcome,
                    Replay::Safe,
                    now,
                    random,
                )
            })
        });
        match decision {
            RetryDecision::Retry { delay, reason }
                if self.deadline.is_none_or(|d| now.plus(delay) <= d) =>
            {
                self.retries_done += 1;
                self.events.push_back(Event::Retry {
                    operation: "download".into(),
                    attempt: self.retries_done,
                    max_retries: self.policy.max_retries,
                    delay_ms: crate::timestamp::duration_millis(delay),
                    reason: reason.to_string(),
                    request_id: None,
                });
                self.state = State::Paused {
                    until: now.plus(delay),
                };
            }
            _ => self.fail(failure.error),
        }
    }

    fn complete(&mut self) {
        let fetched = Fetched {
            job: self.job.clone(),
            bytes: self.resume.written(),
            total: self.resume.total(),
        };
        self.finish(Ok(fetched));
    }

    fn fail(&mut self, error: Error) {
        let error = error.with_job(self.job.clone());
        self.finish(Err(error));
    }

    fn finish(&mut self, outcome: Result<Fetched, Error>) {
        self.state = State::Done;
        self.outcome = Some(outcome);
    }
}

fn failed(message: String) -> Error {
    Error::new(ErrorCode::DownloadFailed, message)
}

fn output_url(job: &Job) -> Result<String, Error> {
    job.output_url
        .clone()
        .ok_or_else(|| failed(format!("job {} has no output_url", job.id)))
}

/// A URL as it may be shown: without its query, which signs it (a secret like a key).
pub fn redacted(url: &str) -> String {
    match url.split_once('?') {
        Some((base, _)) => format!("{base}?<redacted>"),
        None => url.to_owned(),
    }
}

/// The origin (scheme, host, port) of a URL, to tell the API's host from others.
fn origin(url: &str) -> Option<url::Origin> {
    url::Url::parse(url).ok().map(|u| u.origin())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shown_url_keeps_no_signature() {
        assert_eq!(
            redacted("https://cdn.example.com/o/job_1.webm?X-Amz-Signature=abc&exp=1"),
            "https://cdn.example.com/o/job_1.webm?<redacted>"
        );
        assert_eq!(
            redacted("https://cdn.example.com/o.webm"),
            "https://cdn.example.com/o.webm"
        );
    }
}
