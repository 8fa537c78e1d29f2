//! Reading the bindings' JSON into the bridge's types: a mistake is a `validation_error` whose
//! problem names the field by its path (`/arguments/video_url`, `/options/poll_policy/factor`),
//! never by a position in a JSON text the caller did not write. Durations are `…_ms` on the
//! wire and `…` (in seconds) in the public APIs: paths and messages use the public names.

use removebgvideo_core::validate::display_path;
use removebgvideo_core::{Problem, ProblemCode};
use serde::de::DeserializeOwned;

use crate::Error;

/// Parses one input of a binding; `what` is the root of the paths of its problems (empty:
/// the paths start at the input's own fields).
pub fn parse<T: DeserializeOwned>(what: &str, json: &str) -> Result<T, Error> {
    let mut reader = serde_json::Deserializer::from_str(json);
    let value = serde_path_to_error::deserialize(&mut reader)
        .map_err(|e| Error::validation(vec![problem(what, Some(e.path()), e.inner())]))?;
    // Text after the value is a binding's bug; it is reported like any other mistake.
    reader
        .end()
        .map_err(|e| Error::validation(vec![problem(what, None, &e)]))?;
    Ok(value)
}

fn problem(
    what: &str,
    at: Option<&serde_path_to_error::Path>,
    inner: &serde_json::Error,
) -> Problem {
    use serde_path_to_error::Segment;
    let mut path = if what.is_empty() {
        String::new()
    } else {
        format!("/{what}")
    };
    for segment in at.into_iter().flat_map(|p| p.iter()) {
        match segment {
            Segment::Seq { index } => path += &format!("/{index}"),
            Segment::Map { key } => path += &format!("/{}", escape(public(key))),
            Segment::Enum { variant } => path += &format!("/{}", escape(variant)),
            Segment::Unknown => {}
        }
    }
    let mut text = inner.to_string();
    // serde_json ends its messages with the position in the text; the bindings wrote that
    // text, so the position means nothing to the caller (and the path says more).
    let position = format!(" at line {} column {}", inner.line(), inner.column());
    if inner.line() > 0 && text.ends_with(&position) {
        text.truncate(text.len() - position.len());
    }
    // An unknown field: the path ends with it (unless serde read it from a buffer, without
    // its path: then the field at least is named); the message says what is known there.
    if let Some(rest) = text.strip_prefix("unknown field `")
        && let Some((field, expected)) = rest.split_once('`')
    {
        let field = format!("/{}", escape(public(field)));
        if !path.ends_with(&field) {
            path += &field;
        }
        let expected = public_names(expected.trim_start_matches(", "));
        let message = format!("{} is not a known field ({expected})", display_path(&path));
        return Problem::error(path, ProblemCode::UnknownValue, message);
    }
    // A missing field: the path names it, the problem is the one the core's rules report.
    if let Some(rest) = text.strip_prefix("missing field `")
        && let Some((field, _)) = rest.split_once('`')
    {
        path += &format!("/{}", escape(public(field)));
        let message = format!("{} is required", display_path(&path));
        return Problem::error(path, ProblemCode::Required, message);
    }
    let message = match display_path(&path) {
        field if field.is_empty() => text,
        field => format!("{field}: {text}"),
    };
    Problem::error(path, ProblemCode::InvalidType, message)
}

/// The public name of a wire field: a duration's without its `_ms`.
fn public(wire: &str) -> &str {
    wire.strip_suffix("_ms").unwrap_or(wire)
}

/// serde's list of expected fields (`` `timeout_ms`, `headers` ``) in public names.
fn public_names(text: &str) -> String {
    text.split('`')
        .enumerate()
        .map(|(i, part)| if i % 2 == 1 { public(part) } else { part })
        .collect::<Vec<_>>()
        .join("`")
}

/// A JSON Pointer segment (RFC 6901).
fn escape(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Inner {
        factor: Option<f64>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Outer {
        video_url: Option<String>,
        poll_policy: Option<Inner>,
        timeout_ms: Option<f64>,
    }

    #[test]
    fn a_wrong_type_is_named_by_its_path_without_a_text_position() {
        let error = parse::<Outer>("arguments", r#"{"video_url": 5}"#).unwrap_err();
        let problem = &error.problems[0];
        assert_eq!(problem.path, "/arguments/video_url");
        assert_eq!(problem.code, ProblemCode::InvalidType);
        assert!(
            problem
                .message
                .starts_with("arguments.video_url: invalid type: integer `5`")
        );
        assert!(!problem.message.contains("line"), "{}", problem.message);
        assert!(!error.message.contains("column"), "{}", error.message);
    }

    #[test]
    fn an_unknown_field_is_named_by_its_own_path() {
        let error = parse::<Outer>("options", r#"{"poll_policy": {"factr": 2}}"#).unwrap_err();
        let problem = &error.problems[0];
        assert_eq!(problem.path, "/options/poll_policy/factr");
        assert_eq!(problem.code, ProblemCode::UnknownValue);
        assert_eq!(
            problem.message,
            "options.poll_policy.factr is not a known field (expected `factor`)"
        );
        let error = parse::<Outer>("x", r#"{"timeout": 1}"#).unwrap_err();
        assert_eq!(error.problems[0].path, "/x/timeout");
        assert!(
            error.problems[0]
                .message
                .ends_with("(expected one of `video_url`, `poll_policy`, `timeout`)"),
            "{}",
            error.problems[0].message
        );
        let error = parse::<Outer>("x", r#"{"a/b~": 1}"#).unwrap_err();
        assert_eq!(error.problems[0].path, "/x/a~1b~0");
    }

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Needs {
        job_id: String,
    }

    #[test]
    fn a_missing_field_is_required_and_named_by_its_path() {
        let error = parse::<Needs>("arguments", "{}").unwrap_err();
        assert_eq!(error.problems[0].path, "/arguments/job_id");
        assert_eq!(error.problems[0].code, ProblemCode::Required);
        assert_eq!(error.problems[0].message, "arguments.job_id is required");
    }

    #[test]
    fn a_duration_is_named_as_the_public_apis_name_it() {
        let error = parse::<Outer>("settings", r#"{"timeout_ms": "soon"}"#).unwrap_err();
        assert_eq!(error.problems[0].path, "/settings/timeout");
        assert!(
            error.problems[0]
                .message
                .starts_with("settings.timeout: invalid type")
        );
    }

    #[test]
    fn malformed_or_trailing_text_is_a_validation_error_too() {
        for json in ["{", "{} {}", "[]", ""] {
            let error = parse::<Outer>("settings", json).unwrap_err();
            assert_eq!(error.problems[0].path, "/settings", "{json}");
            assert!(!error.message.contains("column"), "{}", error.message);
        }
    }
}
