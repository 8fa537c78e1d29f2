//! Request validation: every problem at once, each with a JSON Pointer, a stable code and a sentence.

use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::error::Error;

/// Whether a problem blocks the request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// The request is not sent.
    Error,
    /// The request is sent; the problem is logged (for example a field the server ignores).
    Warning,
}

/// Stable codes of request problems, the same in every language and in `schema/vectors/`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ProblemCode {
    /// A required field is missing or empty.
    Required,
    /// A field has the wrong JSON type.
    InvalidType,
    /// A URL is not an absolute http(s) URL with a host.
    InvalidUrl,
    /// A value is not one of the documented values.
    UnknownValue,
    /// A number is outside its allowed range.
    OutOfRange,
    /// A list has the wrong number of items.
    WrongLength,
    /// A colour is not `#rrggbb` or normalized RGB.
    InvalidColor,
    /// A transparent background was asked for in a format without alpha (mp4).
    AlphaUnsupported,
    /// The flat and the nested background fields say different things.
    ConflictingBackground,
    /// A field only used with another setting was given without it.
    NotApplicable,
    /// A text field is empty or only whitespace.
    Blank,
    /// An upload's MIME type is not accepted.
    UnsupportedMediaType,
    /// An upload is larger than the API accepts.
    FileTooLarge,
    /// An upload has no bytes.
    EmptyFile,
    /// A job id is empty, whitespace, `.` or `..`, or contains control characters.
    InvalidJobId,
    /// An Idempotency-Key is empty, longer than 255 characters, or not printable ASCII.
    InvalidIdempotencyKey,
    /// `text_prompt` is given with a model that ignores it (a warning, not an error).
    PromptIgnored,
}

impl ProblemCode {
    /// The wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            ProblemCode::Required => "required",
            ProblemCode::InvalidType => "invalid_type",
            ProblemCode::InvalidUrl => "invalid_url",
            ProblemCode::UnknownValue => "unknown_value",
            ProblemCode::OutOfRange => "out_of_range",
            ProblemCode::WrongLength => "wrong_length",
            ProblemCode::InvalidColor => "invalid_color",
            ProblemCode::AlphaUnsupported => "alpha_unsupported",
            ProblemCode::ConflictingBackground => "conflicting_background",
            ProblemCode::NotApplicable => "not_applicable",
            ProblemCode::Blank => "blank",
            ProblemCode::UnsupportedMediaType => "unsupported_media_type",
            ProblemCode::FileTooLarge => "file_too_large",
            ProblemCode::EmptyFile => "empty_file",
            ProblemCode::InvalidJobId => "invalid_job_id",
            ProblemCode::InvalidIdempotencyKey => "invalid_idempotency_key",
            ProblemCode::PromptIgnored => "prompt_ignored",
        }
    }
}

/// One thing wrong with a request.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Problem {
    /// JSON Pointer (RFC 6901) to the field, e.g. `/bg_color/0`; empty for the whole request.
    pub path: String,
    /// Stable code of the rule that was broken.
    pub code: ProblemCode,
    /// A sentence that names the field and the rule.
    pub message: String,
    /// `error` blocks the request; `warning` is logged and the request is sent.
    pub severity: Severity,
}

impl Problem {
    /// A blocking problem.
    pub fn error(path: impl Into<String>, code: ProblemCode, message: impl Into<String>) -> Self {
        Problem {
            path: path.into(),
            code,
            message: message.into(),
            severity: Severity::Error,
        }
    }

    /// A non-blocking problem.
    pub fn warning(path: impl Into<String>, code: ProblemCode, message: impl Into<String>) -> Self {
        Problem {
            severity: Severity::Warning,
            ..Problem::error(path, code, message)
        }
    }
}

/// A request type that can check itself before it is sent.
pub trait Validate {
    /// Every problem, errors and warnings, in field order.
    fn problems(&self) -> Vec<Problem>;

    /// `Ok(warnings)` when nothing blocks the request, else a `validation_error` listing all.
    fn validate(&self) -> Result<Vec<Problem>, Error> {
        into_result(self.problems())
    }
}

/// Splits problems into warnings (returned) and errors (a `validation_error` with all of them).
pub fn into_result(problems: Vec<Problem>) -> Result<Vec<Problem>, Error> {
    if problems.iter().any(|p| p.severity == Severity::Error) {
        Err(Error::validation(problems))
    } else {
        Ok(problems)
    }
}

/// Reads a request from JSON and validates it: the path the sandbox and the shared vectors use.
///
/// A wrong JSON type stops deserialization at the first offending field, so it is reported
/// alone; every other rule is reported all at once.
pub fn parse_and_validate<T: DeserializeOwned + Validate>(
    value: &serde_json::Value,
) -> Result<(T, Vec<Problem>), Error> {
    let request: T = serde_path_to_error::deserialize(value).map_err(|err| {
        let path = pointer_from_serde_path(err.path());
        let field = display_path(&path);
        let inner = err.into_inner().to_string();
        let code = if inner.starts_with("missing field") {
            ProblemCode::Required
        } else {
            ProblemCode::InvalidType
        };
        let message = if field.is_empty() {
            format!("request {inner}")
        } else {
            format!("{field}: {inner}")
        };
        Error::validation(vec![Problem::error(path, code, message)])
    })?;
    let warnings = request.validate()?;
    Ok((request, warnings))
}

fn pointer_from_serde_path(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    path.iter()
        .filter_map(|segment| match segment {
            Segment::Seq { index } => Some(format!("/{index}")),
            Segment::Map { key } => Some(format!("/{}", escape_pointer(key))),
            Segment::Enum { .. } | Segment::Unknown => None,
        })
        .collect()
}

fn escape_pointer(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

/// A JSON Pointer as people write it: `/bg_color/0` -> `bg_color[0]`.
pub fn display_path(pointer: &str) -> String {
    let mut out = String::new();
    for segment in pointer.split('/').skip(1) {
        let segment = segment.replace("~1", "/").replace("~0", "~");
        if segment.chars().all(|c| c.is_ascii_digit()) && !segment.is_empty() {
            out.push_str(&format!("[{segment}]"));
        } else {
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(&segment);
        }
    }
    out
}

/// Collects problems for one request; each check names its field through a JSON Pointer.
#[derive(Debug, Default)]
pub(crate) struct Checker {
    pub(crate) problems: Vec<Problem>,
}

impl Checker {
    pub(crate) fn error(&mut self, path: &str, code: ProblemCode, rule: impl std::fmt::Display) {
        let field = display_path(path);
        self.problems
            .push(Problem::error(path, code, format!("{field} {rule}")));
    }

    pub(crate) fn warning(&mut self, path: &str, code: ProblemCode, rule: impl std::fmt::Display) {
        let field = display_path(path);
        self.problems
            .push(Problem::warning(path, code, format!("{field} {rule}")));
    }

    /// An absolute http(s) URL with a host.
    pub(crate) fn http_url(&mut self, path: &str, value: &str) {
        if value.trim().is_empty() {
            return self.error(
                path,
                ProblemCode::Required,
                "is required and must not be blank",
            );
        }
        match url::Url::parse(value) {
            Ok(url) if matches!(url.scheme(), "http" | "https") && url.has_host() => {}
            Ok(url) => self.error(
                path,
                ProblemCode::InvalidUrl,
                format!(
                    "must be an http or https URL (got scheme {:?})",
                    url.scheme()
                ),
            ),
            Err(err) => self.error(
                path,
                ProblemCode::InvalidUrl,
                format!("must be an absolute http or https URL ({err})"),
            ),
        }
    }

    /// A value of an open enum that must be known in a request.
    pub(crate) fn known<T: std::fmt::Display>(
        &mut self,
        path: &str,
        value: &T,
        is_known: bool,
        known: &[&str],
    ) {
        if !is_known {
            self.error(
                path,
                ProblemCode::UnknownValue,
                format!(
                    "must be one of {} (got {:?})",
                    known.join(", "),
                    value.to_string()
                ),
            );
        }
    }

    /// A number within an inclusive range.
    pub(crate) fn range<N: PartialOrd + std::fmt::Display + Copy>(
        &mut self,
        path: &str,
        value: N,
        min: N,
        max: N,
    ) {
        if !(min..=max).contains(&value) {
            self.error(
                path,
                ProblemCode::OutOfRange,
                format!("must be between {min} and {max} (got {value})"),
            );
        }
    }

    /// Text that must contain something other than whitespace.
    pub(crate) fn not_blank(&mut self, path: &str, value: &str) {
        if value.trim().is_empty() {
            self.error(
                path,
                ProblemCode::Blank,
                "must not be empty or only whitespace",
            );
        }
    }

    /// A normalized RGB list: three numbers in [0, 1].
    pub(crate) fn rgb_list(&mut self, path: &str, channels: &[f64]) {
        if channels.len() != 3 {
            return self.error(
                path,
                ProblemCode::WrongLength,
                format!(
                    "must have exactly 3 numbers, red, green and blue (got {})",
                    channels.len()
                ),
            );
        }
        for (i, channel) in channels.iter().enumerate() {
            self.range(&format!("{path}/{i}"), *channel, 0.0, 1.0);
        }
    }

    pub(crate) fn finish(self) -> Vec<Problem> {
        self.problems
    }
}
