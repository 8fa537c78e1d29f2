//! `Idempotency-Key`: a repeat of the same request within the TTL replays the first answer.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use bytes::Bytes;

/// A stored answer.
#[derive(Clone, Debug)]
pub struct StoredResponse {
    /// Status.
    pub status: u16,
    /// Content type.
    pub content_type: Option<String>,
    /// Body.
    pub body: Bytes,
}

#[derive(Debug)]
enum Entry {
    InFlight {
        fingerprint: String,
        since: Instant,
    },
    Done {
        fingerprint: String,
        response: StoredResponse,
        at: Instant,
    },
}

/// What to do with a request carrying a key.
#[derive(Debug)]
pub enum Begin {
    /// First time: process it, then `finish` or `abandon` with this token.
    Proceed(Instant),
    /// Seen before with the same body: send this again.
    Replay(StoredResponse),
    /// Seen before with another body.
    Conflict,
    /// The first request with this key is still being processed.
    InProgress,
}

/// Answers remembered per (API key, Idempotency-Key).
#[derive(Debug, Default)]
pub struct IdempotencyStore {
    entries: HashMap<(String, String), Entry>,
}

impl IdempotencyStore {
    /// Looks a request up; marks it in flight when it is new.
    pub fn begin(
        &mut self,
        api_key: &str,
        key: &str,
        fingerprint: &str,
        now: Instant,
        ttl: Duration,
    ) -> Begin {
        let id = (api_key.to_owned(), key.to_owned());
        let expired = match self.entries.get(&id) {
            Some(Entry::Done { at, .. }) => now.saturating_duration_since(*at) > ttl,
            // A request in flight for a minute was lost with its connection: let a retry in.
            Some(Entry::InFlight { since, .. }) => {
                now.saturating_duration_since(*since) > Duration::from_secs(60)
            }
            None => true,
        };
        if !expired {
            return match &self.entries[&id] {
                Entry::Done {
                    fingerprint: stored,
                    response,
                    ..
                } if stored == fingerprint => Begin::Replay(response.clone()),
                Entry::InFlight {
                    fingerprint: stored,
                    ..
                } if stored == fingerprint => Begin::InProgress,
                _ => Begin::Conflict,
            };
        }
        self.entries.insert(
            id,
            Entry::InFlight {
                fingerprint: fingerprint.to_owned(),
                since: now,
            },
        );
        Begin::Proceed(now)
    }

    /// Whether `token` still owns the entry: a request let in after a stale one timed out
    /// must not have its entry replaced or removed by the stale one.
    fn owned(&self, id: &(String, String), token: Instant) -> bool {
        matches!(self.entries.get(id), Some(Entry::InFlight { since, .. }) if *since == token)
    }

    /// Stores the answer of a processed request.
    pub fn finish(
        &mut self,
        api_key: &str,
        key: &str,
        token: Instant,
        response: StoredResponse,
        now: Instant,
    ) {
        let id = (api_key.to_owned(), key.to_owned());
        if !self.owned(&id, token) {
            return;
        }
        if let Some(Entry::InFlight { fingerprint, .. }) = self.entries.remove(&id) {
            self.entries.insert(
                id,
                Entry::Done {
                    fingerprint,
                    response,
                    at: now,
                },
            );
        }
    }

    /// Forgets a request that did nothing (a 5xx, a 429, a failed upload, a panic or a dropped
    /// connection), so a retry is processed afresh.
    pub fn abandon(&mut self, api_key: &str, key: &str, token: Instant) {
        let id = (api_key.to_owned(), key.to_owned());
        if self.owned(&id, token) {
            self.entries.remove(&id);
        }
    }
}
