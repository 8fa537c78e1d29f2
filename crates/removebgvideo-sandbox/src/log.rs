//! The request log: one JSON record per request, kept in memory and optionally on stderr.
//!
//! A record holds fixed fields only, never a header as sent: the API key shows as a short
//! prefix, output tokens and file query strings as `<redacted>`, a fault as the plan applied
//! (not its header, whose `id=` is the caller's). The one header value kept whole is the
//! `Idempotency-Key`, a protocol value the client draws, which tests use to follow retries.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;

/// Records kept in memory; older ones are dropped.
const KEPT: usize = 20_000;

/// One request as the sandbox saw it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RequestRecord {
    /// When it arrived (RFC 3339, wall clock).
    pub at: String,
    /// The same, in Unix milliseconds (rates over a few seconds need more than whole seconds).
    pub at_ms: u64,
    /// Its request id.
    pub request_id: String,
    /// Method.
    pub method: String,
    /// Path and query.
    pub path: String,
    /// The status answered; `None` when the connection was dropped.
    pub status: Option<u16>,
    /// The first characters of the key, never the key.
    pub key_prefix: Option<String>,
    /// The Idempotency-Key sent.
    pub idempotency_key: Option<String>,
    /// Whether a stored answer was replayed.
    pub replayed: bool,
    /// Faults applied.
    pub fault: Option<String>,
    /// Time to answer, in milliseconds.
    pub latency_ms: u64,
}

/// The shared log.
#[derive(Debug)]
pub struct RequestLog {
    records: Mutex<VecDeque<RequestRecord>>,
    // Counted apart from the kept records, which are capped: a benchmark's request count
    // must not stop at the cap.
    total: AtomicU64,
    /// Answers 429 among them: what a benchmark's client met of the rate limit.
    rate_limited: AtomicU64,
    to_stderr: bool,
}

impl RequestLog {
    /// A log that also prints each record when `to_stderr`.
    pub fn new(to_stderr: bool) -> Self {
        RequestLog {
            records: Mutex::new(VecDeque::new()),
            total: AtomicU64::new(0),
            rate_limited: AtomicU64::new(0),
            to_stderr,
        }
    }

    /// Adds a record.
    pub fn push(&self, record: RequestRecord) {
        self.total.fetch_add(1, Ordering::Relaxed);
        if record.status == Some(429) {
            self.rate_limited.fetch_add(1, Ordering::Relaxed);
        }
        if self.to_stderr {
            eprintln!("{}", serde_json::to_string(&record).expect("JSON"));
        }
        let mut records = self.records.lock().expect("request log");
        if records.len() == KEPT {
            records.pop_front();
        }
        records.push_back(record);
    }

    /// Requests seen since the start, kept or not.
    pub fn total(&self) -> u64 {
        self.total.load(Ordering::Relaxed)
    }

    /// Requests answered 429 since the start, kept or not.
    pub fn rate_limited(&self) -> u64 {
        self.rate_limited.load(Ordering::Relaxed)
    }

    /// Every kept record, oldest first.
    pub fn snapshot(&self) -> Vec<RequestRecord> {
        self.records
            .lock()
            .expect("request log")
            .iter()
            .cloned()
            .collect()
    }
}

/// A key shown in logs: enough to tell keys apart, never enough to use one (at most 8
/// characters, and never more than half of a short key).
pub fn key_prefix(key: &str) -> String {
    let shown: String = key.chars().take(8.min(key.chars().count() / 2)).collect();
    format!("{shown}…")
}

/// What stands in the log for a secret.
pub const REDACTED: &str = "<redacted>";

/// A request's path and query as logged. An output path's token is a bearer secret, and so
/// is the query string of a presigned URL: `/sandbox/outputs/job_1/<token>.webm?X-Amz-...`
/// becomes `/sandbox/outputs/job_1/<redacted>.webm?<redacted>`. Every `/sandbox/` file path
/// loses its query; API paths keep theirs (filters and paging, no secrets).
pub fn redact_path(path_and_query: &str) -> String {
    let (path, query) = match path_and_query.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (path_and_query, None),
    };
    let mut logged = match path.strip_prefix("/sandbox/outputs/") {
        Some(rest) => {
            let (job, file) = rest.split_once('/').unwrap_or((rest, ""));
            if file.is_empty() {
                format!("/sandbox/outputs/{job}/")
            } else {
                // The extension says what was fetched and is no secret; a short one only.
                let extension = file.rsplit_once('.').map(|(_, ext)| ext).filter(|ext| {
                    (1..=5).contains(&ext.len()) && ext.bytes().all(|b| b.is_ascii_alphanumeric())
                });
                match extension {
                    Some(ext) => format!("/sandbox/outputs/{job}/{REDACTED}.{ext}"),
                    None => format!("/sandbox/outputs/{job}/{REDACTED}"),
                }
            }
        }
        None => path.to_owned(),
    };
    match query {
        Some(_) if path.starts_with("/sandbox/") => {
            logged.push('?');
            logged.push_str(REDACTED);
        }
        Some(query) => {
            logged.push('?');
            logged.push_str(query);
        }
        None => {}
    }
    logged
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_tokens_and_file_queries_are_redacted() {
        for (path, logged) in [
            (
                "/sandbox/outputs/job_1/0123456789abcdef.webm",
                "/sandbox/outputs/job_1/<redacted>.webm",
            ),
            (
                "/sandbox/outputs/job_1/0123456789abcdef.zip?X-Amz-Signature=abc",
                "/sandbox/outputs/job_1/<redacted>.zip?<redacted>",
            ),
            (
                "/sandbox/outputs/job_1/secret",
                "/sandbox/outputs/job_1/<redacted>",
            ),
            (
                "/sandbox/outputs/job_1/secret/deeper.secret-too",
                "/sandbox/outputs/job_1/<redacted>",
            ),
            ("/sandbox/outputs/job_1", "/sandbox/outputs/job_1/"),
            (
                "/sandbox/uploads/vid_1/a.mp4?sig=x",
                "/sandbox/uploads/vid_1/a.mp4?<redacted>",
            ),
            (
                "/v1/jobs?limit=5&status=failed",
                "/v1/jobs?limit=5&status=failed",
            ),
            ("/v1/jobs/job_1", "/v1/jobs/job_1"),
        ] {
            assert_eq!(redact_path(path), logged, "{path}");
        }
    }

    #[test]
    fn key_prefixes_never_show_a_short_key_whole() {
        assert_eq!(key_prefix("rbv_sandbox_demo"), "rbv_sand…");
        assert_eq!(key_prefix("s3cr3t"), "s3c…");
        assert_eq!(key_prefix("a"), "…");
        assert_eq!(key_prefix(""), "…");
    }
}
