//! Webhook verification for the bindings: their inputs checked, never trusted, before they
//! become the core's arguments. The tolerance's default is the core's
//! (`webhook::DEFAULT_TOLERANCE`); no binding defines its own.

use removebgvideo_core::webhook::{self, DEFAULT_TOLERANCE};
use removebgvideo_core::{Headers, Timestamp, units};
use schemars::JsonSchema;
use serde::Deserialize;

use super::number::Float;
use super::parse::parse;
use super::{guarded, to_json};
use crate::Error;

/// What a webhook verification needs besides the raw body (which travels as bytes).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookInput {
    /// The delivery's headers, as `[name, value]` pairs.
    #[serde(default)]
    pub headers: Vec<(String, String)>,
    /// The webhook secret.
    pub secret: String,
    /// How far the signing time may be from now, either way, in milliseconds (default 300 s,
    /// `webhook::DEFAULT_TOLERANCE`).
    pub tolerance_ms: Option<Float>,
    /// "Now", in milliseconds since 1970, to replay a captured delivery; the wall clock when
    /// absent.
    pub now_ms: Option<Float>,
}

/// Verifies a delivery against its raw body; the verified event as JSON.
pub fn verify_webhook(body: &[u8], input_json: &str) -> Result<String, Error> {
    guarded(|| {
        let input: WebhookInput = parse("", input_json)?;
        // Named as the public APIs name them: `tolerance` (in seconds) and `now`.
        let tolerance = match input.tolerance_ms {
            Some(ms) => units::seconds("/tolerance", ms.0 / 1000.0)?,
            None => DEFAULT_TOLERANCE,
        };
        let now = match input.now_ms {
            Some(ms) => units::unix_millis("/now", ms.0)?,
            None => Timestamp::from(std::time::SystemTime::now()),
        };
        let headers: Headers = input.headers.into_iter().collect();
        webhook::verify(&headers, body, &input.secret, now, tolerance).map(to_json)
    })
}

#[cfg(test)]
mod tests {
    use removebgvideo_core::ErrorCode;

    use super::*;

    #[test]
    fn unusable_numbers_are_validation_errors_naming_the_public_field() {
        for (input, path) in [
            (r#"{"secret": "whsec", "tolerance_ms": -1}"#, "/tolerance"),
            (r#"{"secret": "whsec", "tolerance_ms": 1e30}"#, "/tolerance"),
            (
                r#"{"secret": "whsec", "tolerance_ms": "Infinity"}"#,
                "/tolerance",
            ),
            (
                r#"{"secret": "whsec", "tolerance_ms": "NaN"}"#,
                "/tolerance",
            ),
            (r#"{"secret": "whsec", "now_ms": -5}"#, "/now"),
            (r#"{"secret": "whsec", "now_ms": "-Infinity"}"#, "/now"),
        ] {
            let error = verify_webhook(b"{}", input).unwrap_err();
            assert_eq!(error.code, ErrorCode::ValidationError, "{input}");
            assert_eq!(error.problems[0].path, path, "{input}");
        }
        let error = verify_webhook(b"{}", r#"{"secret": "s", "tolerence": 5}"#).unwrap_err();
        assert_eq!(error.problems[0].path, "/tolerence");
    }

    #[test]
    fn without_a_tolerance_the_cores_default_applies() {
        use removebgvideo_core::webhook::{SIGNATURE_HEADER, TIMESTAMP_HEADER, sign};
        let body = br#"{"event":"job.completed","data":{"id":"job_1","status":"completed"}}"#;
        let signed_at: u64 = 1_700_000_000;
        let signature = sign("whsec", &signed_at.to_string(), body);
        let verify_at = |seconds_later: u64| {
            let input = serde_json::json!({
                "secret": "whsec",
                "headers": [[TIMESTAMP_HEADER, signed_at.to_string()], [SIGNATURE_HEADER, signature]],
                "now_ms": (signed_at + seconds_later) * 1000,
            });
            verify_webhook(body, &input.to_string())
        };
        let inside = DEFAULT_TOLERANCE.as_secs();
        assert!(verify_at(inside).is_ok());
        assert_eq!(
            verify_at(inside + 1).unwrap_err().code,
            ErrorCode::WebhookStaleTimestamp
        );
    }
}
