//! Errors as the bindings receive them: one exception class per kind, the same name in Python
//! and Node, and the shared JSON form of an error.

use removebgvideo_core::validate::display_path;
use removebgvideo_core::{ErrorCode, ErrorKind};
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

/// The error with its problems' paths in a binding's own names (Node's camelCase): `rename`
/// maps each path (`/arguments/video_url` to `/videoUrl`). The field a problem's message
/// starts with, and the fields an unknown-field message lists, follow; a validation error's
/// message is rebuilt from its renamed problems, as the core writes it.
pub fn with_public_names(mut error: Error, rename: impl Fn(&str) -> String) -> Error {
    if error.problems.is_empty() {
        return error;
    }
    for problem in &mut error.problems {
        let path = rename(&problem.path);
        let (old, new) = (display_path(&problem.path), display_path(&path));
        if !old.is_empty()
            && let Some(tail) = problem.message.strip_prefix(&old)
        {
            problem.message = format!("{new}{tail}");
        }
        if problem.message.contains(" is not a known field (") {
            problem.message = rename_listed(&problem.message, &rename);
        }
        problem.path = path;
    }
    if error.code == ErrorCode::ValidationError {
        error.message = Error::validation(error.problems.clone()).message;
    }
    error
}

/// The `` `field` `` names of serde's "expected one of" list, renamed.
fn rename_listed(message: &str, rename: &impl Fn(&str) -> String) -> String {
    let (head, list) = message.split_once(" (").unwrap_or((message, ""));
    let list: Vec<String> = list
        .split('`')
        .enumerate()
        .map(|(i, part)| match i % 2 {
            1 => rename(&format!("/{part}"))
                .trim_start_matches('/')
                .to_owned(),
            _ => part.to_owned(),
        })
        .collect();
    if list.is_empty() || list == [""] {
        head.to_owned()
    } else {
        format!("{head} ({})", list.join("`"))
    }
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

    fn camel_without_root(path: &str) -> String {
        let camel = |s: &str| {
            let mut parts = s.split('_');
            let first = parts.next().unwrap_or("").to_owned();
            parts.fold(first, |mut out, p| {
                let mut chars = p.chars();
                if let Some(c) = chars.next() {
                    out.extend(c.to_uppercase());
                    out.push_str(chars.as_str());
                }
                out
            })
        };
        path.split('/')
            .filter(|s| !s.is_empty() && *s != "arguments")
            .fold(String::new(), |out, s| format!("{out}/{}", camel(s)))
    }

    #[test]
    fn problems_can_take_a_bindings_names() {
        let error = super::super::Operation::from_json(
            r#"{"operation": "create_job", "arguments": {"video_url": "u", "text_promt": 1}}"#,
        )
        .unwrap_err();
        let error = with_public_names(error, camel_without_root);
        assert_eq!(error.problems[0].path, "/textPromt");
        let message = &error.problems[0].message;
        assert!(message.starts_with("textPromt is not a known field (expected one of `videoUrl`, `model`, `outputFormat`,"), "{message}");
        assert!(
            error
                .message
                .starts_with("invalid request: textPromt is not"),
            "{}",
            error.message
        );
        let unchanged = with_public_names(
            Error::new(ErrorCode::JobFailed, "failed"),
            camel_without_root,
        );
        assert_eq!(unchanged.message, "failed");
    }

    #[test]
    fn the_payload_names_the_class() {
        let error = Error::new(ErrorCode::JobFailed, "failed");
        let payload = error_payload(&error);
        assert_eq!(payload["class"], "JobFailedError");
        assert_eq!(payload["code"], "job_failed");
    }
}
