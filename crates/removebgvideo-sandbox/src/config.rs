//! Sandbox settings: keys and their credits, rate limits, the clock speed, limits and faults.

use std::time::Duration;

use serde::{Deserialize, Serialize};

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
    /// Random faults.
    pub faults: FaultConfig,
    /// Print one JSON line per request on stderr.
    pub log_to_stderr: bool,
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
            faults: FaultConfig::default(),
            log_to_stderr: false,
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

    /// The output URL lifetime.
    pub fn output_url_ttl(&self) -> Duration {
        Duration::from_millis(self.output_url_ttl_ms)
    }

    /// Reads a JSON configuration file; absent fields keep their defaults.
    pub fn from_json_file(path: &std::path::Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
    }
}
