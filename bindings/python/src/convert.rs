//! Conversions between Python's JSON-shaped arguments and the Rust client's types, and from
//! Rust errors to the Python exception tree. No decisions: every default and rule is the
//! client's or the core's.

use std::time::Duration;

use pyo3::prelude::*;
use removebgvideo::core::ErrorKind;
use removebgvideo::{
    Background, CallOptions, ClientBuilder, Error, IdempotencySupport, PollPolicy, RetryPolicy,
    WaitLimit,
};
use serde::Deserialize;

/// `Client(...)` keyword arguments, as the Python layer passes them.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SettingsArgs {
    api_key: Option<String>,
    base_url: Option<String>,
    max_retries: Option<u32>,
    timeout: Option<f64>,
    connect_timeout: Option<f64>,
    transfer_idle_timeout: Option<f64>,
    wait_timeout: Option<f64>,
    user_agent: Option<String>,
    #[serde(default)]
    headers: Vec<(String, String)>,
    idempotency: Option<String>,
    poll: Option<PollPolicy>,
    retry: Option<RetryPolicy>,
}

fn seconds(value: f64) -> Duration {
    Duration::from_secs_f64(value.max(0.0))
}

impl SettingsArgs {
    pub fn builder(self) -> Result<ClientBuilder, Error> {
        let mut builder = removebgvideo::Client::builder();
        if let Some(key) = self.api_key {
            builder = builder.api_key(key);
        }
        if let Some(url) = self.base_url {
            builder = builder.base_url(url);
        }
        if let Some(retry) = self.retry {
            builder = builder.retry_policy(retry);
        }
        if let Some(retries) = self.max_retries {
            builder = builder.max_retries(retries);
        }
        if let Some(timeout) = self.timeout {
            builder = builder.request_timeout(seconds(timeout));
        }
        if let Some(timeout) = self.connect_timeout {
            builder = builder.connect_timeout(seconds(timeout));
        }
        if let Some(timeout) = self.transfer_idle_timeout {
            builder = builder.transfer_idle_timeout(seconds(timeout));
        }
        if let Some(timeout) = self.wait_timeout {
            builder = builder.wait_timeout(seconds(timeout));
        }
        if let Some(agent) = self.user_agent {
            builder = builder.user_agent(agent);
        }
        for (name, value) in self.headers {
            builder = builder.default_header(name, value);
        }
        if let Some(poll) = self.poll {
            builder = builder.poll_policy(poll);
        }
        builder = builder.idempotency_support(match self.idempotency.as_deref() {
            Some("honoured") => IdempotencySupport::Honoured,
            Some("not_honoured") => IdempotencySupport::NotHonoured,
            _ => IdempotencySupport::Detect,
        });
        Ok(builder)
    }
}

/// Per-call options, as the Python layer passes them.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OptionsArgs {
    pub idempotency_key: Option<String>,
    pub max_retries: Option<u32>,
    pub timeout: Option<f64>,
    #[serde(default)]
    pub headers: Vec<(String, String)>,
    /// A wait's limit in seconds; `None` with `unbounded` false means the client's default.
    pub wait_timeout: Option<f64>,
    #[serde(default)]
    pub unbounded: bool,
    pub poll: Option<PollPolicy>,
    #[serde(default)]
    pub overwrite: bool,
}

impl OptionsArgs {
    pub fn call(&self) -> CallOptions {
        CallOptions {
            idempotency_key: self.idempotency_key.clone(),
            max_retries: self.max_retries,
            timeout: self.timeout.map(seconds),
            headers: self.headers.clone(),
            cancel: None,
            on_event: None,
        }
    }

    pub fn limit(&self) -> WaitLimit {
        match (self.unbounded, self.wait_timeout) {
            (true, _) => WaitLimit::Unbounded,
            (false, Some(s)) => WaitLimit::After(seconds(s)),
            (false, None) => WaitLimit::Default,
        }
    }
}

/// A background as Python gives it: text (`"transparent"`, a preset, `"#rrggbb"`,
/// `"image:URL"`) or an `(r, g, b)` tuple of normalized channels.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum BackgroundArg {
    Text(String),
    Rgb([f64; 3]),
}

impl BackgroundArg {
    pub fn resolve(&self) -> Result<Background, Error> {
        match self {
            BackgroundArg::Text(text) => Background::parse(text),
            BackgroundArg::Rgb(channels) => Background::from_rgb(*channels),
        }
    }
}

/// The Python exception class of each kind: one exhaustive map, so a new kind cannot be
/// forgotten (the compiler stops it).
pub fn exception_name(kind: ErrorKind) -> &'static str {
    match kind {
        ErrorKind::Authentication => "AuthenticationError",
        ErrorKind::InsufficientCredits => "InsufficientCreditsError",
        ErrorKind::NotFound => "NotFoundError",
        ErrorKind::RateLimit => "RateLimitError",
        ErrorKind::InvalidRequest => "InvalidRequestError",
        ErrorKind::Conflict => "ConflictError",
        ErrorKind::Server => "ServerError",
        ErrorKind::Connection => "APIConnectionError",
        ErrorKind::OutcomeUnknown => "OutcomeUnknownError",
        ErrorKind::Validation => "ValidationError",
        ErrorKind::JobFailed => "JobFailedError",
        ErrorKind::WaitTimeout => "WaitTimeoutError",
        ErrorKind::Cancelled => "CancelledError",
        ErrorKind::Download => "DownloadError",
        ErrorKind::Webhook => "WebhookVerificationError",
        ErrorKind::UnexpectedResponse => "UnexpectedResponseError",
    }
}

/// Every kind, for the test that checks each class exists.
pub const ALL_KINDS: [ErrorKind; 16] = [
    ErrorKind::Authentication,
    ErrorKind::InsufficientCredits,
    ErrorKind::NotFound,
    ErrorKind::RateLimit,
    ErrorKind::InvalidRequest,
    ErrorKind::Conflict,
    ErrorKind::Server,
    ErrorKind::Connection,
    ErrorKind::OutcomeUnknown,
    ErrorKind::Validation,
    ErrorKind::JobFailed,
    ErrorKind::WaitTimeout,
    ErrorKind::Cancelled,
    ErrorKind::Download,
    ErrorKind::Webhook,
    ErrorKind::UnexpectedResponse,
];

/// Raises the Python exception of a Rust error: `removebgvideo._errors.<Class>(payload)`.
pub fn to_py_err(py: Python<'_>, error: Error) -> PyErr {
    let payload = error.to_json();
    let build = || -> PyResult<PyErr> {
        let errors = py.import("removebgvideo._errors")?;
        let class = errors.getattr(exception_name(error.kind()))?;
        let instance = class.call_method1("_from_payload", (payload.to_string(),))?;
        Ok(PyErr::from_value(instance))
    };
    build().unwrap_or_else(|e| e)
}

/// A JSON argument from Python, with a `ValidationError` naming the argument when malformed.
pub fn from_json<T: for<'de> Deserialize<'de>>(
    py: Python<'_>,
    what: &str,
    json: &str,
) -> PyResult<T> {
    serde_json::from_str(json).map_err(|e| {
        let problem = removebgvideo::core::Problem::error(
            format!("/{what}"),
            removebgvideo::core::ProblemCode::InvalidType,
            format!("{what}: {e}"),
        );
        to_py_err(py, Error::validation(vec![problem]))
    })
}
