//! Per-call options: idempotency key, retries, timeouts, headers, cancellation, progress.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use removebgvideo_core::{CreateJobRequest, Event, PollPolicy, StartJobRequest};

use crate::cancel::CancelToken;

/// Receives progress events (status changes, progress, retries, bytes).
pub type EventHandler = Arc<dyn Fn(&Event) + Send + Sync>;

/// Options every call takes; all optional.
#[derive(Clone, Default)]
pub struct CallOptions {
    /// The Idempotency-Key of a POST (a new UUID when absent). Reuse it to retry a call whose
    /// outcome is unknown: the server answers the first result again.
    pub idempotency_key: Option<String>,
    /// Retries of this call, instead of the client's setting.
    pub max_retries: Option<u32>,
    /// Limit of this call, instead of the client's request timeout.
    pub timeout: Option<Duration>,
    /// Extra headers for this call.
    pub headers: Vec<(String, String)>,
    /// Stops the call's pauses (retries, polls) at once.
    pub cancel: Option<CancelToken>,
    /// Progress events.
    pub on_event: Option<EventHandler>,
}

impl fmt::Debug for CallOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CallOptions")
            .field("idempotency_key", &self.idempotency_key)
            .field("max_retries", &self.max_retries)
            .field("timeout", &self.timeout)
            .field(
                "headers",
                &self.headers.iter().map(|(n, _)| n).collect::<Vec<_>>(),
            )
            .field("cancel", &self.cancel)
            .field("on_event", &self.on_event.as_ref().map(|_| "…"))
            .finish()
    }
}

impl CallOptions {
    pub(crate) fn emit(&self, event: Event) {
        if let Some(handler) = &self.on_event {
            handler(&event);
        }
    }

    pub(crate) fn cancelled(&self) -> bool {
        self.cancel.as_ref().is_some_and(CancelToken::is_cancelled)
    }
}

/// How long a wait (or a run) may take.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum WaitLimit {
    /// The client's default (30 minutes unless configured).
    #[default]
    Default,
    /// This long.
    After(Duration),
    /// No limit: only a terminal status, an error or cancellation ends it.
    Unbounded,
}

/// Options of [`crate::Client::wait`].
#[derive(Clone, Debug, Default)]
pub struct WaitOptions {
    /// How long to wait.
    pub limit: WaitLimit,
    /// The polling schedule, instead of the client's.
    pub poll: Option<PollPolicy>,
    /// Options of each poll (headers, cancellation, events).
    pub call: CallOptions,
}

/// Options of [`crate::Client::download`].
#[derive(Clone, Debug, Default)]
pub struct DownloadOptions {
    /// Replace an existing file (default: refuse, so nothing is lost by accident).
    pub overwrite: bool,
    /// Options of the requests (headers, cancellation, events, retries).
    pub call: CallOptions,
}

/// Where a run's video comes from.
#[derive(Clone, Debug, PartialEq)]
pub enum VideoSource {
    /// A URL the API can fetch.
    Url(String),
    /// A local file, uploaded first.
    File(PathBuf),
}

/// The whole flow: source -> (upload) -> create -> (start) -> wait -> (download).
#[derive(Clone, Debug)]
pub struct RunRequest {
    /// The input.
    pub source: VideoSource,
    /// The job settings; `video_url` is filled in from the source.
    pub job: CreateJobRequest,
    /// When given, the job is created as a draft and started with these settings.
    pub start: Option<StartJobRequest>,
    /// Where to write the output; no download when absent.
    pub download_to: Option<PathBuf>,
    /// Replace an existing output file.
    pub overwrite: bool,
}

impl RunRequest {
    /// A run of a video URL with default settings.
    pub fn url(video_url: impl Into<String>) -> Self {
        RunRequest {
            source: VideoSource::Url(video_url.into()),
            job: CreateJobRequest::default(),
            start: None,
            download_to: None,
            overwrite: false,
        }
    }

    /// A run of a local file with default settings.
    pub fn file(path: impl Into<PathBuf>) -> Self {
        RunRequest {
            source: VideoSource::File(path.into()),
            ..RunRequest::url("")
        }
    }
}

/// Options of [`crate::Client::run`]: one limit over the whole flow.
#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    /// Limit of the whole flow, upload to download.
    pub limit: WaitLimit,
    /// The polling schedule, instead of the client's.
    pub poll: Option<PollPolicy>,
    /// Options of every request (headers, cancellation, events).
    pub call: CallOptions,
}
