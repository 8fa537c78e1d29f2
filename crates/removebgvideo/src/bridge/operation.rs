//! The operations a binding can call, each with its arguments: one tagged enum, so an unknown
//! operation or a misspelt argument is refused with its path. Request fields keep the HTTP
//! API's names and units (`preview_duration` is in seconds, as the API has it).

use std::path::PathBuf;

use removebgvideo_core::composition::Composition;
use removebgvideo_core::{Job, JobStatus, Model, OutputFormat};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Map, Value};

use super::number::Float;
use super::parse::parse;
use super::policy::PollPolicyArgs;
use crate::Error;

/// One call: `{"operation": "get_job", "arguments": {"job_id": "job_1"}}`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(
    tag = "operation",
    content = "arguments",
    rename_all = "snake_case",
    deny_unknown_fields
)]
pub enum Operation {
    /// `GET /health`.
    Health(NoArgs),
    /// Uploads a video file, streamed from disk.
    Upload(UploadArgs),
    /// Creates a job from a video URL.
    CreateJob(CreateJobArgs),
    /// Starts a draft job, or restarts a failed one.
    StartJob(StartJobArgs),
    /// Reads a job.
    GetJob(JobIdArgs),
    /// Lists the key's jobs, newest first.
    ListJobs(ListJobsArgs),
    /// Usage totals.
    UsageSummary(UsageSummaryArgs),
    /// Recent usage events.
    UsageEvents(UsageEventsArgs),
    /// The legacy download route: the output URL of a completed job.
    LegacyDownload(JobIdArgs),
    /// Waits until the job completes, fails or the limit passes.
    Wait(WaitArgs),
    /// Downloads a completed job's output: resumable, length-checked, atomic.
    Download(DownloadArgs),
    /// The whole flow under one deadline: upload or URL, create, wait, download.
    Run(RunArgs),
}

impl Operation {
    /// From the bindings' JSON; problems are named under `/operation` and `/arguments`.
    pub fn from_json(json: &str) -> Result<Operation, Error> {
        parse("", json)
    }

    /// Its name on the wire (`create_job`).
    pub fn name(&self) -> &'static str {
        match self {
            Operation::Health(_) => "health",
            Operation::Upload(_) => "upload",
            Operation::CreateJob(_) => "create_job",
            Operation::StartJob(_) => "start_job",
            Operation::GetJob(_) => "get_job",
            Operation::ListJobs(_) => "list_jobs",
            Operation::UsageSummary(_) => "usage_summary",
            Operation::UsageEvents(_) => "usage_events",
            Operation::LegacyDownload(_) => "legacy_download",
            Operation::Wait(_) => "wait",
            Operation::Download(_) => "download",
            Operation::Run(_) => "run",
        }
    }

    /// Whether it can run for long (see [`is_long`]).
    pub fn is_long(&self) -> bool {
        is_long(self.name())
    }
}

/// Operations that can run for long (uploads, waits, downloads, runs): bindings keep them
/// cancellable (Ctrl-C, AbortSignal, asyncio).
pub fn is_long(operation: &str) -> bool {
    matches!(operation, "upload" | "wait" | "download" | "run")
}

/// No arguments.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NoArgs {}

/// A job, by id.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct JobIdArgs {
    /// The job id.
    pub job_id: String,
}

/// A local video file.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UploadArgs {
    /// The file: mp4, mov, webm or avi, at most 500 MB.
    #[schemars(extend("format" = "path"))]
    pub path: PathBuf,
}

/// A background: `transparent`, `green`, `white`, `black`, `blue`, `#rrggbb`, `image:URL`,
/// or normalized `[r, g, b]`.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum BackgroundArg {
    /// Its text form.
    Text(String),
    /// A colour, each channel in [0, 1].
    Rgb([f64; 3]),
}

/// Creates a job from a video URL.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateJobArgs {
    /// The input video: an absolute http(s) URL, for example the one an upload returned.
    pub video_url: String,
    /// The model; `original` when absent.
    pub model: Option<Model>,
    /// The output format; `webm` when absent.
    pub output_format: Option<OutputFormat>,
    /// What replaces the background; transparent when absent.
    pub background: Option<BackgroundArg>,
    /// What to keep, in words; only the `pro` model uses it.
    pub text_prompt: Option<String>,
    /// URL that receives `job.started`, `job.completed` and `job.failed`.
    pub webhook_url: Option<String>,
    /// Start processing at once (the default); false makes a draft that waits for start.
    pub auto_start: Option<bool>,
    /// Your own data, returned as given.
    pub metadata: Option<Map<String, Value>>,
}

/// Starts a draft job, or restarts a failed one; every setting optional.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StartJobArgs {
    /// The job id.
    pub job_id: String,
    /// Change the model for this run.
    pub model: Option<Model>,
    /// Change the output format.
    pub output_format: Option<OutputFormat>,
    /// Change the background.
    pub background: Option<BackgroundArg>,
    /// What to keep, in words; only the `pro` model uses it.
    pub text_prompt: Option<String>,
    /// Change the webhook URL.
    pub webhook_url: Option<String>,
    /// Placement of the foreground on an output canvas.
    pub composition: Option<Composition>,
    /// Process only this many seconds, as a preview (above 0, at most 60).
    pub preview_duration: Option<f64>,
}

/// One page of the key's jobs.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListJobsArgs {
    /// Page size, 1 to 100.
    pub limit: Option<u32>,
    /// How many jobs to skip.
    pub offset: Option<u32>,
    /// Only jobs in this status.
    pub status: Option<JobStatus>,
}

/// Usage totals over a window.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UsageSummaryArgs {
    /// How many days back, 1 to 90.
    pub days: Option<u32>,
}

/// Recent usage events.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UsageEventsArgs {
    /// How many events, 1 to 100.
    pub limit: Option<u32>,
}

/// Waits for a job.
// Durations are milliseconds on the wire (`timeout_ms`), seconds in the packages.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WaitArgs {
    /// The job id.
    pub job_id: String,
    /// Give up after this long (a wait timeout error); the client's default (30 minutes) when
    /// absent.
    pub timeout_ms: Option<Float>,
    /// No limit: only a terminal status, an error or cancellation ends the wait.
    pub unbounded: Option<bool>,
    /// The polling schedule, instead of the client's.
    pub poll_policy: Option<PollPolicyArgs>,
}

/// Downloads a completed job's output: give its id, or the job as read (which saves a
/// request).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DownloadArgs {
    /// The job id (or give `job`).
    pub job_id: Option<String>,
    /// The job, as read (or give its id).
    pub job: Option<Job>,
    /// Where to write the output.
    #[schemars(extend("format" = "path"))]
    pub path: PathBuf,
    /// Replace an existing file (default: refuse, so nothing is lost by accident).
    pub overwrite: Option<bool>,
}

/// The whole flow under one deadline, from exactly one source: a video URL or a file.
// Durations are milliseconds on the wire (`timeout_ms`), seconds in the packages.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RunArgs {
    /// The input video's URL (or give `file`).
    pub video_url: Option<String>,
    /// A local video file, uploaded first (or give the video's URL).
    #[schemars(extend("format" = "path"))]
    pub file: Option<PathBuf>,
    /// Where to write the output; no download when absent.
    #[schemars(extend("format" = "path"))]
    pub output: Option<PathBuf>,
    /// Replace an existing output file.
    pub overwrite: Option<bool>,
    /// The model; `original` when absent.
    pub model: Option<Model>,
    /// The output format; `webm` when absent.
    pub output_format: Option<OutputFormat>,
    /// What replaces the background; transparent when absent.
    pub background: Option<BackgroundArg>,
    /// What to keep, in words; only the `pro` model uses it.
    pub text_prompt: Option<String>,
    /// URL that receives the job's events.
    pub webhook_url: Option<String>,
    /// Your own data, returned as given.
    pub metadata: Option<Map<String, Value>>,
    /// The limit of the whole flow (a wait timeout error); the client's default (30 minutes)
    /// when absent.
    pub timeout_ms: Option<Float>,
    /// No limit on the whole flow.
    pub unbounded: Option<bool>,
    /// The polling schedule, instead of the client's.
    pub poll_policy: Option<PollPolicyArgs>,
}

#[cfg(test)]
mod tests {
    use removebgvideo_core::ProblemCode;

    use super::*;

    #[test]
    fn an_operation_is_its_name_and_its_arguments() {
        let operation =
            Operation::from_json(r#"{"operation": "get_job", "arguments": {"job_id": "job_1"}}"#)
                .unwrap();
        assert!(matches!(&operation, Operation::GetJob(args) if args.job_id == "job_1"));
        assert_eq!(operation.name(), "get_job");
        assert!(!operation.is_long());
        let wait = Operation::from_json(r#"{"operation": "wait", "arguments": {"job_id": "j"}}"#);
        assert!(wait.unwrap().is_long());
    }

    #[test]
    fn a_misspelt_argument_is_refused_and_named_by_its_path() {
        let error = Operation::from_json(
            r#"{"operation": "create_job", "arguments": {"video_url": "https://e.com/a.mp4", "modle": "pro"}}"#,
        )
        .unwrap_err();
        assert_eq!(error.problems[0].path, "/arguments/modle");
        assert_eq!(error.problems[0].code, ProblemCode::UnknownValue);
        assert!(
            error.problems[0]
                .message
                .starts_with("arguments.modle is not a known field"),
            "{}",
            error.problems[0].message
        );
        let error = Operation::from_json(
            r#"{"operation": "wait", "arguments": {"job_id": "j", "poll_policy": {"factr": 2}}}"#,
        )
        .unwrap_err();
        assert_eq!(error.problems[0].path, "/arguments/poll_policy/factr");
    }

    #[test]
    fn a_wrong_type_is_named_by_its_path() {
        let error =
            Operation::from_json(r#"{"operation": "create_job", "arguments": {"video_url": 5}}"#)
                .unwrap_err();
        assert_eq!(error.problems[0].path, "/arguments/video_url");
        assert_eq!(error.problems[0].code, ProblemCode::InvalidType);
        assert!(!error.message.contains("line"), "{}", error.message);
    }

    #[test]
    fn an_unknown_operation_or_top_level_field_is_refused() {
        let error = Operation::from_json(r#"{"operation": "fly", "arguments": {}}"#).unwrap_err();
        assert_eq!(error.problems[0].path, "/operation");
        let error = Operation::from_json(r#"{"operation": "health", "arguments": {}, "extra": 1}"#)
            .unwrap_err();
        assert!(error.problems[0].path.starts_with('/'), "{error:?}");
    }

    #[test]
    fn every_operation_has_a_name_that_parses_back() {
        for (name, arguments) in [
            ("health", "{}"),
            ("upload", r#"{"path": "a.mp4"}"#),
            ("create_job", r#"{"video_url": "https://e.com/a.mp4"}"#),
            ("start_job", r#"{"job_id": "j"}"#),
            ("get_job", r#"{"job_id": "j"}"#),
            ("list_jobs", "{}"),
            ("usage_summary", "{}"),
            ("usage_events", "{}"),
            ("legacy_download", r#"{"job_id": "j"}"#),
            ("wait", r#"{"job_id": "j"}"#),
            ("download", r#"{"job_id": "j", "path": "out.webm"}"#),
            ("run", "{}"),
        ] {
            let json = format!(r#"{{"operation": "{name}", "arguments": {arguments}}}"#);
            let operation = Operation::from_json(&json).unwrap();
            assert_eq!(operation.name(), name);
            assert_eq!(
                operation.is_long(),
                ["upload", "wait", "download", "run"].contains(&name)
            );
        }
    }
}

#[cfg(test)]
mod order_tests {
    use super::*;

    /// Why bindings write `operation` first: arguments that come before it are read without
    /// their path (serde buffers them until it knows the operation).
    #[test]
    fn arguments_before_the_operation_are_still_refused() {
        let error = Operation::from_json(
            r#"{"arguments": {"job_id": "j", "timout": 1}, "operation": "wait"}"#,
        )
        .unwrap_err();
        assert_eq!(error.problems[0].path, "/timout", "{error:?}");
    }
}
