//! Response bodies other than jobs: uploads, usage, the legacy download, health.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::open_enum::lenient;
use crate::options::OutputFormat;

/// The answer to `POST /v1/uploads`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct UploadResult {
    /// Always true on success.
    #[serde(default)]
    pub success: bool,
    /// The id of the stored video.
    pub video_id: String,
    /// The URL to create a job from.
    pub video_url: String,
    /// The stored file name.
    #[serde(default)]
    pub filename: String,
    /// The stored size in bytes.
    #[serde(default)]
    pub size: u64,
}

/// The answer to `GET /v1/usage/summary`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct UsageSummary {
    /// The window, in days, when the server says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub days: Option<u32>,
    /// Jobs created in the window.
    #[serde(default)]
    pub total_jobs: u64,
    /// Jobs completed in the window.
    #[serde(default)]
    pub completed_jobs: u64,
    /// Jobs failed in the window (sent by the sandbox; the public API may omit it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed_jobs: Option<u64>,
    /// Credits charged in the window.
    #[serde(default)]
    pub credits_used: f64,
    /// Credits left on the key (sent by the sandbox; the public API may omit it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credits_remaining: Option<f64>,
}

/// One entry of `GET /v1/usage/events`. The fields are not documented: all are optional.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct UsageEvent {
    /// The event id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// What happened, for example `job.charged` (also read from `type`).
    #[serde(default, alias = "type", skip_serializing_if = "Option::is_none")]
    pub event: Option<String>,
    /// The job concerned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_id: Option<String>,
    /// Credits charged (positive) or refunded (negative).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credits: Option<f64>,
    /// When it happened (UTC, ISO 8601).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<String>,
}

/// The answer to `GET /v1/usage/events`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct UsageEvents {
    /// Newest first (also read from `data`).
    #[serde(alias = "data")]
    pub events: Vec<UsageEvent>,
}

/// The answer to the legacy `GET /api/download/{job_id}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct LegacyDownload {
    /// Always true on success.
    #[serde(default)]
    pub success: bool,
    /// Where to fetch the output (time-bound).
    pub download_url: String,
    /// The output format.
    #[schemars(schema_with = "lenient::<OutputFormat>")]
    pub output_format: OutputFormat,
}

/// The answer to `GET /health`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Health {
    /// `ok` when healthy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
}
