//! One error type for every failure, with a stable code, the HTTP status and the request id.

use std::fmt;
use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::job::Job;
use crate::open_enum::{lenient, open_enum};
use crate::validate::{Problem, Severity};

open_enum! {
    /// Stable error codes. Server codes come from the error body; the others are raised by the
    /// SDK itself. The same strings reach Rust, Python (`err.code`) and Node (`err.code`).
    pub enum ErrorCode {
        /// No `X-Api-Key` header was sent (401).
        MissingApiKey => "missing_api_key",
        /// The API key is not valid (401).
        InvalidApiKey => "invalid_api_key",
        /// The key may not do this (403).
        Forbidden => "forbidden",
        /// Not enough credits to process the job (402); never retried.
        InsufficientCredits => "insufficient_credits",
        /// No such job for this key (404; another key's job also answers 404).
        NotFound => "not_found",
        /// Too many requests for this key (429).
        RateLimited => "rate_limited",
        /// The server rejected the request (400 or another 4xx).
        InvalidRequest => "invalid_request",
        /// The same Idempotency-Key was reused with a different request (409).
        IdempotencyConflict => "idempotency_conflict",
        /// The server failed (5xx).
        InternalError => "internal_error",
        /// The server timed out (5xx).
        Timeout => "timeout",
        /// The request was rejected by the SDK before sending; see `problems`.
        ValidationError => "validation_error",
        /// The job ended in `failed`; the error carries the job.
        JobFailed => "job_failed",
        /// A wait reached its deadline; the error carries the last job seen.
        WaitTimeout => "wait_timeout",
        /// The connection failed or broke.
        ConnectionError => "connection_error",
        /// The HTTP request took longer than its timeout.
        RequestTimeout => "request_timeout",
        /// A POST was sent and no answer came (or a 500, 502 or 504 that may follow acting),
        /// against a server not known to honour Idempotency-Key: it was not re-sent, because it
        /// may have taken effect. Repeat it with the error's `idempotency_key`.
        OutcomeUnknown => "outcome_unknown",
        /// The response was not what the API documents (not JSON, wrong shape).
        UnexpectedResponse => "unexpected_response",
        /// The caller cancelled the operation.
        Cancelled => "cancelled",
        /// A downloaded output did not match its announced length, or could not be written.
        DownloadFailed => "download_failed",
        /// A webhook delivery lacks a required header.
        WebhookMissingHeader => "webhook_missing_header",
        /// A webhook signature does not match the body.
        WebhookInvalidSignature => "webhook_invalid_signature",
        /// A webhook timestamp is outside the tolerance window (a possible replay).
        WebhookStaleTimestamp => "webhook_stale_timestamp",
        /// A webhook body is not a valid event.
        WebhookInvalidPayload => "webhook_invalid_payload",
        /// The SDK hit a bug of its own (a Rust panic) in this call. The call was stopped and
        /// nothing else is affected; please report it with the message.
        SdkBug => "sdk_bug",
    }
}

/// Broad families of errors; each language maps a kind to one exception class.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// 401 and 403.
    Authentication,
    /// 402.
    InsufficientCredits,
    /// 404.
    NotFound,
    /// 429.
    RateLimit,
    /// 400 and other client errors the server reported.
    InvalidRequest,
    /// 409 on an Idempotency-Key reused with another body.
    Conflict,
    /// 5xx.
    Server,
    /// The connection failed, broke or timed out.
    Connection,
    /// A sent POST got no answer and was not re-sent.
    OutcomeUnknown,
    /// The SDK rejected a request before sending it.
    Validation,
    /// The job failed.
    JobFailed,
    /// A wait reached its deadline.
    WaitTimeout,
    /// The caller cancelled.
    Cancelled,
    /// A download could not be completed intact.
    Download,
    /// A webhook delivery did not verify.
    Webhook,
    /// The server answered something the API does not document.
    UnexpectedResponse,
    /// A bug in the SDK itself, caught at the language boundary.
    SdkBug,
}

impl ErrorKind {
    /// The kind an HTTP status implies when the body names no code we know.
    pub fn from_status(status: u16) -> ErrorKind {
        match status {
            401 | 403 => ErrorKind::Authentication,
            402 => ErrorKind::InsufficientCredits,
            404 => ErrorKind::NotFound,
            409 => ErrorKind::Conflict,
            408 => ErrorKind::Connection,
            429 => ErrorKind::RateLimit,
            400..=499 => ErrorKind::InvalidRequest,
            500..=599 => ErrorKind::Server,
            _ => ErrorKind::UnexpectedResponse,
        }
    }

    /// The code an HTTP status implies when the body carries none.
    pub fn default_code_for_status(status: u16) -> ErrorCode {
        match status {
            401 => ErrorCode::InvalidApiKey,
            403 => ErrorCode::Forbidden,
            402 => ErrorCode::InsufficientCredits,
            404 => ErrorCode::NotFound,
            408 => ErrorCode::RequestTimeout,
            409 => ErrorCode::IdempotencyConflict,
            429 => ErrorCode::RateLimited,
            504 => ErrorCode::Timeout,
            400..=499 => ErrorCode::InvalidRequest,
            500..=599 => ErrorCode::InternalError,
            _ => ErrorCode::UnexpectedResponse,
        }
    }
}

impl ErrorCode {
    /// The family of this code; unknown server codes are classified by `status`.
    pub fn kind(&self, status: Option<u16>) -> ErrorKind {
        match self {
            ErrorCode::MissingApiKey | ErrorCode::InvalidApiKey | ErrorCode::Forbidden => {
                ErrorKind::Authentication
            }
            ErrorCode::InsufficientCredits => ErrorKind::InsufficientCredits,
            ErrorCode::NotFound => ErrorKind::NotFound,
            ErrorCode::RateLimited => ErrorKind::RateLimit,
            ErrorCode::InvalidRequest => ErrorKind::InvalidRequest,
            ErrorCode::IdempotencyConflict => ErrorKind::Conflict,
            ErrorCode::InternalError | ErrorCode::Timeout => ErrorKind::Server,
            ErrorCode::ValidationError => ErrorKind::Validation,
            ErrorCode::JobFailed => ErrorKind::JobFailed,
            ErrorCode::WaitTimeout => ErrorKind::WaitTimeout,
            ErrorCode::ConnectionError | ErrorCode::RequestTimeout => ErrorKind::Connection,
            ErrorCode::OutcomeUnknown => ErrorKind::OutcomeUnknown,
            ErrorCode::UnexpectedResponse => ErrorKind::UnexpectedResponse,
            ErrorCode::Cancelled => ErrorKind::Cancelled,
            ErrorCode::DownloadFailed => ErrorKind::Download,
            ErrorCode::WebhookMissingHeader
            | ErrorCode::WebhookInvalidSignature
            | ErrorCode::WebhookStaleTimestamp
            | ErrorCode::WebhookInvalidPayload => ErrorKind::Webhook,
            ErrorCode::SdkBug => ErrorKind::SdkBug,
            ErrorCode::Unknown(_) => status
                .map(ErrorKind::from_status)
                .unwrap_or(ErrorKind::UnexpectedResponse),
        }
    }
}

/// The error body of every non-2xx response: `{"error": {"code", "message", "request_id"}}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ErrorBody {
    /// What went wrong.
    pub error: ErrorDetail,
}

/// The inside of an [`ErrorBody`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ErrorDetail {
    /// A stable machine-readable code such as `invalid_api_key` or `rate_limited`.
    #[schemars(schema_with = "lenient::<ErrorCode>")]
    pub code: ErrorCode,
    /// A sentence for people.
    #[serde(default)]
    pub message: String,
    /// The id of the request, for support.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// Each problem with the request, when the server validated it (sent by the sandbox).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<Problem>,
}

/// Every failure the SDK reports: what, where it came from, and what to do with it.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct Error {
    /// The stable code.
    pub code: ErrorCode,
    /// A sentence for people; never contains the API key.
    pub message: String,
    /// The HTTP status, when a response was received.
    pub status: Option<u16>,
    /// The request id (header `X-Request-Id` or the error body), when known.
    pub request_id: Option<String>,
    /// How long the server asked us to wait (rate limits), when it said.
    #[serde(with = "optional_millis")]
    pub retry_after: Option<Duration>,
    /// The Idempotency-Key the failed POST was sent with, so the caller can retry it safely.
    pub idempotency_key: Option<String>,
    /// Every problem found in the request (validation errors).
    pub problems: Vec<Problem>,
    /// The job, for `job_failed` (the failed job) and `wait_timeout` (the last job seen).
    pub job: Option<Box<Job>>,
}

impl Error {
    /// A bare error with a code and a message.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Error {
            code,
            message: message.into(),
            status: None,
            request_id: None,
            retry_after: None,
            idempotency_key: None,
            problems: Vec::new(),
            job: None,
        }
    }

    /// A validation error listing every problem; the message summarizes them all.
    pub fn validation(problems: Vec<Problem>) -> Self {
        let errors: Vec<&Problem> = problems
            .iter()
            .filter(|p| p.severity == Severity::Error)
            .collect();
        let message = match errors.as_slice() {
            [one] => format!("invalid request: {}", one.message),
            many => format!(
                "invalid request, {} problems: {}",
                many.len(),
                many.iter()
                    .map(|p| p.message.as_str())
                    .collect::<Vec<_>>()
                    .join("; ")
            ),
        };
        Error {
            problems,
            ..Error::new(ErrorCode::ValidationError, message)
        }
    }

    /// With the HTTP status.
    pub fn with_status(mut self, status: u16) -> Self {
        self.status = Some(status);
        self
    }

    /// With the request id, when known.
    pub fn with_request_id(mut self, request_id: Option<String>) -> Self {
        if request_id.is_some() {
            self.request_id = request_id;
        }
        self
    }

    /// With the job it concerns.
    pub fn with_job(mut self, job: Job) -> Self {
        self.job = Some(Box::new(job));
        self
    }

    /// With the Idempotency-Key of the request that failed.
    pub fn with_idempotency_key(mut self, key: Option<String>) -> Self {
        self.idempotency_key = key;
        self
    }

    /// The family of this error.
    pub fn kind(&self) -> ErrorKind {
        self.code.kind(self.status)
    }

    /// The error as the JSON every language reads: `code`, `kind`, `message`, `status`,
    /// `request_id`, `idempotency_key`, `retry_after_ms`, `problems`, `job`.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "code": self.code,
            "kind": self.kind(),
            "message": self.message,
            "status": self.status,
            "request_id": self.request_id,
            "idempotency_key": self.idempotency_key,
            "retry_after_ms": self.retry_after.map(crate::timestamp::duration_millis),
            "problems": self.problems,
            "job": self.job,
        })
    }

    /// Whether waiting and asking again may succeed (rate limits, server and connection
    /// errors). Used by waits: a transient error while polling does not end the wait.
    pub fn is_transient(&self) -> bool {
        matches!(
            self.kind(),
            ErrorKind::RateLimit | ErrorKind::Server | ErrorKind::Connection
        )
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut debug = f.debug_struct("Error");
        debug
            .field("code", &self.code.as_str())
            .field("message", &self.message);
        if let Some(status) = self.status {
            debug.field("status", &status);
        }
        if let Some(request_id) = &self.request_id {
            debug.field("request_id", request_id);
        }
        if let Some(retry_after) = self.retry_after {
            debug.field("retry_after", &retry_after);
        }
        if !self.problems.is_empty() {
            debug.field("problems", &self.problems);
        }
        if let Some(job) = &self.job {
            debug
                .field("job_id", &job.id)
                .field("job_status", &job.status.as_str());
        }
        debug.finish()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)?;
        if let Some(status) = self.status {
            write!(f, " (HTTP {status})")?;
        }
        if let Some(request_id) = &self.request_id {
            write!(f, " [request_id {request_id}]")?;
        }
        Ok(())
    }
}

impl std::error::Error for Error {}

mod optional_millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(value: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match value {
            Some(d) => s.serialize_some(&(d.as_millis() as u64)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        Ok(Option::<u64>::deserialize(d)?.map(Duration::from_millis))
    }
}
