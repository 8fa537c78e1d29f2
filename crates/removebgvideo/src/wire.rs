//! The client's side of the wire: turns a machine's transmit into an HTTP request with the
//! client's and the call's headers, sends it with the client's agent, and streams an output
//! body into its part file. Shared by the blocking driver and the engine's workers.

use std::io::Read;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use removebgvideo_core::machine::{TransmitBody, TransportError, TransportErrorKind};
use removebgvideo_core::{Error, ErrorCode, HttpRequest};
use ureq::http;

use crate::config::Settings;
use crate::options::CallOptions;
use crate::output_file::OutputFile;
use crate::transport::{self, RawResponse};

/// The read buffer of a streamed output body.
const READ_BUFFER: usize = 64 * 1024;

/// What an attempt brought back: an answer, or no answer. An `Err` around it is local (a file
/// that cannot be read), not the network's.
pub(crate) type Sent = Result<RawResponse, TransportError>;

/// The agent and the settings every attempt is built from.
#[derive(Debug)]
pub(crate) struct Wire {
    pub(crate) agent: ureq::Agent,
    pub(crate) settings: Settings,
}

/// Follows a streamed body: how much more it may bring, and each stretch written.
pub(crate) trait BodyObserver {
    /// How many more bytes may be written (`None`: no known limit).
    fn room(&self) -> Option<u64>;
    /// `n` more bytes are in the part file.
    fn wrote(&mut self, n: u64);
}

impl Wire {
    /// The `http::Request` of one attempt, with the client's and the call's headers.
    pub(crate) fn http_request<B>(
        &self,
        request: &HttpRequest,
        call: &CallOptions,
        body: B,
    ) -> Result<http::Request<B>, Error> {
        let url = format!("{}{}", self.settings.base_url, request.path_and_query());
        let mut builder = http::Request::builder()
            .method(request.method.as_str())
            .uri(&url);
        let own = request
            .headers
            .iter()
            .map(|h| (h.name.as_str(), h.value.as_str()));
        let defaults = self
            .settings
            .default_headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()));
        let extra = call.headers.iter().map(|(n, v)| (n.as_str(), v.as_str()));
        for (name, value) in own.chain(defaults).chain(extra) {
            builder = builder.header(name, value);
        }
        builder.body(body).map_err(|e| {
            Error::new(
                ErrorCode::ValidationError,
                format!("cannot build the request: {e}"),
            )
        })
    }

    /// Sends one API attempt and reads its whole answer.
    pub(crate) fn send(
        &self,
        request: &HttpRequest,
        body: &TransmitBody,
        timeout: Duration,
        total: Option<Duration>,
        call: &CallOptions,
    ) -> Result<Sent, Error> {
        for warning in &request.warnings {
            tracing::warn!(target: "removebgvideo", operation = request.operation.name(), "{}", warning.message);
        }
        match body {
            TransmitBody::Json => {
                let agent = &self.agent;
                Ok(match &request.body {
                    Some(bytes) => transport::send_api(
                        agent,
                        self.http_request(request, call, bytes.clone())?,
                        timeout,
                    ),
                    None => {
                        transport::send_api(agent, self.http_request(request, call, ())?, timeout)
                    }
                })
            }
            TransmitBody::Upload {
                path,
                file_size,
                framing,
            } => self.send_upload(
                request,
                call,
                path,
                framing.content_length(*file_size),
                framing,
                total,
            ),
        }
    }

    /// Streams a file as multipart form data, never reading it into memory.
    fn send_upload(
        &self,
        request: &HttpRequest,
        call: &CallOptions,
        path: &std::path::Path,
        length: u64,
        framing: &removebgvideo_core::MultipartFraming,
        total: Option<Duration>,
    ) -> Result<Sent, Error> {
        let file = std::fs::File::open(path).map_err(|e| crate::upload::unreadable(path, e))?;
        let cut_short = Arc::new(AtomicBool::new(false));
        let reader = std::io::Cursor::new(framing.head.clone())
            .chain(file)
            .chain(std::io::Cursor::new(framing.tail.clone()));
        let counting = crate::upload::Counting::new(reader, length, call, cut_short.clone());
        let mut http =
            self.http_request(request, call, ureq::SendBody::from_owned_reader(counting))?;
        http.headers_mut().insert(
            http::header::CONTENT_LENGTH,
            http::HeaderValue::from(length),
        );
        let idle = self.settings.transfer_idle_timeout;
        let sent =
            transport::send_transfer(&self.agent, http, idle, total, false).and_then(|response| {
                let status = response.status().as_u16();
                let headers = transport::headers_of(&response);
                let body = response
                    .into_body()
                    .read_to_vec()
                    .map_err(|e| TransportError::new(TransportErrorKind::Broken, e.to_string()))?;
                Ok(RawResponse {
                    status,
                    headers,
                    body,
                })
            });
        // A body stopped by its own cancellation never reached the server whole.
        Ok(sent.map_err(|failure| {
            if cut_short.load(Ordering::Relaxed) {
                TransportError::new(TransportErrorKind::NotSentWhole, failure.detail)
            } else {
                failure
            }
        }))
    }

    /// Sends the GET of an output URL (no key; redirects are the machine's to follow).
    pub(crate) fn fetch(
        &self,
        url: &str,
        headers: &[(String, String)],
        idle_timeout: Duration,
        total: Option<Duration>,
    ) -> Result<Result<http::Response<ureq::Body>, TransportError>, Error> {
        let mut request = http::Request::builder().method("GET").uri(url);
        for (name, value) in headers {
            request = request.header(name, value);
        }
        let request = request.body(()).map_err(|e| {
            Error::new(
                ErrorCode::DownloadFailed,
                format!("the output URL is not usable: {e}"),
            )
        })?;
        Ok(transport::send_transfer(
            &self.agent,
            request,
            idle_timeout,
            total,
            false,
        ))
    }
}

/// Reads at most `limit` bytes of an error answer's body.
pub(crate) fn read_error_body(body: ureq::Body, limit: u64) -> Vec<u8> {
    let mut bytes = Vec::new();
    // What could be read is enough for the message; a broken error body changes nothing.
    let _ = body
        .into_with_config()
        .limit(limit)
        .reader()
        .read_to_end(&mut bytes);
    bytes
}

/// Writes a body into the part file, never past what the observer allows, telling it each
/// stretch written; returns how the body ended. It stops early, cleanly, on a cancel.
pub(crate) fn stream_body(
    body: ureq::Body,
    output: &mut OutputFile,
    observer: &mut dyn BodyObserver,
    call: &CallOptions,
) -> Result<Result<(), TransportError>, Error> {
    let mut reader = body.into_with_config().limit(u64::MAX).reader();
    let mut buffer = vec![0u8; READ_BUFFER];
    loop {
        if call.cancelled() {
            return Ok(Ok(()));
        }
        let room = observer
            .room()
            .map_or(buffer.len(), |r| r.min(buffer.len() as u64) as usize);
        if room == 0 {
            return Ok(Ok(()));
        }
        let n = match reader.read(&mut buffer[..room]) {
            Ok(0) => return Ok(Ok(())),
            Ok(n) => n,
            Err(e) => return Ok(Err(transport::classify_io(&e, e.to_string()))),
        };
        output.append(&buffer[..n])?;
        observer.wrote(n as u64);
    }
}
