//! An item of a batch (one manifest row) and the events of its log, as the ledger stores them.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::LedgerError;

/// Where an item stands. Stored as its name (`phase` column).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ItemPhase {
    /// Read from the manifest; nothing sent.
    Planned,
    /// The intent to create its job is recorded (with the idempotency key); the POST may or
    /// may not have reached the server.
    Creating,
    /// The server answered with the job id.
    Created,
    /// The job runs; its status changes are in the log.
    Running,
    /// The job completed; its output is being fetched.
    Downloading,
    /// Completed, and the output is in place (or none was asked for).
    Done,
    /// The job failed (its error is kept).
    Failed,
    /// The create's outcome is unknown and the server is not known to honour idempotency
    /// keys: parked, never re-created blindly.
    Unknown,
    /// Refused before or without a job (a local error, the budget, a permanent API error).
    Error,
}

impl ItemPhase {
    /// Every phase, in lifecycle order.
    pub const ALL: [ItemPhase; 9] = [
        ItemPhase::Planned,
        ItemPhase::Creating,
        ItemPhase::Created,
        ItemPhase::Running,
        ItemPhase::Downloading,
        ItemPhase::Done,
        ItemPhase::Failed,
        ItemPhase::Unknown,
        ItemPhase::Error,
    ];

    /// Its stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            ItemPhase::Planned => "planned",
            ItemPhase::Creating => "creating",
            ItemPhase::Created => "created",
            ItemPhase::Running => "running",
            ItemPhase::Downloading => "downloading",
            ItemPhase::Done => "done",
            ItemPhase::Failed => "failed",
            ItemPhase::Unknown => "unknown",
            ItemPhase::Error => "error",
        }
    }

    /// The phase a stored name stands for.
    pub fn parse(name: &str) -> Result<ItemPhase, LedgerError> {
        ItemPhase::ALL
            .into_iter()
            .find(|phase| phase.as_str() == name)
            .ok_or_else(|| LedgerError::Corrupt(format!("phase {name:?}")))
    }

    /// Whether an item may move from this phase to `next` (the runner's steps, in order; a
    /// resume repeats the step it was in).
    pub fn may_go_to(self, next: ItemPhase) -> bool {
        use ItemPhase::*;
        match self {
            Planned => matches!(next, Creating | Error),
            Creating => matches!(next, Creating | Created | Running | Unknown | Error),
            Created | Running => matches!(next, Running | Downloading | Done | Failed | Error),
            Downloading => matches!(next, Downloading | Done | Error),
            // An output that was removed or changed after it was recorded is fetched again.
            Done => matches!(next, Done | Downloading),
            // A failed job may be restarted (`/start`, a new generation); an unknown create
            // re-created only when the caller opts in.
            Failed => matches!(next, Running | Failed),
            Unknown => matches!(next, Creating | Unknown),
            Error => next == self,
        }
    }

    /// Whether the item needs nothing more (a re-run leaves it alone).
    pub fn is_final(self) -> bool {
        matches!(
            self,
            ItemPhase::Done | ItemPhase::Failed | ItemPhase::Unknown | ItemPhase::Error
        )
    }
}

/// What an item asks for: its input and the job's settings.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ItemInput {
    /// A public video URL (or else `file_path`).
    pub video_url: Option<String>,
    /// A local file to upload, and its size when read.
    pub file_path: Option<String>,
    pub file_size: Option<u64>,
    pub model: Option<String>,
    pub output_format: Option<String>,
    /// The background as the API takes it (JSON).
    pub background: Option<Value>,
    pub text_prompt: Option<String>,
    /// Where the output goes, if the manifest says.
    pub output_target: Option<String>,
}

/// A manifest row for the ledger: its key, its line, its input and the caller's context
/// (user, project, any metadata: a JSON object).
#[derive(Clone, Debug, PartialEq)]
pub struct NewItem {
    pub key: String,
    pub line: Option<u64>,
    pub input: ItemInput,
    pub context: Value,
}

/// An item as the ledger holds it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Item {
    /// Its row (`items.id`); 0 for an item that is not from a ledger.
    #[serde(skip)]
    pub id: i64,
    /// How many steps its row has taken (`items.revision`): a step written from a copy of the
    /// item lands only on the revision it was read at, so a stale copy is never written back.
    #[serde(skip)]
    pub revision: i64,
    pub key: String,
    pub line: Option<u64>,
    pub input: ItemInput,
    pub context: Value,
    pub phase: ItemPhase,
    /// How many times its job was (re)started from the beginning: part of its idempotency key.
    pub generation: u32,
    pub idempotency_key: Option<String>,
    /// The `video_url` an upload of `file_path` gave (what the create sends for a file item).
    pub uploaded_video_url: Option<String>,
    pub job_id: Option<String>,
    pub job_status: Option<String>,
    pub credits_estimated: Option<f64>,
    pub credits_reserved: Option<f64>,
    pub credits_charged: Option<f64>,
    pub output_path: Option<String>,
    pub output_size: Option<u64>,
    pub output_sha256: Option<String>,
    pub last_error_code: Option<String>,
    pub last_error_message: Option<String>,
    pub last_error_request_id: Option<String>,
    /// Unix milliseconds of its last change.
    pub updated_at: u64,
}

impl Item {
    /// The credits the item holds against a budget: its reservation while its job is under
    /// way (a restarted job's new one, not the last run's charge), its charge once the job
    /// ended (its reservation when no charge is known). `committed_sql!` is the same rule.
    pub fn credits_committed(&self) -> f64 {
        match self.phase {
            ItemPhase::Created | ItemPhase::Running => self.credits_reserved.unwrap_or(0.0),
            _ => self
                .credits_charged
                .or(self.credits_reserved)
                .unwrap_or(0.0),
        }
    }
}

/// [`Item::credits_committed`] of a row of `items`, in SQL both engines read (a macro, so that
/// the statements that use it stay `concat!` constants).
macro_rules! committed_sql {
    () => {
        "CASE WHEN phase IN ('created', 'running') THEN COALESCE(credits_reserved, 0) \
         ELSE COALESCE(credits_charged, credits_reserved, 0) END"
    };
}
pub(crate) use committed_sql;

/// The phases no claim takes (an item that needs nothing more), as SQL.
pub(crate) const FINAL_PHASES: &str = "'done', 'failed', 'unknown', 'error'";

/// Drafts the budget holds back (never reserved; the budget, or an unknown duration, stopped
/// them), as SQL: they wait for credits, not for a worker, so they keep no idle worker in a
/// run (only a settle that frees credits starts them, and the worker that settles tries).
pub(crate) const WAITING_FOR_CREDITS: &str = "(phase = 'created' AND credits_reserved IS NULL \
    AND last_error_code IN ('budget_exceeded', 'estimate_unavailable'))";

/// One entry of an item's log.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct EventRecord {
    /// Its place in the whole ledger's log (increasing, never reused).
    pub seq: i64,
    /// Unix milliseconds.
    pub at: u64,
    /// `intent`, `created`, `create_unknown`, `status`, `attempt`, `error`, `output`.
    pub kind: String,
    pub phase_from: Option<ItemPhase>,
    pub phase_to: Option<ItemPhase>,
    pub status_from: Option<String>,
    pub status_to: Option<String>,
    pub request_id: Option<String>,
    pub http_status: Option<u16>,
    pub attempt: Option<u32>,
    /// Anything else the event carries (an error's code and message, a verdict, progress).
    pub detail: Option<Value>,
    /// The worker that wrote it (`host:pid:tag`; none in a ledger older than schema 5).
    pub worker: Option<String>,
}
