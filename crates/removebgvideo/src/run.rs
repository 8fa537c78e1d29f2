//! `run`: a core [`RunMachine`] (upload or URL -> create -> start -> wait -> download, under one
//! deadline) driven on the caller's thread.

use removebgvideo_core::machine::{RunMachine, RunSource, RunSpec};
use removebgvideo_core::{Error, UploadResult};

use crate::client::Client;
use crate::download::Download;
use crate::options::{RunOptions, RunRequest, VideoSource};
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
        // An output that could not be placed is refused before anything is paid for.
        let mut output = match &request.download_to {
            Some(path) => Some(OutputFile::new(path, request.overwrite).map_err(with_run_key)?),
            None => None,
        };
        let spec = RunSpec {
            source,
            job: request.job.clone(),
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
        };
        let mut machine = RunMachine::new(
            spec,
            self.builder_ref().clone(),
            &self.inner.settings.base_url,
            &self.inner.shared,
            deadline,
        )?;
        let done = self.drive(&mut machine, call, output.as_mut())?;
        let output = match (done.fetched, output, &request.download_to) {
            (Some(fetched), Some(file), Some(path)) => {
                file.finish().map_err(with_run_key)?;
                call.emit(removebgvideo_core::Event::Download {
                    bytes_done: fetched.bytes,
                    bytes_total: fetched.total,
                });
                Some(Download {
                    path: path.clone(),
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
}
