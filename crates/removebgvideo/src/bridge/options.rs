//! Per-call options, as the bindings pass them; the binding adds its cancellation and its
//! event handler to the `CallOptions` they become.

use schemars::JsonSchema;
use serde::Deserialize;

use super::checks::{Problems, positive};
use super::parse::parse;
use crate::{CallOptions, Error};

/// Options every call takes; all optional. Durations in seconds.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Options {
    /// The Idempotency-Key of a POST (a new one when absent); repeat a call whose outcome is
    /// unknown with the key its error carries.
    pub idempotency_key: Option<String>,
    /// Retries of this call, instead of the client's setting.
    pub max_retries: Option<u32>,
    /// The limit of this call, instead of the client's.
    pub timeout: Option<f64>,
    /// Extra headers for this call, as `[name, value]` pairs.
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
        let timeout = positive(&mut problems, "/options/timeout", self.timeout);
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
    fn unusable_numbers_are_errors_naming_their_field_never_panics() {
        for json in [
            r#"{"timeout": -1}"#,
            r#"{"timeout": 1e20}"#,
            r#"{"timeout": 0}"#,
        ] {
            let error = Options::from_json(json).unwrap_err();
            assert_eq!(error.code, ErrorCode::ValidationError, "{json}");
            assert_eq!(error.problems[0].code, ProblemCode::OutOfRange, "{json}");
            assert_eq!(error.problems[0].path, "/options/timeout", "{json}");
        }
        let error = Options::from_json(r#"{"timout": 1}"#).unwrap_err();
        assert_eq!(error.problems[0].path, "/options/timout");
    }
}
