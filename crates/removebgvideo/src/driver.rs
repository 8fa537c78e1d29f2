//! The blocking driver: moves one core machine's requests over ureq and its pauses through the
//! client's clock, on the caller's thread, until the machine has an outcome. Every decision
//! (retry, poll, resume, refresh, give up) is the machine's; this loop only moves bytes and time.

use std::io::Read;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use removebgvideo_core::machine::{
    BodyPlan, Machine, Transmit, TransmitBody, TransportError, TransportErrorKind,
};
use removebgvideo_core::{Error, ErrorCode, Event, HttpRequest, MultipartFraming, state::Verdict};
use ureq::http;

use crate::client::Client;
use crate::options::CallOptions;
use crate::output_file::OutputFile;
use crate::transport::{self, RawResponse};

/// The read buffer of a streamed output body.
const READ_BUFFER: usize = 64 * 1024;

impl Client {
    /// Drives `machine` to its outcome. `output` receives the body of output downloads.
    pub(crate) fn drive<M: Machine>(
        &self,
        machine: &mut M,
        call: &CallOptions,
        mut output: Option<&mut OutputFile>,
    ) -> Result<M::Output, Error> {
        let time = &self.inner.time;
        loop {
            emit_events(machine, call);
            if let Some(outcome) = machine.poll_outcome() {
                return outcome;
            }
            if call.cancelled() {
                machine.cancel();
                if let Some(outcome) = machine.poll_outcome() {
                    return outcome;
                }
            }
            let now = time.now();
            if let Some(transmit) = machine.poll_transmit(now) {
                self.perform(machine, transmit, call, output.as_deref_mut())?;
                continue;
            }
            // Asking for a transmit can decide the outcome (no send fits the deadline).
            emit_events(machine, call);
            if let Some(outcome) = machine.poll_outcome() {
                return outcome;
            }
            let Some(at) = machine.poll_timeout() else {
                return Err(Error::new(
                    ErrorCode::SdkBug,
                    "the SDK's state machine stalled (nothing to send, nothing to wait for); please report it",
                ));
            };
            if time.sleep(at.since(now), call.cancel.as_ref()) {
                machine.cancel();
                continue;
            }
            machine.handle_timeout(time.now());
        }
    }

    /// Sends one transmit and feeds what came back to the machine. An error here is local (a
    /// file that cannot be read or written), not the network's: it ends the call.
    fn perform<M: Machine>(
        &self,
        machine: &mut M,
        transmit: Transmit,
        call: &CallOptions,
        output: Option<&mut OutputFile>,
    ) -> Result<(), Error> {
        match transmit {
            Transmit::Api {
                request,
                body,
                timeout,
                total,
            } => {
                for warning in &request.warnings {
                    tracing::warn!(target: "removebgvideo", operation = request.operation.name(), "{}", warning.message);
                }
                let sent = match &body {
                    TransmitBody::Json => self.send_json(&request, call, timeout)?,
                    TransmitBody::Upload {
                        path,
                        file_size,
                        framing,
                    } => self.send_upload(&request, call, path, *file_size, framing, total)?,
                };
                let now = self.inner.time.now();
                // A cancel raised while the request was out is known before its result, so
                // a POST that may have acted says it was cancelled too.
                if call.cancelled() {
                    machine.cancel();
                }
                match sent {
                    Ok(raw) => machine.handle_response(raw.status, raw.headers, &raw.body, now),
                    Err(failure) => machine.handle_transport_error(failure, now),
                }
                Ok(())
            }
            Transmit::Fetch {
                url,
                headers,
                idle_timeout,
                total,
            } => {
                let mut request = http::Request::builder().method("GET").uri(&url);
                for (name, value) in &headers {
                    request = request.header(name, value);
                }
                let request = request.body(()).map_err(|e| {
                    Error::new(
                        ErrorCode::DownloadFailed,
                        format!("the output URL is not usable: {e}"),
                    )
                })?;
                let answer = transport::send_transfer(
                    &self.inner.agent,
                    request,
                    idle_timeout,
                    total,
                    false,
                );
                let response = match answer {
                    Ok(response) => response,
                    Err(failure) => {
                        machine.handle_transport_error(failure, self.inner.time.now());
                        return Ok(());
                    }
                };
                self.receive_output(machine, response, call, output)
            }
        }
    }

    fn send_json(
        &self,
        request: &HttpRequest,
        call: &CallOptions,
        timeout: std::time::Duration,
    ) -> Result<Result<RawResponse, TransportError>, Error> {
        let agent = &self.inner.agent;
        Ok(match &request.body {
            Some(body) => transport::send_api(
                agent,
                self.http_request(request, call, body.clone())?,
                timeout,
            ),
            None => transport::send_api(agent, self.http_request(request, call, ())?, timeout),
        })
    }

    /// Streams a file as multipart form data, never reading it into memory.
    fn send_upload(
        &self,
        request: &HttpRequest,
        call: &CallOptions,
        path: &std::path::Path,
        file_size: u64,
        framing: &MultipartFraming,
        total: Option<std::time::Duration>,
    ) -> Result<Result<RawResponse, TransportError>, Error> {
        let file = std::fs::File::open(path).map_err(|e| crate::upload::unreadable(path, e))?;
        let length = framing.content_length(file_size);
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
        let idle = self.inner.settings.transfer_idle_timeout;
        let sent = transport::send_transfer(&self.inner.agent, http, idle, total, false).and_then(
            |response| {
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
            },
        );
        // A body stopped by its own cancellation never reached the server whole.
        Ok(sent.map_err(|failure| {
            if cut_short.load(Ordering::Relaxed) {
                TransportError::new(TransportErrorKind::NotSentWhole, failure.detail)
            } else {
                failure
            }
        }))
    }

    /// Hands an output URL's answer to the machine and moves its body as the machine says.
    fn receive_output<M: Machine>(
        &self,
        machine: &mut M,
        response: http::Response<ureq::Body>,
        call: &CallOptions,
        output: Option<&mut OutputFile>,
    ) -> Result<(), Error> {
        let status = response.status().as_u16();
        let headers = transport::headers_of(&response);
        let time = &self.inner.time;
        match machine.handle_head(status, headers.clone(), time.now()) {
            BodyPlan::Discard => Ok(()),
            BodyPlan::ReadError { limit } => {
                let mut body = Vec::new();
                let _ = response
                    .into_body()
                    .into_with_config()
                    .limit(limit)
                    .reader()
                    .read_to_end(&mut body);
                machine.handle_response(status, headers, &body, time.now());
                Ok(())
            }
            BodyPlan::Stream { offset } => {
                let output = output.ok_or_else(|| {
                    Error::new(
                        ErrorCode::SdkBug,
                        "an output body came with nowhere to write it; please report it",
                    )
                })?;
                output.cut(offset)?;
                let end = stream_body(self, machine, response.into_body(), output, call)?;
                if call.cancelled() {
                    machine.cancel();
                } else {
                    machine.handle_body_end(end, time.now());
                }
                Ok(())
            }
        }
    }
}

/// Passes each event to the caller (and the ones worth it to the log).
fn emit_events<M: Machine>(machine: &mut M, call: &CallOptions) {
    while let Some(event) = machine.poll_event() {
        log_event(&event);
        call.emit(event);
    }
}

fn log_event(event: &Event) {
    match event {
        Event::Retry {
            operation,
            attempt,
            max_retries,
            delay_ms,
            reason,
            request_id,
        } => tracing::info!(
            target: "removebgvideo",
            "retry {attempt}/{max_retries} of {operation} in {:.1} s ({reason}, request_id {})",
            *delay_ms as f64 / 1000.0,
            request_id.as_deref().unwrap_or("none")
        ),
        Event::StatusChanged {
            job_id,
            from,
            to,
            verdict: verdict @ (Verdict::Illegal | Verdict::Unjudged),
            ..
        } => {
            tracing::warn!(target: "removebgvideo", job_id, "job went from {from:?} to {to}: {verdict:?}")
        }
        _ => {}
    }
}

/// Writes a body into the part file, never past what the machine allows, telling the machine
/// (and through its events, the caller) each stretch written; returns how the body ended.
fn stream_body<M: Machine>(
    client: &Client,
    machine: &mut M,
    body: ureq::Body,
    output: &mut OutputFile,
    call: &CallOptions,
) -> Result<Result<(), TransportError>, Error> {
    let mut reader = body.into_with_config().limit(u64::MAX).reader();
    let mut buffer = vec![0u8; READ_BUFFER];
    loop {
        if call.cancelled() {
            return Ok(Ok(()));
        }
        let room = machine
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
        machine.handle_body_bytes(n as u64, client.inner.time.now());
        emit_events(machine, call);
    }
}
