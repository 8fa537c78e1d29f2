//! `Idempotency-Key`: a repeat of the same request within the TTL replays the first answer.
//!
//! An entry is in flight from `begin` until its owner settles it with its token (`finish`, or
//! `abandon` on a failure, a dropped connection or a panic); until then every retry hears "in
//! progress", however long the owner takes, so a slow upload is never processed twice. Stored
//! answers are forgotten after the TTL, and the oldest are forgotten beyond `MAX_ANSWERS`.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use bytes::Bytes;

/// Stored answers kept at most; beyond it the oldest are forgotten before their TTL.
pub const MAX_ANSWERS: usize = 100_000;

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

/// Owns an in-flight entry: only the request holding it may settle the entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Token(u64);

#[derive(Debug)]
enum Entry {
    InFlight {
        fingerprint: String,
        token: Token,
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
    Proceed(Token),
    /// Seen before with the same body: send this again.
    Replay(StoredResponse),
    /// Seen before with another body.
    Conflict,
    /// The first request with this key is still being processed.
    InProgress,
}

type Id = (String, String);

/// Answers remembered per (API key, Idempotency-Key).
#[derive(Debug)]
pub struct IdempotencyStore {
    entries: HashMap<Id, Entry>,
    /// Stored answers in the order they were stored, to forget the oldest first. An item
    /// whose entry has since been replaced is stale and skipped.
    answers: VecDeque<(Instant, Id)>,
    max_answers: usize,
    next_token: u64,
}

impl Default for IdempotencyStore {
    fn default() -> Self {
        IdempotencyStore::with_capacity(MAX_ANSWERS)
    }
}

impl IdempotencyStore {
    /// A store that keeps at most `max_answers` stored answers.
    pub fn with_capacity(max_answers: usize) -> Self {
        IdempotencyStore {
            entries: HashMap::new(),
            answers: VecDeque::new(),
            max_answers: max_answers.max(1),
            next_token: 0,
        }
    }

    /// Looks a request up; marks it in flight when it is new.
    pub fn begin(
        &mut self,
        api_key: &str,
        key: &str,
        fingerprint: &str,
        now: Instant,
        ttl: Duration,
    ) -> Begin {
        self.prune(now, ttl);
        let id = (api_key.to_owned(), key.to_owned());
        match self.entries.get(&id) {
            Some(Entry::Done {
                fingerprint: stored,
                response,
                at,
            }) if now.saturating_duration_since(*at) <= ttl => {
                return if stored == fingerprint {
                    Begin::Replay(response.clone())
                } else {
                    Begin::Conflict
                };
            }
            // Never taken over: the owner settles it however long it runs.
            Some(Entry::InFlight {
                fingerprint: stored,
                ..
            }) => {
                return if stored == fingerprint {
                    Begin::InProgress
                } else {
                    Begin::Conflict
                };
            }
            // New, or an answer past its TTL that pruning has not reached yet.
            _ => {}
        }
        self.next_token += 1;
        let token = Token(self.next_token);
        self.entries.insert(
            id,
            Entry::InFlight {
                fingerprint: fingerprint.to_owned(),
                token,
            },
        );
        Begin::Proceed(token)
    }

    /// Forgets stored answers older than `ttl`, then the oldest beyond the cap. Each answer
    /// is queued once and dequeued once, so this costs O(1) per stored answer overall.
    fn prune(&mut self, now: Instant, ttl: Duration) {
        while let Some((at, _)) = self.answers.front() {
            let expired = now.saturating_duration_since(*at) > ttl;
            if !expired && self.answers.len() <= self.max_answers {
                break;
            }
            let Some((at, id)) = self.answers.pop_front() else {
                break;
            };
            // Only the answer this item queued; a newer entry under the same id stays.
            if matches!(self.entries.get(&id), Some(Entry::Done { at: stored, .. }) if *stored == at)
            {
                self.entries.remove(&id);
            }
        }
    }

    /// Whether `token` still owns the entry.
    fn owned(&self, id: &Id, token: Token) -> bool {
        matches!(self.entries.get(id), Some(Entry::InFlight { token: owner, .. }) if *owner == token)
    }

    /// Stores the answer of a processed request.
    pub fn finish(
        &mut self,
        api_key: &str,
        key: &str,
        token: Token,
        response: StoredResponse,
        now: Instant,
    ) {
        let id = (api_key.to_owned(), key.to_owned());
        if !self.owned(&id, token) {
            return;
        }
        if let Some(Entry::InFlight { fingerprint, .. }) = self.entries.remove(&id) {
            self.entries.insert(
                id.clone(),
                Entry::Done {
                    fingerprint,
                    response,
                    at: now,
                },
            );
            self.answers.push_back((now, id));
        }
    }

    /// Forgets a request that did nothing (a 5xx, a 429, a failed upload, a panic or a dropped
    /// connection), so a retry is processed afresh.
    pub fn abandon(&mut self, api_key: &str, key: &str, token: Token) {
        let id = (api_key.to_owned(), key.to_owned());
        if self.owned(&id, token) {
            self.entries.remove(&id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: Duration = Duration::from_secs(24 * 3600);

    fn answer() -> StoredResponse {
        StoredResponse {
            status: 200,
            content_type: None,
            body: Bytes::from_static(b"{}"),
        }
    }

    #[test]
    fn an_entry_in_flight_is_never_taken_over_while_its_owner_runs() {
        let mut store = IdempotencyStore::default();
        let t0 = Instant::now();
        let Begin::Proceed(token) = store.begin("key", "idem", "POST /v1/uploads", t0, DAY) else {
            panic!("a new key proceeds");
        };
        // A slow upload: its retries keep hearing "in progress", however late they come.
        for later in [1, 61, 3600, 3 * 24 * 3600] {
            let now = t0 + Duration::from_secs(later);
            assert!(
                matches!(
                    store.begin("key", "idem", "POST /v1/uploads", now, DAY),
                    Begin::InProgress
                ),
                "{later} s later"
            );
        }
        let done = t0 + Duration::from_secs(4 * 24 * 3600);
        store.finish("key", "idem", token, answer(), done);
        assert!(matches!(
            store.begin("key", "idem", "POST /v1/uploads", done, DAY),
            Begin::Replay(_)
        ));
    }

    #[test]
    fn an_abandoned_entry_lets_the_retry_in() {
        let mut store = IdempotencyStore::default();
        let t0 = Instant::now();
        let Begin::Proceed(token) = store.begin("key", "idem", "f", t0, DAY) else {
            panic!("a new key proceeds");
        };
        store.abandon("key", "idem", token);
        assert!(matches!(
            store.begin("key", "idem", "f", t0, DAY),
            Begin::Proceed(_)
        ));
    }

    #[test]
    fn answers_older_than_the_ttl_are_pruned() {
        let mut store = IdempotencyStore::default();
        let ttl = Duration::from_secs(10);
        let t0 = Instant::now();
        for i in 0..100 {
            let idem = format!("idem-{i}");
            let Begin::Proceed(token) = store.begin("key", &idem, "f", t0, ttl) else {
                panic!("a new key proceeds");
            };
            store.finish("key", &idem, token, answer(), t0);
        }
        assert_eq!(store.entries.len(), 100);
        let later = t0 + ttl + Duration::from_secs(1);
        let Begin::Proceed(_) = store.begin("key", "new", "f", later, ttl) else {
            panic!("a new key proceeds");
        };
        assert_eq!(store.entries.len(), 1, "only the one in flight is left");
    }

    #[test]
    fn the_number_of_stored_answers_is_capped() {
        let mut store = IdempotencyStore::with_capacity(50);
        let t0 = Instant::now();
        for i in 0..500u64 {
            let idem = format!("idem-{i}");
            let now = t0 + Duration::from_millis(i);
            let Begin::Proceed(token) = store.begin("key", &idem, "f", now, DAY) else {
                panic!("a new key proceeds");
            };
            store.finish("key", &idem, token, answer(), now);
        }
        let late = t0 + Duration::from_secs(1);
        store.begin("key", "last", "f", late, DAY);
        assert!(store.entries.len() <= 51, "{} entries", store.entries.len());
        assert!(store.answers.len() <= 50);
        // The newest answers are the ones kept.
        assert!(matches!(
            store.begin("key", "idem-499", "f", late, DAY),
            Begin::Replay(_)
        ));
        assert!(matches!(
            store.begin("key", "idem-0", "f", late, DAY),
            Begin::Proceed(_)
        ));
    }

    #[test]
    fn an_answer_past_its_ttl_is_not_replayed() {
        let mut store = IdempotencyStore::default();
        let ttl = Duration::from_secs(10);
        let t0 = Instant::now();
        let Begin::Proceed(token) = store.begin("key", "idem", "f", t0, ttl) else {
            panic!("a new key proceeds");
        };
        store.finish("key", "idem", token, answer(), t0);
        let later = t0 + Duration::from_secs(11);
        assert!(matches!(
            store.begin("key", "idem", "other", later, ttl),
            Begin::Proceed(_)
        ));
    }
}
