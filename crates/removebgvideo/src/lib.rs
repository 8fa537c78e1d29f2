//! The Rust client of the RemoveBGVideo API.
//!
//! Every call is validated by `removebgvideo-core` before it is sent, retried as the core
//! decides (backoff with jitter, Retry-After, a retry budget), and every POST carries an
//! Idempotency-Key reused across its retries, so no retry creates a second job. On top of the
//! endpoints: [`Client::wait`] (polling with a deadline), [`Client::download`] (resumable,
//! length-checked, atomic), and [`Client::run`] (the whole flow under one deadline).
//!
//! ```no_run
//! use removebgvideo::{Client, RunRequest, RunOptions};
//!
//! let client = Client::from_env()?; // REMOVEBGVIDEO_API_KEY
//! let mut request = RunRequest::url("https://example.com/clip.mp4");
//! request.download_to = Some("clip.webm".into());
//! let result = client.run(&request, &RunOptions::default())?;
//! println!("{} -> {:?}", result.job.id, result.output.map(|o| o.path));
//! # Ok::<(), removebgvideo::Error>(())
//! ```

pub mod bridge;
mod cancel;
mod client;
mod clock;
mod config;
mod download;
mod driver;
mod engine;
mod machine_view;
mod options;
mod output_file;
mod receiver;
mod resolver;
mod run;
mod submit;
mod transfer;
mod transport;
mod upload;
mod wait;
mod watch;
mod webhooks;
mod wire;
mod writeback;

pub use cancel::CancelToken;
pub use client::Client;
pub use clock::{Time, VirtualClock};
pub use config::{API_KEY_ENV, ClientBuilder, DEFAULT_BASE_URL, IdempotencySupport, Settings};
pub use download::Download;
pub use engine::Engine;
pub use options::{
    CallOptions, DownloadOptions, EventHandler, RunOptions, RunRequest, VideoSource, WaitLimit,
    WaitOptions,
};
pub use receiver::{DeliveryHandler, ReceiverOptions, ReceiverStats, WebhookReceiver};
pub use removebgvideo_core as core;
pub use removebgvideo_core::webhook::{self, VerifiedWebhook};
pub use removebgvideo_core::{
    Background, CreateJobRequest, Error, ErrorCode, ErrorKind, Event, Job, JobAccepted, JobList,
    JobStatus, ListJobsQuery, Model, OutputFormat, PollPolicy, RetryPolicy, StartJobRequest,
    UploadResult, UsageEvents, UsageEventsQuery, UsageSummary, UsageSummaryQuery, estimate_credits,
};
pub use run::RunResult;
pub use submit::Callback;
pub use watch::JobSet;
pub use webhooks::{DEFAULT_WEBHOOK_FALLBACK, Delivery, WebhookSettings};

impl ClientBuilder {
    /// Builds the client.
    pub fn build(self) -> Result<Client, Error> {
        let time = self.chosen_clock();
        let settings = self.settings()?;
        Ok(match time {
            Some(time) => Client::with_time(settings, time),
            None => Client::with_settings(settings),
        })
    }
}
