//! The sans-IO protocol core of the RemoveBGVideo API.
//!
//! Everything the client, the sandbox and the language bindings must agree on lives here, as
//! plain data and pure functions: the wire types, request validation, request building and
//! response parsing, the job state machine, retry and polling decisions, webhook signing and
//! verification, and credit estimates. Nothing here opens a socket, reads a clock, spawns a
//! thread or reads the environment: callers pass bytes and `now` in, and get decisions out.

pub mod background;
pub mod composition;
pub mod credits;
pub mod download;
pub mod error;
pub mod eta;
pub mod events;
pub mod http;
pub mod inbox;
pub mod job;
pub mod machine;
mod open_enum;
pub mod options;
pub mod poll;
pub mod random;
pub mod rate;
pub mod requests;
pub mod responses;
pub mod retry;
pub mod spec;
pub mod state;
pub mod timestamp;
pub mod units;
pub mod validate;
pub mod webhook;
mod whole_number;

pub use background::{Background, BackgroundType, ColorValue, NestedBackground, PresetColor, Rgb};
pub use composition::{Canvas, Composition, Foreground, Offset};
pub use credits::{credits_per_minute, estimate_credits};
pub use error::{Error, ErrorBody, ErrorCode, ErrorDetail, ErrorKind};
pub use events::Event;
pub use http::{ApiKey, Headers, HttpRequest, Method, MultipartFraming, Operation, RequestBuilder};
pub use job::{Job, JobAccepted, JobList, JobStatus, Phase};
pub use open_enum::OpenEnum;
pub use options::{Anchor, Model, OutputFormat};
pub use poll::{PollPolicy, PollStep, Poller};
pub use random::{FixedDraws, Random, SeededDraws};
pub use requests::{
    CreateJobRequest, ListJobsQuery, StartJobRequest, UploadFile, UsageEventsQuery,
    UsageSummaryQuery,
};
pub use responses::{Health, LegacyDownload, UploadResult, UsageEvent, UsageEvents, UsageSummary};
pub use retry::{GiveUp, Outcome, Replay, RetryBudget, RetryDecision, RetryPolicy, RetryReason};
pub use state::{JobTracker, TransitionRecord, Verdict};
pub use timestamp::Timestamp;
pub use validate::{Problem, ProblemCode, Severity, Validate};
pub use webhook::{VerifiedWebhook, WebhookEventType, WebhookPayload};
