//! `run`: upload or URL -> create -> (start) -> wait -> (download), under one deadline.

use removebgvideo_core::{Error, ErrorCode, Job, UploadResult};

use crate::client::{Client, Payload};
use crate::download::Download;
use crate::options::{DownloadOptions, RunOptions, RunRequest, VideoSource};

/// What a run produced.
#[derive(Clone, Debug, PartialEq)]
pub struct RunResult {
    /// The completed job.
    pub job: Job,
    /// The upload, when the source was a file.
    pub upload: Option<UploadResult>,
    /// The downloaded output, when asked for.
    pub output: Option<Download>,
}

impl Client {
    /// Runs the whole flow under one deadline (`options.limit`, 30 minutes by default): every
    /// request, pause and byte of it counts against the same limit.
    pub fn run(&self, request: &RunRequest, options: &RunOptions) -> Result<RunResult, Error> {
        let deadline = self.deadline(options.limit);
        let call = &options.call;
        let expired = |stage: &str| {
            Error::new(
                ErrorCode::WaitTimeout,
                format!("the run's deadline passed during {stage}"),
            )
        };
        let (video_url, upload) = match &request.source {
            VideoSource::Url(url) => (url.clone(), None),
            VideoSource::File(path) => {
                let uploaded = self.upload_until(path, call, deadline)?;
                (uploaded.video_url.clone(), Some(uploaded))
            }
        };
        let mut job = request.job.clone();
        job.video_url = video_url;
        if request.start.is_some() {
            job.auto_start = Some(false);
        }
        // One key per step, shared by that step's retries.
        let create = self
            .builder_ref()
            .create_job(&job, &Client::idempotency_key(&Default::default()))?;
        let (accepted, _) = self.execute::<removebgvideo_core::JobAccepted>(
            &create,
            Payload::Json,
            call,
            deadline,
        )?;
        tracing::info!(target: "removebgvideo", job_id = accepted.id, request_id = accepted.request_id.as_deref().unwrap_or("none"), "job created");
        if let Some(start) = &request.start {
            let http = self.builder_ref().start_job(
                &accepted.id,
                start,
                &Client::idempotency_key(&Default::default()),
            )?;
            self.execute::<removebgvideo_core::JobAccepted>(&http, Payload::Json, call, deadline)?;
        }
        let job = self.wait_until(&accepted.id, deadline, options.poll.clone(), call)?;
        let output = match &request.download_to {
            Some(path) => {
                if deadline.is_some_and(|d| self.now() >= d) {
                    return Err(expired("the download").with_job(job));
                }
                let download = DownloadOptions {
                    overwrite: request.overwrite,
                    call: call.clone(),
                };
                Some(self.download_until(job.clone(), path, &download, deadline)?)
            }
            None => None,
        };
        Ok(RunResult {
            job,
            upload,
            output,
        })
    }
}
