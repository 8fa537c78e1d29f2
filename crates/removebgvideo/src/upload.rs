//! `upload`: a file streamed as multipart form data, never read into memory; its bytes are
//! counted and reported as they leave.

use std::io::Read;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use removebgvideo_core::machine::TransmitBody;
use removebgvideo_core::{Error, ErrorCode, Event, HttpRequest, UploadResult};

use crate::client::Client;
use crate::options::CallOptions;

/// Bytes between two upload progress events.
const REPORT_EVERY: u64 = 256 * 1024;

/// Counts bytes as they are read and reports them; stops reading once cancelled.
pub(crate) struct Counting<R> {
    inner: R,
    done: u64,
    total: u64,
    reported: u64,
    options: CallOptions,
    /// Raised when a read is refused because the call was cancelled.
    cut_short: Arc<AtomicBool>,
}

impl<R> Counting<R> {
    /// Counts `inner`, whose length is `total`.
    pub(crate) fn new(
        inner: R,
        total: u64,
        options: &CallOptions,
        cut_short: Arc<AtomicBool>,
    ) -> Self {
        Counting {
            inner,
            done: 0,
            total,
            reported: 0,
            options: options.clone(),
            cut_short,
        }
    }
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buffer: &mut [u8]) -> std::io::Result<usize> {
        // The transport reads the whole file through here: checking the token on every read
        // lets a cancel (Ctrl-C in Python, an AbortSignal in Node) stop a 500 MB upload at
        // once, not after its last byte.
        if self.options.cancelled() {
            self.cut_short.store(true, Ordering::Relaxed);
            return Err(std::io::Error::other("the upload was cancelled"));
        }
        let n = self.inner.read(buffer)?;
        self.done += n as u64;
        // Report every 256 KiB and at the end (the transport stops reading at Content-Length,
        // so the end is the total, not a read of 0).
        let at_end = self.done >= self.total || n == 0;
        if self.done != self.reported && (self.done - self.reported >= REPORT_EVERY || at_end) {
            self.reported = self.done;
            self.options.emit(Event::Upload {
                bytes_done: self.done.min(self.total),
                bytes_total: self.total,
            });
        }
        Ok(n)
    }
}

/// The error of a file that cannot be read.
pub(crate) fn unreadable(path: &Path, error: std::io::Error) -> Error {
    Error::new(
        ErrorCode::ValidationError,
        format!("cannot read {}: {error}", path.display()),
    )
}

/// A fresh multipart boundary.
pub(crate) fn boundary() -> String {
    format!(
        "removebgvideo-{:016x}{:016x}",
        fastrand::u64(..),
        fastrand::u64(..)
    )
}

/// The size of a file to upload.
pub(crate) fn file_size(path: &Path) -> Result<u64, Error> {
    std::fs::metadata(path)
        .map(|m| m.len())
        .map_err(|e| unreadable(path, e))
}

impl Client {
    /// `POST /v1/uploads`: uploads a video file (mp4, mov, webm or avi, at most 500 MB).
    pub fn upload(&self, path: &Path, options: &CallOptions) -> Result<UploadResult, Error> {
        let (request, body) = self.upload_request(path, options)?;
        self.execute(request, body, options, None)
            .map(|(value, _)| value)
    }

    /// The request and streamed body of an upload of `path`.
    pub(crate) fn upload_request(
        &self,
        path: &Path,
        options: &CallOptions,
    ) -> Result<(HttpRequest, TransmitBody), Error> {
        removebgvideo_core::machine::upload_request(
            self.builder_ref(),
            path,
            file_size(path)?,
            &boundary(),
            &Client::idempotency_key(options),
        )
    }
}
