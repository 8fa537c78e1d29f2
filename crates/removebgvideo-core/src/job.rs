//! The job object and the responses that describe jobs.

use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize};

use crate::open_enum::{lenient, lenient_option, open_enum};
use crate::options::{Model, OutputFormat};

open_enum! {
    /// The state of a job. `created` and `pending` are both before processing (the docs use
    /// both words); `completed` and `failed` are terminal, and a failed job can be restarted.
    pub enum JobStatus {
        /// Created and not started (a draft made with `auto_start: false`).
        Created => "created",
        /// Accepted and waiting to be processed.
        Pending => "pending",
        /// Being processed; `progress` rises from 0 to 100.
        Processing => "processing",
        /// Done; `output_url` holds the result.
        Completed => "completed",
        /// Ended with an error; `error` says why. Starting it again restarts it.
        Failed => "failed",
    }
}

/// Where a status stands in the lifecycle; the state machine compares phases.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// `created` or `pending`.
    Waiting,
    /// `processing`.
    Processing,
    /// `completed`.
    Completed,
    /// `failed`.
    Failed,
    /// A status this version does not know: treated as not terminal.
    Unknown,
}

impl JobStatus {
    /// The lifecycle phase of this status.
    pub fn phase(&self) -> Phase {
        match self {
            JobStatus::Created | JobStatus::Pending => Phase::Waiting,
            JobStatus::Processing => Phase::Processing,
            JobStatus::Completed => Phase::Completed,
            JobStatus::Failed => Phase::Failed,
            JobStatus::Unknown(_) => Phase::Unknown,
        }
    }

    /// Whether no further change happens without a new start: `completed` or `failed`.
    pub fn is_terminal(&self) -> bool {
        matches!(self.phase(), Phase::Completed | Phase::Failed)
    }
}

/// A job, as `GET /v1/jobs/{job_id}` returns it. Unknown fields are ignored.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Job {
    /// The job id (some pages call it `job_id`; both are read).
    #[serde(alias = "job_id")]
    pub id: String,
    /// The state of the job.
    #[schemars(schema_with = "lenient::<JobStatus>")]
    pub status: JobStatus,
    /// Processing progress, 0 to 100.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0.0, max = 100.0))]
    pub progress: Option<f64>,
    /// The result, once completed. Time-bound: fetch the job again when it has expired.
    #[serde(default)]
    pub output_url: Option<String>,
    /// Why the job failed (a string; an object with a `message` is read as that message).
    #[serde(default, deserialize_with = "error_text")]
    pub error: Option<String>,
    /// When the job was created (UTC, ISO 8601).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<String>,
    /// The duration of the input video in seconds, once known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_seconds: Option<f64>,
    /// The credit charge status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub billing_status: Option<String>,
    /// The webhook receiving this job's events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook_url: Option<String>,
    /// Per-event webhook delivery state (sent or failed); the shape is not documented, so it is
    /// kept as the server sent it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook_events: Option<serde_json::Value>,
    /// The model (sent by the sandbox; the public API may omit it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "lenient_option::<Model>")]
    pub model: Option<Model>,
    /// The output format (sent by the sandbox; the public API may omit it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "lenient_option::<OutputFormat>")]
    pub output_format: Option<OutputFormat>,
    /// Credits charged for this job (sent by the sandbox; the public API may omit it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credits_used: Option<f64>,
    /// The request id of the response this job was read from; set by the client, not sent.
    #[serde(default, skip_deserializing, skip_serializing_if = "Option::is_none")]
    #[schemars(skip)]
    pub request_id: Option<String>,
}

impl Job {
    /// A job in the given state with nothing else known (tests, simulations, the sandbox).
    pub fn new(id: impl Into<String>, status: JobStatus) -> Self {
        Job {
            id: id.into(),
            status,
            progress: None,
            output_url: None,
            error: None,
            created_at: None,
            duration_seconds: None,
            billing_status: None,
            webhook_url: None,
            webhook_events: None,
            model: None,
            output_format: None,
            credits_used: None,
            request_id: None,
        }
    }
}

fn error_text<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    let value = Option::<serde_json::Value>::deserialize(deserializer)?;
    Ok(match value {
        None | Some(serde_json::Value::Null) => None,
        Some(serde_json::Value::String(text)) => Some(text),
        Some(serde_json::Value::Object(map)) => Some(
            map.get("message")
                .and_then(|m| m.as_str())
                .map(str::to_owned)
                .unwrap_or_else(|| serde_json::Value::Object(map).to_string()),
        ),
        Some(other) => Some(other.to_string()),
    })
}

/// The answer to create and start: the job id and its status.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct JobAccepted {
    /// Always true on success.
    #[serde(default = "yes")]
    pub success: bool,
    /// The job id.
    #[serde(alias = "job_id")]
    pub id: String,
    /// The status after the call (`created` for a draft, `processing` or `pending` once started).
    #[schemars(schema_with = "lenient::<JobStatus>")]
    pub status: JobStatus,
    /// A sentence such as "Job started".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The request id of the response; set by the client, not sent.
    #[serde(default, skip_deserializing, skip_serializing_if = "Option::is_none")]
    #[schemars(skip)]
    pub request_id: Option<String>,
}

fn yes() -> bool {
    true
}

/// A page of jobs from `GET /v1/jobs`, newest first.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct JobList {
    /// The jobs of this page (also read from `data`).
    #[serde(alias = "data")]
    pub jobs: Vec<Job>,
    /// How many jobs match in all, when the server says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total: Option<u64>,
    /// The page size used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
    /// The offset used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offset: Option<u32>,
}
