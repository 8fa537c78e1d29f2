//! The blocking driver: moves one core machine's requests over the wire and its pauses through
//! the client's clock, on the caller's thread, until the machine has an outcome. Every decision
//! (retry, poll, resume, refresh, give up) is the machine's; this loop only moves bytes and time.

use removebgvideo_core::machine::{BodyPlan, Machine, Transmit};
use removebgvideo_core::{Error, ErrorCode, Event, state::Verdict};

use crate::client::Client;
use crate::options::CallOptions;
use crate::output_file::OutputFile;
use crate::wire::{self, BodyObserver};

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
                return Err(stalled());
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
        let wire = &self.inner.wire;
        let time = &self.inner.time;
        match transmit {
            Transmit::Api {
                request,
                body,
                timeout,
                total,
            } => {
                let sent = wire.send(&request, &body, timeout, total, call)?;
                // A cancel raised while the request was out is known before its result, so
                // a POST that may have acted says it was cancelled too.
                if call.cancelled() {
                    machine.cancel();
                }
                match sent {
                    Ok(raw) => {
                        machine.handle_response(raw.status, raw.headers, &raw.body, time.now())
                    }
                    Err(failure) => machine.handle_transport_error(failure, time.now()),
                }
                Ok(())
            }
            Transmit::Fetch {
                url,
                headers,
                idle_timeout,
                total,
            } => {
                let mut output = output;
                if let Some(output) = output.as_deref_mut() {
                    output.open()?;
                }
                self.fetched(
                    machine,
                    wire.fetch(&url, &headers, idle_timeout, total)?,
                    call,
                    output,
                )
            }
        }
    }

    /// Feeds an output URL's answer, or its failure, to the machine.
    fn fetched<M: Machine>(
        &self,
        machine: &mut M,
        answer: Result<
            ureq::http::Response<ureq::Body>,
            removebgvideo_core::machine::TransportError,
        >,
        call: &CallOptions,
        output: Option<&mut OutputFile>,
    ) -> Result<(), Error> {
        match answer {
            Ok(response) => self.receive_output(machine, response, call, output),
            Err(failure) => {
                machine.handle_transport_error(failure, self.inner.time.now());
                Ok(())
            }
        }
    }

    /// Hands an output URL's answer to the machine and moves its body as the machine says.
    fn receive_output<M: Machine>(
        &self,
        machine: &mut M,
        response: ureq::http::Response<ureq::Body>,
        call: &CallOptions,
        output: Option<&mut OutputFile>,
    ) -> Result<(), Error> {
        let status = response.status().as_u16();
        let headers = crate::transport::headers_of(&response);
        let time = &self.inner.time;
        match machine.handle_head(status, headers.clone(), time.now()) {
            BodyPlan::Discard => {}
            BodyPlan::ReadError { limit } => {
                let body = wire::read_error_body(response.into_body(), limit);
                machine.handle_response(status, headers, &body, time.now());
            }
            BodyPlan::Stream { offset } => {
                let output = output.ok_or_else(nowhere_to_write)?;
                output.cut(offset)?;
                let mut observer = Feeding {
                    machine: &mut *machine,
                    client: self,
                    call,
                };
                let end = wire::stream_body(response.into_body(), output, &mut observer, call)?;
                if call.cancelled() {
                    machine.cancel();
                } else {
                    machine.handle_body_end(end, time.now());
                }
            }
        }
        Ok(())
    }
}

/// Feeds a streamed body's progress to the machine, and its events to the caller, as it goes.
struct Feeding<'a, M> {
    machine: &'a mut M,
    client: &'a Client,
    call: &'a CallOptions,
}

impl<M: Machine> BodyObserver for Feeding<'_, M> {
    fn room(&self) -> Option<u64> {
        self.machine.room()
    }

    fn wrote(&mut self, n: u64) {
        self.machine
            .handle_body_bytes(n, self.client.inner.time.now());
        emit_events(self.machine, self.call);
    }
}

pub(crate) fn stalled() -> Error {
    Error::new(
        ErrorCode::SdkBug,
        "the SDK's state machine stalled (nothing to send, nothing to wait for); please report it",
    )
}

pub(crate) fn nowhere_to_write() -> Error {
    Error::new(
        ErrorCode::SdkBug,
        "an output body came with nowhere to write it; please report it",
    )
}

/// Passes each event to the caller (and the ones worth it to the log).
pub(crate) fn emit_events<M: Machine + ?Sized>(machine: &mut M, call: &CallOptions) {
    while let Some(event) = machine.poll_event() {
        log_event(&event);
        call.emit(event);
    }
}

pub(crate) fn log_event(event: &Event) {
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
