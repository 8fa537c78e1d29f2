//! `download`: streams a job's output to a temporary file beside the target, resumes after a
//! break as the core's [`Resume`] decides, refreshes an expired URL, and places the file.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use removebgvideo_core::download::{Answer, BodyEnd, Resume};
use removebgvideo_core::http::{Headers, parse_error};
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
/// Redirects followed from one output URL (to a CDN and on).
const MAX_REDIRECTS: u32 = 5;
/// Progress is reported at most every this many bytes.
const REPORT_EVERY: u64 = 1 << 20;
/// The most of the target's name a part file's name repeats: with the dot, the random suffix
/// and `.part` it stays within the 255 bytes file systems allow, however long the target's.
const PART_NAME_STEM: usize = 200;

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

impl PartFile {
    /// A new hidden file beside `target`, named after it.
    fn beside(target: &Path) -> Result<PartFile, Error> {
        let directory = target
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let name = target
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "output".into());
        let path = directory.join(format!(
            ".{}.{:08x}.part",
            stem(&name, PART_NAME_STEM),
            fastrand::u32(..)
        ));
        let file = OpenOptions::new()
            .create_new(true)
            .read(true)
            .write(true)
            .open(&path)
            .map_err(|e| failed(format!("cannot write {}: {e}", path.display())))?;
        Ok(PartFile {
            path,
            file,
            kept: false,
        })
    }

    /// Cuts the file to `offset`, where the next byte goes.
    fn cut(&mut self, offset: u64) -> Result<(), Error> {
        self.file
            .set_len(offset)
            .and_then(|_| self.file.seek(SeekFrom::Start(offset)).map(|_| ()))
            .map_err(|e| failed(format!("cannot write {}: {e}", self.path.display())))
    }
}

impl Drop for PartFile {
    fn drop(&mut self) {
        if !self.kept {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// At most `max` bytes of `name`, cut at a character boundary.
fn stem(name: &str, max: usize) -> &str {
    let mut end = name.len().min(max);
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    &name[..end]
}

fn failed(message: String) -> Error {
    Error::new(ErrorCode::DownloadFailed, message)
}

fn cancelled() -> Error {
    Error::new(ErrorCode::Cancelled, "the download was cancelled")
}

/// A URL as it may be shown: without its query, which signs it (a secret like a key).
fn redacted(url: &str) -> String {
    match url.split_once('?') {
        Some((base, _)) => format!("{base}?<redacted>"),
        None => url.to_owned(),
    }
}

/// The origin (scheme, host, port) of a URL, to tell the API's host from others.
fn origin(url: &str) -> Option<url::Origin> {
    url::Url::parse(url).ok().map(|u| u.origin())
}

/// What an attempt ended with, when it did not finish the download.
struct Failure {
    error: Error,
    status: Option<u16>,
    headers: Headers,
    attempt: Option<AttemptError>,
}

impl Failure {
    /// A failed attempt on `url`; its message never repeats the URL's signed query.
    fn of_attempt(attempt: AttemptError, url: &str) -> Failure {
        let mut error = attempt.to_error("downloading the output");
        error.message = error.message.replace(url, &redacted(url));
        Failure {
            error,
            status: None,
            headers: Headers::new(),
            attempt: Some(attempt),
        }
    }
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
        let mut part = PartFile::beside(path)?;
        let mut writeback = Writeback::new(&part.file);
        let call = &options.call;
        let mut resume = Resume::new();
        let mut url = output_url(&job)?;
        let mut refreshes = 0;
        let mut redirects = 0;
        let mut retries_done = 0;
        // The most bytes ever held: a retry counter resets only on new ground, so a server that
        // keeps answering from the start cannot keep a download going for ever.
        let mut best = 0;
        let mut policy = self.inner.settings.retry.clone();
        if let Some(retries) = call.max_retries {
            policy.max_retries = retries;
        }
        loop {
            if call.cancelled() {
                return Err(cancelled());
            }
            let request = self.output_request(&url, &resume, call)?;
            let remaining = deadline.map(|d| d.since(self.now()));
            let idle = self.inner.settings.transfer_idle_timeout;
            let failure = match transport::send_transfer(
                &self.inner.agent,
                request,
                idle,
                remaining,
                false,
            ) {
                Err(attempt) => Failure::of_attempt(attempt, &url),
                Ok(response) => {
                    let status = response.status().as_u16();
                    let headers = transport::headers_of(&response);
                    if (300..400).contains(&status)
                        && let Some(location) = headers.get("location")
                    {
                        redirects += 1;
                        if redirects > MAX_REDIRECTS {
                            return Err(failed(format!(
                                "the output URL redirected more than {MAX_REDIRECTS} times"
                            ))
                            .with_job(job));
                        }
                        url = url::Url::parse(&url)
                            .and_then(|base| base.join(location))
                            .map_err(|e| {
                                failed(format!("the output URL redirected to a bad URL: {e}"))
                            })?
                            .into();
                        continue;
                    }
                    match resume.on_answer(status, &headers) {
                        Answer::Complete => break,
                        Answer::Unverifiable { reason } => {
                            return Err(failed(reason).with_job(job));
                        }
                        Answer::Restart { reason } => {
                            part.cut(0)?;
                            retries_done += 1;
                            if retries_done > policy.max_retries {
                                return Err(failed(format!(
                                    "the output could not be resumed: {reason}"
                                ))
                                .with_job(job));
                            }
                            tracing::info!(target: "removebgvideo", "downloading job {} again from the start: {reason}", job.id);
                            continue;
                        }
                        Answer::Write { offset } => {
                            part.cut(offset)?;
                            let streamed = self.stream_into(
                                response.into_body(),
                                &mut part.file,
                                &mut writeback,
                                &mut resume,
                                call,
                            );
                            if call.cancelled() {
                                return Err(cancelled());
                            }
                            // Even a broken body may have brought every byte.
                            match (resume.on_body_end(streamed.is_ok()), streamed) {
                                (BodyEnd::Complete, _) => break,
                                (BodyEnd::Unproven, Ok(())) => continue,
                                (_, Err(attempt)) => Failure::of_attempt(attempt, &url),
                                (BodyEnd::Short { reason }, Ok(())) => Failure::of_attempt(
                                    AttemptError::NoAnswer {
                                        timed_out: false,
                                        detail: reason,
                                    },
                                    &url,
                                ),
                            }
                        }
                        Answer::NotBody => match status {
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
                                url = output_url(&job)?;
                                redirects = 0;
                                continue;
                            }
                            _ => {
                                let body = response.into_body().read_to_vec().unwrap_or_default();
                                let error = parse_error(status, &headers, &body, self.now());
                                Failure {
                                    // The message never repeats the URL: its query is a secret.
                                    error: failed(format!(
                                        "the output URL answered HTTP {status}: {}",
                                        error.message
                                    ))
                                    .with_status(status),
                                    status: Some(status),
                                    headers,
                                    attempt: None,
                                }
                            }
                        },
                    }
                }
            };
            if resume.written() > best {
                best = resume.written();
                retries_done = 0;
            }
            let code = failure.error.code.clone();
            let outcome = match (&failure.attempt, failure.status) {
                (Some(attempt), _) => attempt.outcome(),
                (None, Some(status)) => Outcome::Status {
                    status,
                    code: &code,
                    headers: &failure.headers,
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
                    tracing::info!(target: "removebgvideo", "download of job {} broke at {} bytes; resuming in {:.1} s ({reason})", job.id, resume.written(), delay.as_secs_f64());
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
                        return Err(cancelled());
                    }
                }
                _ => return Err(failure.error.with_job(job)),
            }
        }
        let written = resume.written();
        writeback.finish();
        part.file
            .flush()
            .and_then(|_| part.file.sync_all())
            .map_err(|e| failed(format!("cannot write {}: {e}", part.path.display())))?;
        place(&mut part, path, options.overwrite, |from, to| {
            std::fs::hard_link(from, to)
        })?;
        call.emit(Event::Download {
            bytes_done: written,
            bytes_total: resume.total(),
        });
        Ok(Download {
            path: path.to_owned(),
            bytes: written,
            job,
        })
    }

    /// The GET of the output: the resume's headers, and the call's own headers only when the
    /// URL is on the API's host (output URLs are signed: they need no key, and nothing meant
    /// for the API goes to a CDN, before or after a redirect).
    fn output_request(
        &self,
        url: &str,
        resume: &Resume,
        call: &CallOptions,
    ) -> Result<http::Request<()>, Error> {
        let mut request = http::Request::builder().method("GET").uri(url);
        for (name, value) in resume.request_headers() {
            request = request.header(name, value);
        }
        if origin(url).is_some_and(|o| Some(o) == origin(&self.inner.settings.base_url)) {
            for (name, value) in &call.headers {
                request = request.header(name, value);
            }
        }
        request
            .body(())
            .map_err(|e| failed(format!("the output URL is not usable: {e}")))
    }

    /// Writes the body into the part file, never past what the answer announced.
    fn stream_into(
        &self,
        body: ureq::Body,
        file: &mut File,
        writeback: &mut Writeback,
        resume: &mut Resume,
        call: &CallOptions,
    ) -> Result<(), AttemptError> {
        let mut reader = body.into_with_config().limit(u64::MAX).reader();
        let mut buffer = vec![0u8; 64 * 1024];
        let mut reported = resume.written();
        loop {
            if call.cancelled() {
                return Ok(());
            }
            let room = resume
                .room()
                .map_or(buffer.len(), |r| r.min(buffer.len() as u64) as usize);
            if room == 0 {
                return Ok(());
            }
            let n = reader
                .read(&mut buffer[..room])
                .map_err(|e| transport::classify_io(&e, e.to_string()))?;
            if n == 0 {
                return Ok(());
            }
            file.write_all(&buffer[..n])
                .map_err(|e| AttemptError::NoAnswer {
                    timed_out: false,
                    detail: format!("writing the output: {e}"),
                })?;
            resume.on_bytes(n as u64);
            writeback.wrote(resume.written());
            if resume.written() - reported >= REPORT_EVERY {
                reported = resume.written();
                call.emit(Event::Download {
                    bytes_done: resume.written(),
                    bytes_total: resume.total(),
                });
            }
        }
    }
}

fn output_url(job: &Job) -> Result<String, Error> {
    job.output_url
        .clone()
        .ok_or_else(|| failed(format!("job {} has no output_url", job.id)))
}

/// Puts the finished part file at `target`. Without `overwrite`, a hard link places it only
/// if the target does not exist at that moment (another download or program may have made
/// one meanwhile). File systems without hard links (FAT, exFAT, some FUSE mounts) get the
/// same guarantee from an exclusively created placeholder that the rename then replaces.
fn place(
    part: &mut PartFile,
    target: &Path,
    overwrite: bool,
    link: impl Fn(&Path, &Path) -> std::io::Result<()>,
) -> Result<(), Error> {
    let exists = || {
        failed(format!(
            "{} exists; set overwrite to replace it",
            target.display()
        ))
    };
    let cannot = |e: std::io::Error| {
        failed(format!(
            "cannot move the output to {}: {e}",
            target.display()
        ))
    };
    if !overwrite {
        match link(&part.path, target) {
            // The part file is removed by its guard.
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return Err(exists()),
            Err(e) => {
                tracing::debug!(target: "removebgvideo", "no hard link at {} ({e}); placing with a placeholder", target.display());
                OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .open(target)
                    .map_err(|e| match e.kind() {
                        std::io::ErrorKind::AlreadyExists => exists(),
                        _ => cannot(e),
                    })?;
            }
        }
    }
    if let Err(e) = std::fs::rename(&part.path, target) {
        // Never leave the empty placeholder behind: it would read as a finished output, and
        // every later download would refuse to replace it.
        if !overwrite {
            let _ = std::fs::remove_file(target);
        }
        return Err(cannot(e));
    }
    part.kept = true;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part_in(dir: &Path, content: &[u8]) -> PartFile {
        let mut part = PartFile::beside(&dir.join("out.webm")).unwrap();
        part.file.write_all(content).unwrap();
        part
    }

    #[test]
    fn a_file_system_without_hard_links_still_never_overwrites() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("out.webm");
        let no_links = |_: &Path, _: &Path| -> std::io::Result<()> {
            Err(std::io::Error::from(std::io::ErrorKind::Unsupported))
        };
        let mut part = part_in(dir.path(), b"video");
        place(&mut part, &target, false, no_links).unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), b"video");
        drop(part);

        let mut part = part_in(dir.path(), b"other");
        let error = place(&mut part, &target, false, no_links).unwrap_err();
        assert!(error.message.contains("exists"), "{error}");
        drop(part);
        assert_eq!(std::fs::read(&target).unwrap(), b"video", "untouched");
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 1, "no part file left");
    }

    #[test]
    fn a_shown_url_keeps_no_signature() {
        assert_eq!(
            redacted("https://cdn.example.com/o/job_1.webm?X-Amz-Signature=abc&exp=1"),
            "https://cdn.example.com/o/job_1.webm?<redacted>"
        );
        assert_eq!(
            redacted("https://cdn.example.com/o.webm"),
            "https://cdn.example.com/o.webm"
        );
        let failure = Failure::of_attempt(
            AttemptError::NoAnswer {
                timed_out: false,
                detail: "bad uri https://cdn.example.com/o.webm?sig=secret".into(),
            },
            "https://cdn.example.com/o.webm?sig=secret",
        );
        assert!(
            !failure.error.message.contains("secret"),
            "{}",
            failure.error.message
        );
    }

    #[test]
    fn a_failed_placement_leaves_no_placeholder() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("out.webm");
        let mut part = part_in(dir.path(), b"video");
        // The part file vanishes before the rename (another program, a flaky mount).
        std::fs::remove_file(&part.path).unwrap();
        let no_links = |_: &Path, _: &Path| -> std::io::Result<()> {
            Err(std::io::Error::from(std::io::ErrorKind::Unsupported))
        };
        assert!(place(&mut part, &target, false, no_links).is_err());
        assert!(!target.exists(), "no empty file at the target");
    }

    #[test]
    fn a_long_target_name_gets_a_part_file_within_the_name_limit() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["a".repeat(250), "é".repeat(125)] {
            let part = PartFile::beside(&dir.path().join(&name)).unwrap();
            let part_name = part.path.file_name().unwrap().len();
            assert!(part_name <= 255, "{part_name} bytes");
        }
    }
}
