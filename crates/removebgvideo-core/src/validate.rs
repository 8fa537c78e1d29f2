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
    /// A batch manifest uses an item key twice.
    DuplicateKey,
    /// A batch manifest row has a column that is not a manifest column.
    UnknownColumn,
    /// A batch manifest cell or line is not valid JSON.
    InvalidJson,
    /// A batch manifest is not valid CSV.
    InvalidCsv,
    /// A batch manifest row has neither a `video_url` nor a `file`.
    MissingInput,
    /// A batch manifest row has both a `video_url` and a `file`.
    TwoInputs,
    /// A batch manifest's `file` cannot be read.
    FileUnreadable,
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
            ProblemCode::DuplicateKey => "duplicate_key",
            ProblemCode::UnknownColumn => "unknown_column",
            ProblemCode::InvalidJson => "invalid_json",
            ProblemCode::InvalidCsv => "invalid_csv",
            ProblemCode::MissingInput => "missing_input",
            ProblemCode::TwoInputs => "two_inputs",
            ProblemCode::FileUnreadable => "file_unreadable",
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

/// The problems of a request its caller gave a background for (`None`: none given), the
/// background already applied when it parsed. A background that does not parse is reported
/// with the request's other problems, not alone; and since one was given, the alpha rule
/// (which reads an absent background as the default transparent one) is left out then.
pub fn problems_with_background<R: Validate>(
    request: &R,
    background: Option<&Result<crate::Background, Error>>,
) -> Vec<Problem> {
    let mut problems = request.problems();
    if let Some(Err(bad)) = background {
        problems.retain(|p| p.code != ProblemCode::AlphaUnsupported);
        problems.extend(bad.problems.iter().cloned());
    }
    problems
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

/// The characters `char::is_whitespace` (and so `str::trim`) counts as whitespace, as ranges.
/// Published patterns list them instead of writing `\s`, which means a different set in
/// ECMA-262, Python and Rust regexes: the schema must say exactly what the server checks.
const WHITESPACE: &[(char, char)] = &[
    ('\u{9}', '\u{d}'),
    (' ', ' '),
    ('\u{85}', '\u{85}'),
    ('\u{a0}', '\u{a0}'),
    ('\u{1680}', '\u{1680}'),
    ('\u{2000}', '\u{200a}'),
    ('\u{2028}', '\u{2029}'),
    ('\u{202f}', '\u{202f}'),
    ('\u{205f}', '\u{205f}'),
    ('\u{3000}', '\u{3000}'),
];

/// The characters `char::is_control` counts as control characters (Unicode category Cc).
const CONTROL: &[(char, char)] = &[('\u{0}', '\u{1f}'), ('\u{7f}', '\u{9f}')];

fn is_excluded_from_urls(c: char) -> bool {
    c.is_whitespace() || c.is_control()
}

/// Ranges as the body of a regex character class, each character written `\uXXXX`, which
/// ECMA-262, Python and Rust regexes all read the same way.
fn class_body(ranges: &[&[(char, char)]]) -> String {
    let escape = |c: char| format!("\\u{:04x}", u32::from(c));
    // Sorted and merged, so that a character is listed once.
    let mut merged: Vec<(u32, u32)> = ranges
        .iter()
        .flat_map(|set| set.iter())
        .map(|&(first, last)| (u32::from(first), u32::from(last)))
        .collect();
    merged.sort_unstable();
    merged.dedup();
    let mut ranges: Vec<(u32, u32)> = Vec::new();
    for (first, last) in merged {
        match ranges.last_mut() {
            Some(previous) if first <= previous.1 + 1 => previous.1 = previous.1.max(last),
            _ => ranges.push((first, last)),
        }
    }
    ranges
        .into_iter()
        .filter_map(|(first, last)| Some((char::from_u32(first)?, char::from_u32(last)?)))
        .map(|(first, last)| {
            if first == last {
                escape(first)
            } else {
                format!("{}-{}", escape(first), escape(last))
            }
        })
        .collect()
}

/// A pattern that matches text with something other than whitespace: what `not_blank` accepts.
pub fn not_blank_pattern() -> String {
    format!("[^{}]", class_body(&[WHITESPACE]))
}

/// One decimal IPv4 octet, 0 to 255, without leading zeros (the URL standard reads `010` as
/// octal).
pub const IPV4_OCTET_PATTERN: &str = "(25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])";

/// The characters a host name may have in the published pattern: RFC 3986's unreserved and
/// sub-delims but `.` (the label separator) and `%` (the pattern does not check percent
/// escapes). The URL standard, and so the server, accepts every one of them.
const HOST_CHARS: &str =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_~!$&'()*+,;=";

/// A regex character class of the host characters for which `keep` holds, written so that
/// ECMA-262, Python and Rust read it alike: runs of letters or digits as ranges, `-` escaped,
/// every other character once (so no `&&` or `~~`, which Rust reads as set operations).
fn host_class(keep: impl Fn(char) -> bool) -> String {
    let chars: Vec<char> = HOST_CHARS.chars().filter(|&c| keep(c)).collect();
    let mut class = String::from("[");
    let mut i = 0;
    while i < chars.len() {
        let start = chars[i];
        let mut end = i;
        while end + 1 < chars.len()
            && start.is_ascii_alphanumeric()
            && chars[end + 1].is_ascii_alphanumeric()
            && u32::from(chars[end + 1]) == u32::from(chars[end]) + 1
        {
            end += 1;
        }
        let literal = |c: char| {
            if c == '-' {
                "\\-".to_owned()
            } else {
                c.to_string()
            }
        };
        if end > i + 1 {
            class.push_str(&format!("{}-{}", literal(start), literal(chars[end])));
        } else {
            (i..=end).for_each(|k| class.push_str(&literal(chars[k])));
        }
        i = end + 1;
    }
    class.push(']');
    class
}

/// A pattern for the URLs `http_url` accepts, as the published schema states them: `http` or
/// `https` in any case, `://`, a host, an optional port (up to 65535; empty or with leading
/// zeros too), and a path, query or fragment (from `/`, `?`, `#` or a backslash) without spaces or
/// control characters.
///
/// The host is a dotted IPv4 address, or a name made of dot-separated labels of letters,
/// digits and `-_~!$&'()*+,;=`, with an optional trailing dot, whose last label is not a
/// number: the URL standard reads a host ending in a number (`7`, `010`, `0x1f`) as an IPv4
/// address, and refuses it if the whole is not one. The server parses URLs by that standard,
/// so this is what it accepts, less what no pattern should try to spell out (IPv6 literals,
/// user info, percent escapes, non-ASCII names, IPv4 in octal or hex, the host characters
/// `"`, `` ` ``, `{` and `}` that RFC 3986 refuses) and one case no pattern can check (a label
/// starting `xn--` must be valid Punycode).
///
/// Fields with this pattern carry no `format: uri`: RFC 3986 refuses what the server accepts
/// (a path with non-ASCII characters, for one), and a validator that checks formats would then
/// refuse requests the server takes.
pub fn http_url_pattern() -> String {
    let c = host_class(|_| true);
    let non_digit = host_class(|ch| !ch.is_ascii_digit());
    let non_digit_x = host_class(|ch| !ch.is_ascii_digit() && ch != 'x' && ch != 'X');
    let non_hex = host_class(|ch| !ch.is_ascii_hexdigit());
    // The last label, not a number: it starts with a non-digit; or its digits are followed by
    // a non-digit, where a lone `0` followed by `x` must then meet a non-hex character.
    let last_label = [
        format!("{non_digit}{c}*"),
        format!("[1-9][0-9]*{non_digit}{c}*"),
        format!("0[0-9]+{non_digit}{c}*"),
        format!("0{non_digit_x}{c}*"),
        format!("0[xX][0-9A-Fa-f]*{non_hex}{c}*"),
    ]
    .join("|");
    let octet = IPV4_OCTET_PATTERN;
    http_url_pattern_with_host(&format!(
        "(({c}*\\.)*({last_label})\\.?|{octet}(\\.{octet}){{3}}\\.?)"
    ))
}

/// `http_url_pattern` with the host part replaced by `host` (a regex group), for a server with
/// its own rule on hosts (the sandbox delivers webhooks to loopback hosts only).
pub fn http_url_pattern_with_host(host: &str) -> String {
    let port =
        "0*(6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|[1-9][0-9]{0,3})?";
    let excluded = class_body(&[CONTROL, WHITESPACE]);
    format!("^[hH][tT][tT][pP][sS]?://{host}(:{port})?([/?#\\\\][^{excluded}]*)?$")
}

/// The JSON Schema of "`field` is given": present and not null, since every request type reads
/// a null as absent. Rules that need a field (`if`/`then`) use it, so that `{"color": null}`
/// does not pass for a colour. It also defines the property where it is required, as linters
/// expect.
pub(crate) fn given(field: &str) -> serde_json::Value {
    serde_json::json!({ "required": [field], "properties": { field: { "not": { "type": "null" } } } })
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

    /// An absolute http(s) URL with a host, written without spaces or control characters.
    pub(crate) fn http_url(&mut self, path: &str, value: &str) {
        if value.trim().is_empty() {
            return self.error(
                path,
                ProblemCode::Required,
                "is required and must not be blank",
            );
        }
        // The URL parser would quietly drop tabs and newlines and encode spaces, so a mangled
        // URL would pass as another; RFC 3986 allows neither, and the schema refuses both.
        if let Some(c) = value.chars().find(|&c| is_excluded_from_urls(c)) {
            return self.error(
                path,
                ProblemCode::InvalidUrl,
                format!(
                    "must not contain spaces or control characters (found U+{:04X}); percent-encode them, e.g. %20 for a space",
                    u32::from(c)
                ),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn in_ranges(ranges: &[(char, char)], c: char) -> bool {
        ranges
            .iter()
            .any(|&(first, last)| (first..=last).contains(&c))
    }

    #[test]
    fn the_published_character_sets_are_the_ones_rust_checks() {
        for c in (0..=0x10FFFF).filter_map(char::from_u32) {
            assert_eq!(
                in_ranges(WHITESPACE, c),
                c.is_whitespace(),
                "U+{:04X}",
                u32::from(c)
            );
            assert_eq!(
                in_ranges(CONTROL, c),
                c.is_control(),
                "U+{:04X}",
                u32::from(c)
            );
        }
    }

    #[test]
    fn patterns_escape_every_character() {
        let pattern = not_blank_pattern();
        assert!(
            pattern.starts_with("[^\\u0009-\\u000d\\u0020\\u0085"),
            "{pattern}"
        );
        assert!(pattern.is_ascii());
        assert!(http_url_pattern().is_ascii());
    }
}
