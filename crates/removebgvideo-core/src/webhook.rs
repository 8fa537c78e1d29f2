//! Webhook signing and verification: HMAC-SHA256 over `timestamp + "." + raw body`.

use std::time::Duration;

use hmac::{Hmac, Mac};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::error::{Error, ErrorCode};
use crate::http::Headers;
use crate::job::Job;
use crate::open_enum::{lenient, open_enum};
use crate::timestamp::Timestamp;

/// Header naming the event.
pub const EVENT_HEADER: &str = "X-Webhook-Event";
/// Header with the delivery id (the same on redeliveries: use it to drop duplicates).
pub const DELIVERY_ID_HEADER: &str = "X-Webhook-Delivery-Id";
/// Header with the signing time, ISO 8601.
pub const TIMESTAMP_HEADER: &str = "X-Webhook-Timestamp";
/// Header with `sha256=` + hex HMAC.
pub const SIGNATURE_HEADER: &str = "X-Webhook-Signature";
/// Default tolerance between the signing time and now: 300 s, either way.
pub const DEFAULT_TOLERANCE: Duration = Duration::from_secs(300);

open_enum! {
    /// Webhook event types.
    pub enum WebhookEventType {
        /// Processing began.
        JobStarted => "job.started",
        /// The job completed; `data.output_url` is set.
        JobCompleted => "job.completed",
        /// The job failed; `data.error` says why.
        JobFailed => "job.failed",
    }
}

/// The body of a webhook delivery.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct WebhookPayload {
    /// The event type.
    #[schemars(schema_with = "lenient::<WebhookEventType>")]
    pub event: WebhookEventType,
    /// The job, as `GET /v1/jobs/{job_id}` would return it.
    pub data: Job,
}

/// A delivery whose signature and timestamp checked out.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct VerifiedWebhook {
    /// The event type (from the body).
    pub event: WebhookEventType,
    /// The delivery id, when sent.
    pub delivery_id: Option<String>,
    /// The signing time as sent.
    pub timestamp: String,
    /// The job.
    pub data: Job,
}

type HmacSha256 = Hmac<Sha256>;

fn mac(secret: &str, timestamp: &str, body: &[u8]) -> HmacSha256 {
    // HMAC takes keys of any length, so this cannot fail.
    let mut mac =
        HmacSha256::new_from_slice(secret.as_bytes()).expect("HMAC accepts any key length");
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// The `X-Webhook-Signature` value for a body signed at `timestamp`.
pub fn sign(secret: &str, timestamp: &str, body: &[u8]) -> String {
    format!(
        "sha256={}",
        hex::encode(mac(secret, timestamp, body).finalize().into_bytes())
    )
}

/// A signing time as the header writes it (RFC 3339, UTC, whole seconds).
pub fn format_timestamp(at: Timestamp) -> String {
    let secs = (at.unix_millis() / 1000) as i64;
    time::OffsetDateTime::from_unix_timestamp(secs)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| secs.to_string())
}

/// Reads a signing time: RFC 3339 / ISO 8601, or whole Unix seconds.
fn parse_timestamp(text: &str) -> Option<Timestamp> {
    use time::format_description::well_known::{Iso8601, Rfc3339};
    let text = text.trim();
    if let Ok(secs) = text.parse::<u64>() {
        return Some(Timestamp::from_unix_secs(secs));
    }
    let parsed = time::OffsetDateTime::parse(text, &Rfc3339)
        .or_else(|_| time::OffsetDateTime::parse(text, &Iso8601::DEFAULT))
        .ok()?;
    let millis = parsed.unix_timestamp_nanos() / 1_000_000;
    u64::try_from(millis).ok().map(Timestamp::from_unix_millis)
}

/// Verifies a delivery against the raw body bytes, exactly as received.
///
/// Checks, in order: the secret is not empty, the headers are present, the signature matches (constant-time), the
/// signing time is within `tolerance` of `now` either way (stops replays), the body is an event.
pub fn verify(
    headers: &Headers,
    body: &[u8],
    secret: &str,
    now: Timestamp,
    tolerance: Duration,
) -> Result<VerifiedWebhook, Error> {
    if secret.trim().is_empty() {
        // With an empty key, the signature is one anyone can compute.
        return Err(Error::validation(vec![crate::validate::Problem::error(
            "/secret",
            crate::validate::ProblemCode::Blank,
            "secret must not be empty: a delivery signed with an empty secret proves nothing",
        )]));
    }
    let required = |name: &str| {
        headers.get(name).map(str::to_owned).ok_or_else(|| {
            Error::new(
                ErrorCode::WebhookMissingHeader,
                format!("the webhook delivery has no {name} header"),
            )
        })
    };
    let signature = required(SIGNATURE_HEADER)?;
    let timestamp = required(TIMESTAMP_HEADER)?;
    let signed_at = parse_timestamp(&timestamp).ok_or_else(|| {
        Error::new(
            ErrorCode::WebhookStaleTimestamp,
            format!("{TIMESTAMP_HEADER} is not an ISO 8601 time: {timestamp:?}"),
        )
    })?;
    let expected = signature
        .trim()
        .strip_prefix("sha256=")
        .and_then(|h| hex::decode(h).ok());
    let valid =
        expected.is_some_and(|bytes| mac(secret, &timestamp, body).verify_slice(&bytes).is_ok());
    if !valid {
        return Err(Error::new(
            ErrorCode::WebhookInvalidSignature,
            "the webhook signature does not match the body: check the signing secret, and verify the raw body bytes before any parsing",
        ));
    }
    let skew = now.distance(signed_at);
    if skew > tolerance {
        return Err(Error::new(
            ErrorCode::WebhookStaleTimestamp,
            format!(
                "the webhook was signed {} s away from now, beyond the {} s tolerance (a replay, or a wrong clock)",
                skew.as_secs(),
                tolerance.as_secs()
            ),
        ));
    }
    let payload: WebhookPayload = serde_json::from_slice(body).map_err(|err| {
        Error::new(
            ErrorCode::WebhookInvalidPayload,
            format!("the webhook body is not an event: {err}"),
        )
    })?;
    if let Some(header_event) = headers.get(EVENT_HEADER)
        && header_event != payload.event.as_str()
    {
        return Err(Error::new(
            ErrorCode::WebhookInvalidPayload,
            format!(
                "{EVENT_HEADER} says {header_event:?} but the body says {:?}",
                payload.event.as_str()
            ),
        ));
    }
    Ok(VerifiedWebhook {
        event: payload.event,
        delivery_id: headers.get(DELIVERY_ID_HEADER).map(str::to_owned),
        timestamp,
        data: payload.data,
    })
}
