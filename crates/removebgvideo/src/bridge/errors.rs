//! Errors as the bindings receive them: one exception class per kind, the same name in Python
//! and Node, and the shared JSON form of an error.

use removebgvideo_core::ErrorKind;
use serde_json::json;

use crate::Error;

/// The exception class of each kind: one exhaustive map, so a new kind cannot be forgotten
/// (the compiler stops it).
pub fn error_class(kind: ErrorKind) -> &'static str {
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
        ErrorKind::SdkBug => "SDKBugError",
    }
}

/// Every kind, so bindings can check each has its class.
pub const ERROR_KINDS: [ErrorKind; 17] = [
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
    ErrorKind::SdkBug,
];

/// `(kind, class)` for every kind, the kind as the wire spells it: the one list both bindings
/// build their exception classes from.
pub fn error_classes() -> Vec<(String, &'static str)> {
    ERROR_KINDS
        .iter()
        .map(|kind| {
            let name = serde_json::to_value(kind)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default();
            (name, error_class(*kind))
        })
        .collect()
}

/// An error as the bindings receive it: the shared JSON form plus its class name.
pub fn error_payload(error: &Error) -> serde_json::Value {
    let mut value = error.to_json();
    value["class"] = json!(error_class(error.kind()));
    value
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use removebgvideo_core::ErrorCode;

    use super::*;

    #[test]
    fn every_kind_has_one_class_of_its_own() {
        let classes = error_classes();
        assert_eq!(classes.len(), ERROR_KINDS.len());
        let kinds: HashSet<&str> = classes.iter().map(|(k, _)| k.as_str()).collect();
        let names: HashSet<&str> = classes.iter().map(|(_, c)| *c).collect();
        assert_eq!(kinds.len(), ERROR_KINDS.len());
        assert_eq!(names.len(), ERROR_KINDS.len());
        assert!(!kinds.contains(""));
        // Every code's kind is in the list, so no error reaches a binding without its class.
        for code in ErrorCode::KNOWN {
            assert!(ERROR_KINDS.contains(&code.kind(None)), "{code:?}");
        }
    }

    #[test]
    fn the_payload_names_the_class() {
        let error = Error::new(ErrorCode::JobFailed, "failed");
        let payload = error_payload(&error);
        assert_eq!(payload["class"], "JobFailedError");
        assert_eq!(payload["code"], "job_failed");
    }
}
