//! Rust errors to the Python exception tree, and JSON arguments from Python. The argument
//! conversions themselves are the client's (`removebgvideo::bridge`), shared with Node.

use pyo3::prelude::*;
use removebgvideo::Error;
use removebgvideo::core::ErrorKind;
use serde::Deserialize;

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
