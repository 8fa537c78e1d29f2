//! `run`: a core [`RunMachine`] (upload or URL -> create -> start -> wait -> download, under one
//! deadline) driven on the caller's thread.

use std::path::PathBuf;

use removebgvideo_core::machine::{RunMachine, RunOutput, RunSource, RunSpec};
use removebgvideo_core::{Error, UploadResult};

use crate::client::Client;
use crate::download::Download;
use crate::options::{CallOptions, RunOptions, RunRequest, VideoSource};
use crate::output_file::OutputFile;
use crate::upload;

/// What a run produced.
#[derive(Clone, Debug, PartialEq)]
pub struct RunResult {
    /// The completed job.
    pub job: removebgvideo_core::Job,
    /// The upload, when the source was a file.
    pub upload: Option<UploadResult>,
    /// The downloaded output, when asked for.
    pub output: Option<Download>,
}

impl Client {
    /// Runs the whole flow under one deadline (`options.limit`, 30 minutes by default): every
    /// request, pause and byte of it counts against the same limit.
    pub fn run(&self, request: &RunRequest, options: &RunOptions) -> Result<RunResult, Error> {
        if self.webhooks().is_some() {
            // Deliveries reach waits through the engine.
            return self.through_engine(|done| self.submit_run(request, options, done));
        }
        let (mut machine, mut output, run_key) = self.run_machine(request, options)?;
        let done = self.drive(&mut machine, &options.call, output.as_mut())?;
        finish_run(done, output, request.download_to.clone(), &options.call)
            .map_err(|e| e.with_idempotency_key(Some(run_key)))
    }

    /// The machine of a run, its output file (refused at once if it could not be placed, so
    /// nothing is paid for), and its run key.
    pub(crate) fn run_machine(
        &self,
        request: &RunRequest,
        options: &RunOptions,
    ) -> Result<(RunMachine, Option<OutputFile>, String), Error> {
        let deadline = self.deadline(options.limit);
        let call = &options.call;
        // One run key, the caller's or a new one, from which every POST's key is derived.
        let run_key = Client::idempotency_key(call);
        let with_run_key = |e: Error| e.with_idempotency_key(Some(run_key.clone()));
        let source = match &request.source {
            VideoSource::Url(url) => RunSource::Url(url.clone()),
            VideoSource::File(path) => RunSource::File {
                path: path.clone(),
                size: upload::file_size(path).map_err(with_run_key)?,
                boundary: upload::boundary(),
            },
        };
        let output = match &request.download_to {
            Some(path) => Some(OutputFile::new(path, request.overwrite).map_err(with_run_key)?),
            None => None,
        };
        let spec = RunSpec {
            source,
            job: self.with_webhook_url(&request.job).into_owned(),
            start: request.start.clone(),
            download: request.download_to.is_some(),
            run_key: run_key.clone(),
            poll: options
                .poll
                .clone()
                .unwrap_or_else(|| self.inner.settings.poll.clone()),
            max_retries: call.max_retries,
            timeout: call.timeout,
            headers: call.headers.clone(),
            webhook_fallback: self.webhook_fallback(),
        };
        let machine = RunMachine::new(
            spec,
            self.builder_ref().clone(),
            &self.inner.settings.base_url,
            &self.inner.shared,
            deadline,
        )?;
        Ok((machine, output, run_key))
    }
}

/// Puts a run's output in place (when it downloaded one) and makes its result.
pub(crate) fn finish_run(
    done: RunOutput,
    output: Option<OutputFile>,
    target: Option<PathBuf>,
    call: &CallOptions,
) -> Result<RunResult, Error> {
    let output = match (done.fetched, output, target) {
        (Some(fetched), Some(file), Some(path)) => {
            file.finish()?;
            call.emit(removebgvideo_core::Event::Download {
                bytes_done: fetched.bytes,
                bytes_total: fetched.total,
            });
            Some(Download {
                path,
                bytes: fetched.bytes,
                job: fetched.job,
            })
        }
        _ => None,
    };
    Ok(RunResult {
        job: done.job,
        upload: done.upload,
        output,
    })
}
