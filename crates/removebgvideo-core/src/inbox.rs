//! The receiving end of webhooks, sans-IO: each delivery verified (raw body, constant time,
//! tolerance), duplicates dropped by delivery id, and the answer to give decided. A receiver,
//! a framework handler or a test only moves the bytes; every rule of receiving is here.

use std::collections::{HashSet, VecDeque};
use std::time::Duration;

use crate::error::{Error, ErrorCode};
use crate::http::Headers;
use crate::timestamp::Timestamp;
use crate::validate::{Problem, ProblemCode};
use crate::webhook::{self, SIGNATURE_HEADER, VerifiedWebhook};

/// Delivery ids remembered to drop duplicates: a sender redelivers within minutes, and ten
/// thousand jobs send three events each, so this keeps every id of a large batch (a few MiB).
pub const REMEMBERED_DELIVERIES: usize = 100_000;

/// The largest delivery body taken: a job object is a few KiB, and a receiver must not read
/// an unbounded body from anyone who can reach its port.
pub const MAX_BODY_BYTES: usize = 256 * 1024;

/// What became of one delivery.
#[derive(Clone, Debug, PartialEq)]
pub enum Receipt {
    /// Verified and new: hand it on.
    Accepted(VerifiedWebhook),
    /// Verified, and already accepted once (a redelivery): answered as received, handed on no
    /// more.
    Duplicate(VerifiedWebhook),
    /// Refused (not signed with the secret, outside the tolerance, not an event, too large):
    /// answered with `status` (400, or 413 for a body too large), and logged without its body.
    Rejected {
        /// The HTTP status to answer.
        status: u16,
        /// Why.
        error: Error,
    },
}

impl Receipt {
    /// The HTTP status to answer: 2xx only for a delivery recorded (so the sender stops
    /// sending it), 400 for one refused (so a forged or stale one is never taken).
    pub fn status(&self) -> u16 {
        match self {
            Receipt::Accepted(_) | Receipt::Duplicate(_) => 200,
            Receipt::Rejected { status, .. } => *status,
        }
    }

    /// The delivery, when verified (new or not).
    pub fn delivery(&self) -> Option<&VerifiedWebhook> {
        match self {
            Receipt::Accepted(delivery) | Receipt::Duplicate(delivery) => Some(delivery),
            Receipt::Rejected { .. } => None,
        }
    }

    /// The JSON body of the answer: what happened, and for a refusal the error's code and
    /// message (never the delivery's body).
    pub fn answer_body(&self) -> String {
        let answer = match self {
            Receipt::Accepted(_) => serde_json::json!({ "received": true }),
            Receipt::Duplicate(_) => serde_json::json!({ "received": true, "duplicate": true }),
            Receipt::Rejected { error, .. } => serde_json::json!({
                "received": false,
                "error": { "code": error.code.as_str(), "message": error.message },
            }),
        };
        answer.to_string()
    }
}

/// How an inbox checks deliveries.
#[derive(Clone, Debug, PartialEq)]
pub struct InboxConfig {
    /// The signing secret the API was given.
    pub secret: String,
    /// How far a signing time may be from now, either way.
    pub tolerance: Duration,
}

/// Verifies deliveries and remembers the ids of those accepted (see the module doc).
#[derive(Debug)]
pub struct Inbox {
    secret: String,
    tolerance: Duration,
    seen: HashSet<String>,
    order: VecDeque<String>,
    capacity: usize,
}

impl Inbox {
    /// An inbox checking against `secret` within `tolerance`; a blank secret is refused (a
    /// signature with an empty key is one anyone can compute).
    pub fn new(config: &InboxConfig) -> Result<Inbox, Error> {
        if config.secret.trim().is_empty() {
            return Err(Error::validation(vec![Problem::error(
                "/secret",
                ProblemCode::Blank,
                "secret must not be empty: a delivery signed with an empty secret proves nothing",
            )]));
        }
        Ok(Inbox {
            secret: config.secret.clone(),
            tolerance: config.tolerance,
            seen: HashSet::new(),
            order: VecDeque::new(),
            capacity: REMEMBERED_DELIVERIES,
        })
    }

    /// Keeps at most `capacity` delivery ids (the oldest forgotten first).
    pub fn with_capacity(mut self, capacity: usize) -> Inbox {
        self.capacity = capacity.max(1);
        self
    }

    /// Delivery ids remembered now.
    pub fn remembered(&self) -> usize {
        self.seen.len()
    }

    /// Takes one delivery: its headers and its body exactly as received.
    pub fn receive(&mut self, headers: &Headers, body: &[u8], now: Timestamp) -> Receipt {
        if body.len() > MAX_BODY_BYTES {
            return too_large(body.len());
        }
        let delivery = match webhook::verify(headers, body, &self.secret, now, self.tolerance) {
            Ok(delivery) => delivery,
            Err(error) => return Receipt::Rejected { status: 400, error },
        };
        // Without a delivery id, the signature stands for it: a redelivery signs again (a new
        // timestamp), so only the very same request is taken as a duplicate then.
        let id = match &delivery.delivery_id {
            Some(id) => format!("id:{id}"),
            None => format!("sig:{}", headers.get(SIGNATURE_HEADER).unwrap_or_default()),
        };
        if self.seen.contains(&id) {
            return Receipt::Duplicate(delivery);
        }
        self.remember(id);
        Receipt::Accepted(delivery)
    }

    fn remember(&mut self, id: String) {
        while self.order.len() >= self.capacity {
            if let Some(oldest) = self.order.pop_front() {
                self.seen.remove(&oldest);
            }
        }
        self.seen.insert(id.clone());
        self.order.push_back(id);
    }
}

/// The receipt of a body past [`MAX_BODY_BYTES`] (a receiver stops reading there).
pub fn too_large(bytes: usize) -> Receipt {
    Receipt::Rejected {
        status: 413,
        error: Error::new(
            ErrorCode::WebhookInvalidPayload,
            format!(
                "the webhook body has {bytes} bytes or more, over the {MAX_BODY_BYTES} a delivery may have"
            ),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job::JobStatus;
    use crate::webhook::{
        DELIVERY_ID_HEADER, EVENT_HEADER, TIMESTAMP_HEADER, format_timestamp, sign,
    };

    const SECRET: &str = "whsec_test";

    fn inbox() -> Inbox {
        Inbox::new(&InboxConfig {
            secret: SECRET.into(),
            tolerance: Duration::from_secs(300),
        })
        .unwrap()
    }

    fn body(status: &str) -> Vec<u8> {
        serde_json::json!({
            "event": "job.completed",
            "data": { "id": "job_1", "status": status },
        })
        .to_string()
        .into_bytes()
    }

    fn headers(body: &[u8], at: Timestamp, id: Option<&str>, secret: &str) -> Headers {
        let timestamp = format_timestamp(at);
        let mut headers = Headers::new();
        headers.push(EVENT_HEADER, "job.completed");
        headers.push(TIMESTAMP_HEADER, timestamp.clone());
        headers.push(SIGNATURE_HEADER, sign(secret, &timestamp, body));
        if let Some(id) = id {
            headers.push(DELIVERY_ID_HEADER, id);
        }
        headers
    }

    #[test]
    fn a_delivery_is_taken_once_and_its_redelivery_is_answered_but_not_handed_on() {
        let mut inbox = inbox();
        let now = Timestamp::from_unix_secs(1_800_000_000);
        let body = body("completed");
        let first = inbox.receive(&headers(&body, now, Some("dlv_1"), SECRET), &body, now);
        assert!(matches!(&first, Receipt::Accepted(d) if d.data.status == JobStatus::Completed));
        assert_eq!(first.status(), 200);
        // Redelivered later: signed again, the same id.
        let later = now.plus(Duration::from_secs(5));
        let again = inbox.receive(&headers(&body, later, Some("dlv_1"), SECRET), &body, later);
        assert!(matches!(again, Receipt::Duplicate(_)));
        assert_eq!(again.status(), 200);
        let other = inbox.receive(&headers(&body, later, Some("dlv_2"), SECRET), &body, later);
        assert!(matches!(other, Receipt::Accepted(_)));
    }

    #[test]
    fn forged_stale_and_oversized_deliveries_are_refused_with_400_or_413() {
        let mut inbox = inbox();
        let now = Timestamp::from_unix_secs(1_800_000_000);
        let body = body("completed");
        let forged = inbox.receive(
            &headers(&body, now, Some("a"), "not-the-secret"),
            &body,
            now,
        );
        assert!(
            matches!(&forged, Receipt::Rejected { error, .. } if error.code == ErrorCode::WebhookInvalidSignature)
        );
        assert_eq!(forged.status(), 400);
        let signed_long_ago = Timestamp::from_unix_secs(1_800_000_000 - 301);
        let replayed = inbox.receive(
            &headers(&body, signed_long_ago, Some("b"), SECRET),
            &body,
            now,
        );
        assert!(
            matches!(&replayed, Receipt::Rejected { error, .. } if error.code == ErrorCode::WebhookStaleTimestamp)
        );
        // A refused delivery is not remembered: the true one with that id is still taken.
        let true_one = inbox.receive(&headers(&body, now, Some("a"), SECRET), &body, now);
        assert!(matches!(true_one, Receipt::Accepted(_)));
        let huge = vec![b' '; MAX_BODY_BYTES + 1];
        let refused = inbox.receive(&headers(&huge, now, Some("c"), SECRET), &huge, now);
        assert_eq!(refused.status(), 413);
        assert!(!refused.answer_body().contains("job_1"));
    }

    #[test]
    fn a_tampered_body_is_refused_and_the_answer_never_echoes_it() {
        let mut inbox = inbox();
        let now = Timestamp::from_unix_secs(1_800_000_000);
        let signed = body("failed");
        let tampered = body("completed");
        let receipt = inbox.receive(&headers(&signed, now, Some("x"), SECRET), &tampered, now);
        assert_eq!(receipt.status(), 400);
        assert!(!receipt.answer_body().contains("completed"));
    }

    #[test]
    fn the_oldest_ids_are_forgotten_past_the_capacity() {
        let mut inbox = inbox().with_capacity(2);
        let now = Timestamp::from_unix_secs(1_800_000_000);
        let body = body("completed");
        for id in ["1", "2", "3"] {
            let receipt = inbox.receive(&headers(&body, now, Some(id), SECRET), &body, now);
            assert!(matches!(receipt, Receipt::Accepted(_)));
        }
        assert_eq!(inbox.remembered(), 2);
        let first = inbox.receive(&headers(&body, now, Some("1"), SECRET), &body, now);
        assert!(matches!(first, Receipt::Accepted(_)), "id 1 was forgotten");
        let third = inbox.receive(&headers(&body, now, Some("3"), SECRET), &body, now);
        assert!(matches!(third, Receipt::Duplicate(_)));
    }

    #[test]
    fn a_blank_secret_is_refused() {
        let error = Inbox::new(&InboxConfig {
            secret: "  ".into(),
            tolerance: Duration::from_secs(300),
        })
        .unwrap_err();
        assert_eq!(error.code, ErrorCode::ValidationError);
    }
}
