//! `upload`: streams a local file as multipart form data, never reading it into memory.

use std::fs::File;
use std::io::Read;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use removebgvideo_core::{Error, ErrorCode, Event, Timestamp, UploadFile, UploadResult};

use crate::client::{Client, Payload};
use crate::options::CallOptions;

/// Counts bytes as they are read and reports them; stops reading once cancelled.
struct Counting<R> {
    inner: R,
    done: u64,
    total: u64,
    reported: u64,
    options: CallOptions,
    /// Raised when a read is refused because the call was cancelled.
    cut_short: Arc<AtomicBool>,
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
        if self.done != self.reported && (self.done - self.reported >= 256 * 1024 || at_end) {
            self.reported = self.done;
            self.options.emit(Event::Upload {
                bytes_done: self.done.min(self.total),
                bytes_total: self.total,
            });
        }
        Ok(n)
    }
}

impl Client {
    /// `POST /v1/uploads`: uploads a video file (mp4, mov, webm or avi, at most 500 MB).
    pub fn upload(&self, path: &Path, options: &CallOptions) -> Result<UploadResult, Error> {
        self.upload_until(path, options, None)
    }

    pub(crate) fn upload_until(
        &self,
        path: &Path,
        options: &CallOptions,
        deadline: Option<Timestamp>,
    ) -> Result<UploadResult, Error> {
        let unreadable = |e: std::io::Error| {
            Error::new(
                ErrorCode::ValidationError,
                format!("cannot read {}: {e}", path.display()),
            )
        };
        let size = std::fs::metadata(path).map_err(unreadable)?.len();
        let filename = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let file = UploadFile::new(filename, size);
        let boundary = format!(
            "removebgvideo-{:016x}{:016x}",
            fastrand::u64(..),
            fastrand::u64(..)
        );
        let (request, framing) =
            self.builder_ref()
                .upload(&file, &boundary, &Client::idempotency_key(options))?;
        let cut_short = Arc::new(AtomicBool::new(false));
        let open = || -> Result<Box<dyn Read + Send>, Error> {
            let file = File::open(path).map_err(unreadable)?;
            let body = std::io::Cursor::new(framing.head.clone())
                .chain(file)
                .chain(std::io::Cursor::new(framing.tail.clone()));
            Ok(Box::new(Counting {
                inner: body,
                done: 0,
                total: framing.content_length(size),
                reported: 0,
                options: options.clone(),
                cut_short: cut_short.clone(),
            }))
        };
        let payload = Payload::Stream {
            length: framing.content_length(size),
            open: &open,
            cut_short: &cut_short,
        };
        self.execute(&request, payload, options, deadline)
            .map(|(v, _)| v)
    }
}
