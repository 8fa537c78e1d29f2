//! Sandbox settings: keys and their credits, rate limits, the clock speed, limits and faults.

use std::time::Duration;

use removebgvideo_core::units::{self, MAX_SECONDS};
use removebgvideo_core::validate::display_path;
use removebgvideo_core::{Error, Problem, ProblemCode};
use serde::{Deserialize, Serialize};

/// The fastest clock accepted: a million times real time (a 10 minute video in 0.6 ms).
pub const MAX_SPEED: f64 = 1e6;
/// The most extra attempts of a webhook delivery (the pause doubles each time).
pub const MAX_WEBHOOK_RETRIES: u32 = 10;

/// The preset key with ample credits; printed on start.
pub const DEMO_KEY: &str = "rbv_sandbox_demo";
/// The preset key with no credits: starting a job answers 402.
pub const NO_CREDITS_KEY: &str = "rbv_sandbox_no_credits";
/// The preset key with a very low rate limit: a burst answers 429.
pub const RATE_LIMITED_KEY: &str = "rbv_sandbox_rate_limited";

/// One API key the sandbox accepts.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct KeyConfig {
    /// The key itself.
    pub key: String,
    /// Credits available.
    pub credits: f64,
    /// Requests per second the key's bucket refills with.
    pub rate_per_second: f64,
    /// The bucket's size: how many requests may come at once.
    pub burst: u32,
}

/// Faults injected at random into `/v1` and `/api` requests (rates are probabilities, 0 to 1).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct FaultConfig {
    /// Answer 500, 502 or 503 instead of serving the request.
    pub error_rate: f64,
    /// Close the connection before the request is processed (nothing happens).
    pub drop_before_rate: f64,
    /// Process the request, then close the connection without answering (it happened).
    pub drop_after_rate: f64,
    /// Process the request, then answer 500, 502 or 504 instead (it happened; a gateway
    /// failed on the way back).
    pub status_after_rate: f64,
    /// Replace the JSON body of the answer with something that is not JSON.
    pub malformed_rate: f64,
    /// Cut output downloads short at a random point.
    pub truncate_download_rate: f64,
    /// Delay every answer by this many milliseconds.
    pub latency_ms: u64,
    /// Webhook deliveries lost on the way: never sent, recorded on the job as `dropped`.
    pub webhook_drop_rate: f64,
    /// Webhook deliveries held back `webhook_delay_ms` before their first attempt.
    pub webhook_delay_rate: f64,
    /// How long a delayed delivery is held back, in real milliseconds.
    pub webhook_delay_ms: u64,
    /// Webhook deliveries sent a second time once delivered, with the same delivery id (a
    /// redelivery, as a sender does that missed the first answer).
    pub webhook_redeliver_rate: f64,
    /// Seed of the fault dice, so a failing run can be replayed.
    pub seed: u64,
}

/// Everything the sandbox can be told.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SandboxConfig {
    /// Port on 127.0.0.1; 0 lets the OS choose.
    pub port: u16,
    /// How many times faster than real time jobs progress (tests use large factors).
    pub speed: f64,
    /// Accepted keys. The three preset keys are always added unless given here.
    pub keys: Vec<KeyConfig>,
    /// Largest upload in bytes (500 MB as the API; lower it in tests).
    pub max_upload_bytes: u64,
    /// How long an `output_url` stays valid, in real milliseconds (1 hour by default).
    pub output_url_ttl_ms: u64,
    /// Bytes of output per second of input video (outputs grow with duration).
    pub output_bytes_per_second: u64,
    /// Video duration when neither the URL nor the file says, in seconds.
    pub default_duration_secs: f64,
    /// Secret that signs webhook deliveries (`X-Webhook-Signature`).
    pub webhook_secret: String,
    /// Extra attempts of a failed webhook delivery.
    pub webhook_retries: u32,
    /// How long an Idempotency-Key is remembered, in real seconds (24 h as documented).
    pub idempotency_ttl_secs: u64,
    /// Whether `Idempotency-Key` is honoured (replayed and echoed). Off, the sandbox acts like
    /// a server that ignores the header: a repeated POST is done again, so tests can prove a
    /// client never repeats one whose outcome is unknown.
    pub honour_idempotency_keys: bool,
    /// Whether answers tell what is left of the key's rate limit (`X-RateLimit-Limit`,
    /// `X-RateLimit-Remaining`, `X-RateLimit-Reset`). Off, the sandbox is like the API as
    /// documented, which names no such headers: a client learns the limit only from its 429s.
    pub rate_limit_headers: bool,
    /// Random faults.
    pub faults: FaultConfig,
    /// Print one JSON line per request on stderr.
    pub log_to_stderr: bool,
    /// How long a connection may take to send a request's headers, in real milliseconds, and
    /// how long a kept-alive connection may sit idle before its next request; then it is
    /// closed (10 s by default: a client trickling headers cannot hold a connection).
    pub header_read_timeout_ms: u64,
    /// Connections served at once; further ones wait to be accepted until one closes.
    pub max_connections: usize,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        SandboxConfig {
            port: 0,
            speed: 1.0,
            keys: Vec::new(),
            max_upload_bytes: removebgvideo_core::requests::MAX_UPLOAD_BYTES,
            output_url_ttl_ms: 3_600_000,
            output_bytes_per_second: 200_000,
            default_duration_secs: 10.0,
            webhook_secret: "whsec_sandbox".into(),
            webhook_retries: 2,
            idempotency_ttl_secs: 24 * 3600,
            honour_idempotency_keys: true,
            rate_limit_headers: true,
            faults: FaultConfig::default(),
            log_to_stderr: false,
            header_read_timeout_ms: 10_000,
            max_connections: 10_000,
        }
    }
}

impl SandboxConfig {
    /// The configured keys plus the presets that were not overridden.
    pub fn all_keys(&self) -> Vec<KeyConfig> {
        let mut keys = self.keys.clone();
        let presets = [
            // Demos, tests and benchmarks must never trip over the demo key's limit.
            KeyConfig {
                key: DEMO_KEY.into(),
                credits: 1_000_000_000.0,
                rate_per_second: 100_000.0,
                burst: 100_000,
            },
            KeyConfig {
                key: NO_CREDITS_KEY.into(),
                credits: 0.0,
                rate_per_second: 1000.0,
                burst: 1000,
            },
            KeyConfig {
                key: RATE_LIMITED_KEY.into(),
                credits: 1_000_000.0,
                rate_per_second: 1.0,
                burst: 3,
            },
        ];
        for preset in presets {
            if !keys.iter().any(|k| k.key == preset.key) {
                keys.push(preset);
            }
        }
        keys
    }

    /// The header read and idle keep-alive timeout.
    pub fn header_read_timeout(&self) -> Duration {
        Duration::from_millis(self.header_read_timeout_ms)
    }

    /// The output URL lifetime.
    pub fn output_url_ttl(&self) -> Duration {
        Duration::from_millis(self.output_url_ttl_ms)
    }

    /// Checks every number the sandbox computes times and amounts from, before it starts: an
    /// unusable one (NaN, infinite, negative, out of range) would otherwise panic in the
    /// clock or the lifecycle, under the state lock, and fail every later request. The error
    /// is a `validation_error` with one problem per field, each naming its field and rule.
    pub fn check(&self) -> Result<(), Error> {
        let mut problems = Vec::new();
        let mut keep = |result: Result<(), Problem>| {
            if let Err(problem) = result {
                problems.push(problem);
            }
        };
        keep(units::factor("/speed", self.speed, 0.0, MAX_SPEED).map(drop));
        keep(
            units::positive_seconds("/default_duration_secs", self.default_duration_secs).map(drop),
        );
        keep(millis("/output_url_ttl_ms", self.output_url_ttl_ms, 0));
        keep(units::seconds("/idempotency_ttl_secs", self.idempotency_ttl_secs as f64).map(drop));
        keep(whole(
            "/webhook_retries",
            u64::from(self.webhook_retries),
            0,
            u64::from(MAX_WEBHOOK_RETRIES),
        ));
        keep(millis(
            "/header_read_timeout_ms",
            self.header_read_timeout_ms,
            1,
        ));
        keep(whole(
            "/max_connections",
            self.max_connections as u64,
            1,
            1_000_000,
        ));
        for (i, key) in self.keys.iter().enumerate() {
            keep(within(
                &format!("/keys/{i}/credits"),
                key.credits,
                0.0,
                1e15,
            ));
            keep(
                units::factor(
                    &format!("/keys/{i}/rate_per_second"),
                    key.rate_per_second,
                    0.0,
                    1e9,
                )
                .map(drop),
            );
        }
        let faults = &self.faults;
        for (name, rate) in [
            ("error_rate", faults.error_rate),
            ("drop_before_rate", faults.drop_before_rate),
            ("drop_after_rate", faults.drop_after_rate),
            ("status_after_rate", faults.status_after_rate),
            ("malformed_rate", faults.malformed_rate),
            ("truncate_download_rate", faults.truncate_download_rate),
            ("webhook_drop_rate", faults.webhook_drop_rate),
            ("webhook_delay_rate", faults.webhook_delay_rate),
            ("webhook_redeliver_rate", faults.webhook_redeliver_rate),
        ] {
            keep(within(&format!("/faults/{name}"), rate, 0.0, 1.0));
        }
        keep(millis("/faults/latency_ms", faults.latency_ms, 0));
        keep(millis(
            "/faults/webhook_delay_ms",
            faults.webhook_delay_ms,
            0,
        ));
        if self.webhook_secret.trim().is_empty() {
            // Deliveries signed with an empty secret would verify nowhere (verify refuses it).
            problems.push(Problem::error(
                "/webhook_secret",
                removebgvideo_core::ProblemCode::Blank,
                "webhook_secret must be a secret that is not empty or blank",
            ));
        }
        if problems.is_empty() {
            return Ok(());
        }
        let mut error = Error::validation(problems);
        let rules: Vec<&str> = error.problems.iter().map(|p| p.message.as_str()).collect();
        error.message = format!("invalid sandbox configuration: {}", rules.join("; "));
        Err(error)
    }

    /// Reads a JSON configuration file; absent fields keep their defaults.
    pub fn from_json_file(path: &std::path::Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
    }
}

fn out_of_range(path: &str, rule: impl std::fmt::Display) -> Problem {
    Problem::error(
        path,
        ProblemCode::OutOfRange,
        format!("{} must be {rule}", display_path(path)),
    )
}

/// A finite number from `min` to `max`, both included (credits, probabilities).
fn within(path: &str, value: f64, min: f64, max: f64) -> Result<(), Problem> {
    if value.is_finite() && (min..=max).contains(&value) {
        Ok(())
    } else {
        Err(out_of_range(
            path,
            format_args!("a number from {min} to {max} (got {value})"),
        ))
    }
}

/// A whole number from `min` to `max`, both included.
fn whole(path: &str, value: u64, min: u64, max: u64) -> Result<(), Problem> {
    if (min..=max).contains(&value) {
        Ok(())
    } else {
        Err(out_of_range(
            path,
            format_args!("a whole number from {min} to {max} (got {value})"),
        ))
    }
}

/// Milliseconds from `min` to one year, the bound of every duration from outside.
fn millis(path: &str, value: u64, min: u64) -> Result<(), Problem> {
    let max = (MAX_SECONDS * 1000.0) as u64;
    if (min..=max).contains(&value) {
        Ok(())
    } else {
        Err(out_of_range(
            path,
            format_args!("a number of milliseconds from {min} to {max} (one year) (got {value})"),
        ))
    }
}
