//! `download`: streams a job's output to a temporary file beside the target, resumes with
//! Range after a break, checks the length, refreshes an expired URL, renames into place.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use removebgvideo_core::http::parse_error;
use removebgvideo_core::retry::{self, Outcome, Replay, RetryDecision};
use removebgvideo_core::{Error, ErrorCode, Event, Job, JobStatus, Timestamp};
use ureq::http;

use crate::client::Client;
use crate::clock::ThreadRandom;
use crate::options::{CallOptions, DownloadOptions};
use crate::transport::{self, AttemptError};
use crate::writeback::Writeback;

/// How many times an expired output URL is refreshed in one download.
const MAX_REFRESHES: u32 = 3;
/// Progress is reported at most every this many bytes.
const REPORT_EVERY: u64 = 1 << 20;

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

/// The temporary file; removed unless it was renamed into place.
struct PartFile {
    path: PathBuf,
    file: File,
    kept: bool,
}

impl Drop for PartFile {
    fn drop(&mut self) {
        if !self.kept {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

fn failed(message: String) -> Error {
    Error::new(ErrorCode::DownloadFailed, message)
}

/// The total size an answer announces: `Content-Range: bytes a-b/total`, else `Content-Length`.
fn announced(response: &http::Response<ureq::Body>) -> (Option<u64>, Option<u64>) {
    let header = |name| {
        response
            .headers()
            .get(name)
            .and_then(|v: &http::HeaderValue| v.to_str().ok())
    };
    if let Some(range) = header(http::header::CONTENT_RANGE) {
        let rest = range.trim().strip_prefix("bytes ").unwrap_or("");
        let (span, total) = rest.split_once('/').unwrap_or(("", ""));
        let start = span.split('-').next().and_then(|s| s.parse().ok());
        return (start, total.parse().ok());
    }
    (
        Some(0),
        header(http::header::CONTENT_LENGTH).and_then(|v| v.parse().ok()),
    )
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
        self.download_until(job, path, options, None)
    }

    pub(crate) fn download_until(
        &self,
        mut job: Job,
        path: &Path,
        options: &DownloadOptions,
        deadline: Option<Timestamp>,
    ) -> Result<Download, Error> {
        match job.status {
            JobStatus::Completed => {}
            JobStatus::Failed => {
                let reason = job.error.clone().unwrap_or_default();
                return Err(Error::new(
                    ErrorCode::JobFailed,
                    format!("job {} failed: {reason}", job.id),
                )
                .with_job(job));
            }
            _ => {
                return Err(failed(format!(
                    "job {} is {}: wait for it to complete first",
                    job.id, job.status
                ))
                .with_job(job));
            }
        }
        if path.exists() && !options.overwrite {
            return Err(failed(format!(
                "{} exists; set overwrite to replace it",
                path.display()
            )));
        }
        let directory = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "output".into());
        let part_path = directory.join(format!(".{name}.{:08x}.part", fastrand::u32(..)));
        let file = OpenOptions::new()
            .create_new(true)
            .read(true)
            .write(true)
            .open(&part_path)
            .map_err(|e| failed(format!("cannot write {}: {e}", part_path.display())))?;
        let mut writeback = Writeback::new(&file);
        let mut part = PartFile {
            path: part_path,
            file,
            kept: false,
        };
        let call = &options.call;
        let mut written: u64 = 0;
        let mut total: Option<u64> = None;
        let mut refreshes = 0;
        let mut retries_done = 0;
        let mut policy = self.inner.settings.retry.clone();
        if let Some(retries) = call.max_retries {
            policy.max_retries = retries;
        }
        loop {
            if call.cancelled() {
                return Err(Error::new(
                    ErrorCode::Cancelled,
                    "the download was cancelled",
                ));
            }
            let url = job
                .output_url
                .clone()
                .ok_or_else(|| failed(format!("job {} has no output_url", job.id)))?;
            let mut request = http::Request::builder().method("GET").uri(&url);
            if written > 0 {
                request = request.header(http::header::RANGE, format!("bytes={written}-"));
            }
            // Output URLs are signed: they need no key, and the key never goes to their host.
            for (name, value) in &call.headers {
                request = request.header(name, value);
            }
            let request = request
                .body(())
                .map_err(|e| failed(format!("bad output URL {url:?}: {e}")))?;
            let remaining = deadline.map(|d| d.since(self.now()));
            let idle = self.inner.settings.transfer_idle_timeout;
            let before = written;
            let failure: (
                Error,
                Option<u16>,
                removebgvideo_core::http::Headers,
                Option<AttemptError>,
            ) = match transport::send_transfer(&self.inner.agent, request, idle, remaining, true) {
                Err(attempt) => (
                    attempt.to_error("downloading the output"),
                    None,
                    Default::default(),
                    Some(attempt),
                ),
                Ok(response) => {
                    let status = response.status().as_u16();
                    match status {
                        200 | 206 => {
                            let (start, announced_total) = announced(&response);
                            // Where this body belongs: a 200 is the whole file; a 206 is usable
                            // only if it starts at or before what we have (then we drop the
                            // overlap). Anything else would be written at the wrong offset.
                            let resume_at = match (status, start) {
                                (200, _) => Some(0),
                                (_, Some(start)) if start <= written => Some(start),
                                _ => None,
                            };
                            let Some(resume_at) = resume_at else {
                                part.file
                                    .set_len(0)
                                    .and_then(|_| part.file.seek(SeekFrom::Start(0)))
                                    .map_err(|e| failed(e.to_string()))?;
                                written = 0;
                                retries_done += 1;
                                if retries_done > policy.max_retries {
                                    return Err(failed(format!(
                                        "the output URL answered a partial body starting at {start:?}, which cannot continue the file"
                                    ))
                                    .with_job(job));
                                }
                                tracing::info!(target: "removebgvideo", "partial answer starting at {start:?} does not fit; downloading job {} from the start", job.id);
                                continue;
                            };
                            if resume_at != written {
                                part.file
                                    .set_len(resume_at)
                                    .and_then(|_| part.file.seek(SeekFrom::Start(resume_at)))
                                    .map_err(|e| failed(e.to_string()))?;
                                written = resume_at;
                            }
                            total = announced_total.or(total);
                            match self.stream_into(
                                response.into_body(),
                                &mut part.file,
                                &mut writeback,
                                &mut written,
                                total,
                                call,
                            ) {
                                Ok(()) if call.cancelled() => {
                                    return Err(Error::new(
                                        ErrorCode::Cancelled,
                                        "the download was cancelled",
                                    ));
                                }
                                Ok(()) if total.is_none_or(|t| written == t) => break,
                                Ok(()) => {
                                    let detail = format!(
                                        "the body ended at {written} of {} bytes",
                                        total.unwrap_or(0)
                                    );
                                    (
                                        failed(detail.clone()),
                                        None,
                                        Default::default(),
                                        Some(AttemptError::NoAnswer {
                                            timed_out: false,
                                            detail,
                                        }),
                                    )
                                }
                                Err(attempt) => (
                                    attempt.to_error("downloading the output"),
                                    None,
                                    Default::default(),
                                    Some(attempt),
                                ),
                            }
                        }
                        416 if total.is_some_and(|t| written == t) => break,
                        401 | 403 | 404 | 410 if refreshes < MAX_REFRESHES => {
                            // Expired link: the job gives a fresh one.
                            refreshes += 1;
                            tracing::info!(target: "removebgvideo", job_id = job.id, "output URL answered {status}; fetching the job for a fresh one");
                            let request = self.builder_ref().get_job(&job.id)?;
                            job = self
                                .execute::<Job>(
                                    &request,
                                    crate::client::Payload::Json,
                                    call,
                                    deadline,
                                )?
                                .0;
                            continue;
                        }
                        _ => {
                            let headers = transport::headers_of(&response);
                            let body = response.into_body().read_to_vec().unwrap_or_default();
                            let error = parse_error(status, &headers, &body, self.now());
                            (
                                failed(format!(
                                    "the output URL answered HTTP {status}: {}",
                                    error.message
                                ))
                                .with_status(status),
                                Some(status),
                                headers,
                                None,
                            )
                        }
                    }
                }
            };
            let (error, status, headers, attempt) = failure;
            if written > before {
                // Progress was made: a connection that keeps breaking but keeps delivering is
                // not a failed download.
                retries_done = 0;
            }
            let code = error.code.clone();
            let outcome = match (&attempt, status) {
                (Some(attempt), _) => attempt.outcome(),
                (None, Some(status)) => Outcome::Status {
                    status,
                    code: &code,
                    headers: &headers,
                },
                (None, None) => Outcome::NoAnswer { timed_out: false },
            };
            let decision = retry::decide(
                &policy,
                &mut self.inner_budget(),
                retries_done,
                &outcome,
                Replay::Safe,
                self.now(),
                &mut ThreadRandom,
            );
            match decision {
                RetryDecision::Retry { delay, reason }
                    if deadline.is_none_or(|d| self.now().plus(delay) <= d) =>
                {
                    retries_done += 1;
                    tracing::info!(target: "removebgvideo", "download of job {} broke at {written} bytes; resuming in {:.1} s ({reason})", job.id, delay.as_secs_f64());
                    call.emit(Event::Retry {
                        operation: "download".into(),
                        attempt: retries_done,
                        max_retries: policy.max_retries,
                        delay_ms: delay.as_millis() as u64,
                        reason: reason.to_string(),
                        request_id: None,
                    });
                    if call.cancel.as_ref().map_or_else(
                        || {
                            std::thread::sleep(delay);
                            false
                        },
                        |c| c.sleep(delay),
                    ) {
                        return Err(Error::new(
                            ErrorCode::Cancelled,
                            "the download was cancelled",
                        ));
                    }
                }
                _ => return Err(error.with_job(job)),
            }
        }
        writeback.finish();
        part.file
            .flush()
            .and_then(|_| part.file.sync_all())
            .map_err(|e| failed(format!("cannot write {}: {e}", part.path.display())))?;
        if options.overwrite {
            std::fs::rename(&part.path, path).map_err(|e| {
                failed(format!("cannot move the output to {}: {e}", path.display()))
            })?;
            part.kept = true;
        } else {
            // A hard link fails if the target appeared meanwhile (another download, another
            // program), so `overwrite: false` holds at the moment the file is placed. The part
            // file is then removed by its guard.
            std::fs::hard_link(&part.path, path).map_err(|e| match e.kind() {
                std::io::ErrorKind::AlreadyExists => failed(format!(
                    "{} exists; set overwrite to replace it",
                    path.display()
                )),
                _ => failed(format!("cannot move the output to {}: {e}", path.display())),
            })?;
        }
        call.emit(Event::Download {
            bytes_done: written,
            bytes_total: total,
        });
        Ok(Download {
            path: path.to_owned(),
            bytes: written,
            job,
        })
    }

    fn stream_into(
        &self,
        body: ureq::Body,
        file: &mut File,
        writeback: &mut Writeback,
        written: &mut u64,
        total: Option<u64>,
        call: &CallOptions,
    ) -> Result<(), AttemptError> {
        let mut reader = body.into_with_config().limit(u64::MAX).reader();
        let mut buffer = vec![0u8; 64 * 1024];
        let mut reported = *written;
        loop {
            if call.cancelled() {
                return Ok(());
            }
            let n = reader
                .read(&mut buffer)
                .map_err(|e| transport::classify_io(&e, e.to_string()))?;
            if n == 0 {
                return Ok(());
            }
            file.write_all(&buffer[..n])
                .map_err(|e| AttemptError::NoAnswer {
                    timed_out: false,
                    detail: format!("writing the output: {e}"),
                })?;
            *written += n as u64;
            writeback.wrote(*written);
            if *written - reported >= REPORT_EVERY {
                reported = *written;
                call.emit(Event::Download {
                    bytes_done: *written,
                    bytes_total: total,
                });
            }
        }
    }
}
