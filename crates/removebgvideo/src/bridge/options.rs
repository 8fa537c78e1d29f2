//! Per-call options, as the bindings pass them; the binding adds its cancellation and its
//! event handler to the `CallOptions` they become.

use schemars::JsonSchema;
use serde::Deserialize;

use super::checks::{Problems, positive_ms};
use super::number::Float;
use super::parse::parse;
use crate::{CallOptions, Error};

/// Options every call takes; all optional.
// Durations are milliseconds on the wire (`timeout_ms`), seconds in the packages.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Options {
    /// The Idempotency-Key of a POST (a new one when absent); repeat a call whose outcome is
    /// unknown with the key its error carries.
    pub idempotency_key: Option<String>,
    /// Retries of this call, instead of the client's setting.
    pub max_retries: Option<u32>,
    /// The limit of this call, instead of the client's.
    pub timeout_ms: Option<Float>,
    /// Extra headers for this call.
    // `[name, value]` pairs on the wire (a map in the packages).
    #[serde(default)]
    pub headers: Vec<(String, String)>,
}

impl Options {
    /// The call options from the bindings' JSON, checked.
    pub fn from_json(json: &str) -> Result<CallOptions, Error> {
        parse::<Options>("options", json)?.call()
    }

    /// The call options, checked; the binding adds its cancellation and event handler.
    pub fn call(self) -> Result<CallOptions, Error> {
        let mut problems = Problems::default();
        let timeout = positive_ms(&mut problems, "/options/timeout", self.timeout_ms);
        problems.finish(CallOptions {
            idempotency_key: self.idempotency_key,
            max_retries: self.max_retries,
            timeout,
            headers: self.headers,
            cancel: None,
            on_event: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use removebgvideo_core::{ErrorCode, ProblemCode};

    use super::*;

    #[test]
    fn unusable_numbers_are_errors_naming_the_public_field_never_panics() {
        for json in [
            r#"{"timeout_ms": -1}"#,
            r#"{"timeout_ms": 1e20}"#,
            r#"{"timeout_ms": 0}"#,
            r#"{"timeout_ms": "NaN"}"#,
            r#"{"timeout_ms": "Infinity"}"#,
        ] {
            let error = Options::from_json(json).unwrap_err();
            assert_eq!(error.code, ErrorCode::ValidationError, "{json}");
            let problem = &error.problems[0];
            assert_eq!(problem.code, ProblemCode::OutOfRange, "{json}");
            assert_eq!(problem.path, "/options/timeout", "{json}");
            assert!(
                problem
                    .message
                    .starts_with("options.timeout must be a number of seconds"),
                "{}",
                problem.message
            );
        }
        let error = Options::from_json(r#"{"timeout_ms": -1500}"#).unwrap_err();
        assert!(error.message.ends_with("(got -1.5)"), "{}", error.message);
        let error = Options::from_json(r#"{"timout_ms": 1}"#).unwrap_err();
        assert_eq!(error.problems[0].path, "/options/timout");
    }

    #[test]
    fn milliseconds_become_the_calls_timeout() {
        let call = Options::from_json(r#"{"timeout_ms": 1500}"#).unwrap();
        assert_eq!(call.timeout, Some(std::time::Duration::from_millis(1500)));
    }
}
