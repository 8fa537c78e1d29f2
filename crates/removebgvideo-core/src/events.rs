//! Progress events: one shape for Rust, Python and Node callbacks (and in the schema).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::job::JobStatus;
use crate::open_enum::lenient_option;
use crate::state::Verdict;

/// Something worth telling the caller while a call, a wait, an upload or a download runs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    /// The job's status changed (as observed by polling).
    StatusChanged {
        /// The job.
        job_id: String,
        /// The status before; absent on the first observation.
        #[schemars(schema_with = "lenient_option::<JobStatus>")]
        from: Option<JobStatus>,
        /// The status now.
        #[schemars(schema_with = "crate::open_enum::lenient::<JobStatus>")]
        to: JobStatus,
        /// What the move means (`illegal` moves are reported, not accepted).
        verdict: Verdict,
        /// The request id of the response that showed it.
        request_id: Option<String>,
    },
    /// The server's progress changed.
    Progress {
        /// The job.
        job_id: String,
        /// 0 to 100.
        progress: f64,
    },
    /// A failed HTTP attempt will be retried.
    Retry {
        /// The operation, as named in the OpenAPI document (`create_job`, `get_job`, ...).
        operation: String,
        /// Which retry this is (1 for the first).
        attempt: u32,
        /// Retries allowed.
        max_retries: u32,
        /// The pause before it, in milliseconds.
        delay_ms: u64,
        /// Why: `HTTP 503`, `connection failed`, `timed out`, ...
        reason: String,
        /// The request id of the failed attempt, when it got an answer.
        request_id: Option<String>,
    },
    /// Bytes of an upload sent so far.
    Upload {
        /// Sent.
        bytes_done: u64,
        /// The file size.
        bytes_total: u64,
    },
    /// Bytes of a download written so far.
    Download {
        /// Written (including bytes kept from before a resume).
        bytes_done: u64,
        /// The size, once the server said.
        bytes_total: Option<u64>,
    },
}
