//! Webhook verification: arbitrary deliveries never panic and never verify without the right
//! signature; a delivery signed with the secret verifies, and any change to it does not.

use std::time::Duration;

use arbitrary::Unstructured;
use removebgvideo_core::webhook::{
    self, DELIVERY_ID_HEADER, EVENT_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER,
};
use removebgvideo_core::{ErrorCode, Headers, Timestamp};

const NAMES: &[&str] = &[
    EVENT_HEADER,
    DELIVERY_ID_HEADER,
    TIMESTAMP_HEADER,
    SIGNATURE_HEADER,
];

fn arbitrary_delivery(u: &mut Unstructured<'_>) -> arbitrary::Result<()> {
    let headers = crate::headers(u, NAMES)?;
    let secret: String = u.arbitrary()?;
    let now = Timestamp::from_unix_millis(u.arbitrary()?);
    let tolerance = Duration::from_millis(u.arbitrary()?);
    let body = u.bytes(u.len())?;
    if let Ok(verified) = webhook::verify(&headers, body, &secret, now, tolerance) {
        // Only a signature made with this secret over this body and timestamp passes.
        let expected = webhook::sign(&secret, &verified.timestamp, body);
        let given = headers.get(SIGNATURE_HEADER).unwrap_or_default().trim();
        assert!(
            given.eq_ignore_ascii_case(&expected),
            "verified without the signature"
        );
        assert!(!secret.trim().is_empty(), "an empty secret verified");
    }
    Ok(())
}

pub fn verify(data: &[u8]) {
    let _ = arbitrary_delivery(&mut Unstructured::new(data));
}

fn signed_delivery(u: &mut Unstructured<'_>) -> arbitrary::Result<()> {
    let secret: String = u.arbitrary()?;
    if secret.trim().is_empty() {
        return Ok(());
    }
    let event = *u.choose(&["job.started", "job.completed", "job.failed"])?;
    let job_id: String = u.arbitrary()?;
    let signed_at = Timestamp::from_unix_millis(u.int_in_range(0..=4_102_444_800)? * 1000);
    let skew = Duration::from_secs(u.int_in_range(0..=300)?);
    let now = if u.arbitrary()? {
        signed_at.plus(skew)
    } else {
        Timestamp::from_unix_millis(
            signed_at
                .unix_millis()
                .saturating_sub(skew.as_millis() as u64),
        )
    };
    let body = serde_json::json!({"event": event, "data": {"id": job_id, "status": "completed"}})
        .to_string()
        .into_bytes();
    let timestamp = webhook::format_timestamp(signed_at);
    let headers: Headers = [
        (EVENT_HEADER, event.to_owned()),
        (TIMESTAMP_HEADER, timestamp.clone()),
        (SIGNATURE_HEADER, webhook::sign(&secret, &timestamp, &body)),
    ]
    .into_iter()
    .collect();
    let tolerance = webhook::DEFAULT_TOLERANCE;
    let verified = webhook::verify(&headers, &body, &secret, now, tolerance)
        .expect("a delivery signed with the secret verifies");
    assert_eq!(verified.event.as_str(), event);
    assert_eq!(verified.data.id, job_id);

    // Any flipped bit of the body, or another secret, fails the signature.
    let mut tampered = body.clone();
    let at = u.choose_index(tampered.len())?;
    tampered[at] ^= 1 << u.int_in_range(0..=7)?;
    let error = webhook::verify(&headers, &tampered, &secret, now, tolerance).unwrap_err();
    assert_eq!(error.code, ErrorCode::WebhookInvalidSignature);
    let other = format!("{secret}x");
    let error = webhook::verify(&headers, &body, &other, now, tolerance).unwrap_err();
    assert_eq!(error.code, ErrorCode::WebhookInvalidSignature);
    // Outside the tolerance, a true signature is a replay.
    let late = signed_at.plus(tolerance + Duration::from_secs(1 + u.int_in_range(0..=10_000)?));
    let error = webhook::verify(&headers, &body, &secret, late, tolerance).unwrap_err();
    assert_eq!(error.code, ErrorCode::WebhookStaleTimestamp);
    Ok(())
}

pub fn roundtrip(data: &[u8]) {
    let _ = signed_delivery(&mut Unstructured::new(data));
}
