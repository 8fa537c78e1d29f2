//! `download`: a core [`DownloadMachine`] driven on the caller's thread, into a part file
//! beside the target that is put in place only once whole.

use std::path::{Path, PathBuf};

use removebgvideo_core::machine::DownloadMachine;
use removebgvideo_core::{Error, Event, Job, Timestamp};

use crate::client::Client;
use crate::options::{CallOptions, DownloadOptions};
use crate::output_file::OutputFile;

/// A finished download.
#[derive(Clone, Debug, PartialEq)]
pub struct Download {
    /// Where the output is.
    pub path: PathBuf,
    /// Its size.
    pub bytes: u64,
    /// The job, as last read (its `output_url` is the one that worked).
    pub job: Job,
}

impl Client {
    /// Downloads the output of a completed job to `path`.
    pub fn download(
        &self,
        job_id: &str,
        path: &Path,
        options: &DownloadOptions,
    ) -> Result<Download, Error> {
        let job = self.get_job(job_id, &options.call)?;
        self.download_job(job, path, options)
    }

    /// Downloads the output of a job already read (its URL is refreshed if it has expired).
    pub fn download_job(
        &self,
        job: Job,
        path: &Path,
        options: &DownloadOptions,
    ) -> Result<Download, Error> {
        let mut machine = self.download_machine(job, &options.call, None)?;
        let mut output = OutputFile::new(path, options.overwrite)?;
        let fetched = self.drive(&mut machine, &options.call, Some(&mut output))?;
        output.finish()?;
        options.call.emit(Event::Download {
            bytes_done: fetched.bytes,
            bytes_total: fetched.total,
        });
        Ok(Download {
            path: path.to_owned(),
            bytes: fetched.bytes,
            job: fetched.job,
        })
    }

    /// The machine of a download of `job`'s output.
    pub(crate) fn download_machine(
        &self,
        job: Job,
        call: &CallOptions,
        deadline: Option<Timestamp>,
    ) -> Result<DownloadMachine, Error> {
        let refresh = self.builder_ref().get_job(&job.id)?;
        DownloadMachine::new(
            job,
            refresh,
            &self.inner.settings.base_url,
            call.headers.clone(),
            &self.inner.shared,
            call.max_retries,
            deadline,
        )
    }
}
