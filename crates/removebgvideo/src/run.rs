//! `run`: upload or URL -> create -> (start) -> wait -> (download), under one deadline.

use removebgvideo_core::{Error, ErrorCode, Job, UploadResult};

use crate::client::{Client, Payload};
use crate::download::Download;
use crate::options::{CallOptions, DownloadOptions, RunOptions, RunRequest, VideoSource};

/// The longest run key: each step's key adds at most `:upload` (7 characters) to it, within
/// the 255 an Idempotency-Key may have.
const MAX_RUN_KEY_LENGTH: usize = removebgvideo_core::http::IDEMPOTENCY_KEY_MAX_BYTES - 7;

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
        // One run key, the caller's or a new one, from which every POST's key is derived: a
        // run repeated with the key an `outcome_unknown` error carried repeats each step under
        // the same key, so the server answers the first job instead of creating a second.
        let run_key = Client::idempotency_key(call);
        if run_key.len() > MAX_RUN_KEY_LENGTH {
            return Err(Error::validation(vec![removebgvideo_core::Problem::error(
                "/idempotency_key",
                removebgvideo_core::ProblemCode::InvalidIdempotencyKey,
                format!(
                    "idempotency_key of a run must have at most {MAX_RUN_KEY_LENGTH} characters (its steps add :upload, :create, :start)"
                ),
            )]));
        }
        let step = |name: &str| CallOptions {
            idempotency_key: Some(format!("{run_key}:{name}")),
            ..call.clone()
        };
        let (video_url, upload) = match &request.source {
            VideoSource::Url(url) => (url.clone(), None),
            VideoSource::File(path) => {
                let uploaded = self
                    .upload_until(path, &step("upload"), deadline)
                    .map_err(|e| e.with_idempotency_key(Some(run_key.clone())))?;
                (uploaded.video_url.clone(), Some(uploaded))
            }
        };
        let mut job = request.job.clone();
        job.video_url = video_url;
        if request.start.is_some() {
            job.auto_start = Some(false);
        }
        // A failed step reports the run key, the one to repeat the whole run with.
        let with_run_key = |mut e: Error| {
            if e.code == ErrorCode::OutcomeUnknown {
                e.message +=
                    &format!("; to repeat the whole run, give it idempotency_key {run_key:?}");
            }
            e.with_idempotency_key(Some(run_key.clone()))
        };
        let create = self
            .builder_ref()
            .create_job(&job, &format!("{run_key}:create"))
            .map_err(with_run_key)?;
        let (accepted, _) = self
            .execute::<removebgvideo_core::JobAccepted>(&create, Payload::Json, call, deadline)
            .map_err(with_run_key)?;
        tracing::info!(target: "removebgvideo", job_id = accepted.id, request_id = accepted.request_id.as_deref().unwrap_or("none"), "job created");
        if let Some(start) = &request.start {
            let http = self
                .builder_ref()
                .start_job(&accepted.id, start, &format!("{run_key}:start"))
                .map_err(with_run_key)?;
            self.execute::<removebgvideo_core::JobAccepted>(&http, Payload::Json, call, deadline)
                .map_err(with_run_key)?;
        }
        // Once the job exists, every failure carries the run key too: a run repeated with it
        // finds the same job instead of paying for another.
        let job = self
            .wait_until(&accepted.id, deadline, options.poll.clone(), call)
            .map_err(with_run_key)?;
        let output = match &request.download_to {
            Some(path) => {
                if deadline.is_some_and(|d| self.now() >= d) {
                    return Err(with_run_key(expired("the download").with_job(job)));
                }
                let download = DownloadOptions {
                    overwrite: request.overwrite,
                    call: call.clone(),
                };
                Some(
                    self.download_until(job.clone(), path, &download, deadline)
                        .map_err(with_run_key)?,
                )
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
