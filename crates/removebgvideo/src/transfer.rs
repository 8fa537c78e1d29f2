//! One transmit over the wire, and what came back fed to its machine: the step both drivers
//! share (the blocking driver on the caller's thread, the engine's workers), and the machine's
//! events passed on to the caller. Every decision is the machine's; this only moves bytes.

use removebgvideo_core::machine::{BodyPlan, Transmit, TransportError};
use removebgvideo_core::{Error, ErrorCode, Event, state::Verdict};

use crate::clock::Time;
use crate::machine_view::MachineView;
use crate::options::CallOptions;
use crate::output_file::OutputFile;
use crate::wire::{self, BodyObserver, Wire};

/// Sends one transmit and feeds what came back to the machine. An error here is local (a
/// file that cannot be read or written), not the network's: it ends the call.
pub(crate) fn perform(
    wire: &Wire,
    time: &dyn Time,
    machine: &mut dyn MachineView,
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
            let sent = wire.send(&request, &body, timeout, total, call)?;
            // A cancel raised while the request was out is known before its result, so
            // a POST that may have acted says it was cancelled too.
            if call.cancelled() {
                machine.cancel();
            }
            match sent {
                Ok(raw) => machine.handle_response(raw.status, raw.headers, &raw.body, time.now()),
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
            match wire.fetch(&url, &headers, idle_timeout, total)? {
                Ok(response) => receive_output(time, machine, response, call, output),
                Err(failure) => {
                    machine.handle_transport_error(failure, time.now());
                    Ok(())
                }
            }
        }
    }
}

/// Hands an output URL's answer to the machine and moves its body as the machine says.
fn receive_output(
    time: &dyn Time,
    machine: &mut dyn MachineView,
    response: ureq::http::Response<ureq::Body>,
    call: &CallOptions,
    output: Option<&mut OutputFile>,
) -> Result<(), Error> {
    let status = response.status().as_u16();
    let headers = crate::transport::headers_of(&response);
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
                time,
                call,
            };
            let end: Result<(), TransportError> =
                wire::stream_body(response.into_body(), output, &mut observer, call)?;
            if call.cancelled() {
                machine.cancel();
            } else {
                machine.handle_body_end(end, time.now());
            }
        }
    }
    Ok(())
}

/// Feeds a streamed body's progress to the machine, and its events to the caller, as it goes.
struct Feeding<'a> {
    machine: &'a mut dyn MachineView,
    time: &'a dyn Time,
    call: &'a CallOptions,
}

impl BodyObserver for Feeding<'_> {
    fn room(&self) -> Option<u64> {
        self.machine.room()
    }

    fn wrote(&mut self, n: u64) {
        self.machine.handle_body_bytes(n, self.time.now());
        emit_events(self.machine, self.call);
    }
}

pub(crate) fn nowhere_to_write() -> Error {
    Error::new(
        ErrorCode::SdkBug,
        "an output body came with nowhere to write it; please report it",
    )
}

/// Passes each event to the caller (and the ones worth it to the log).
pub(crate) fn emit_events(machine: &mut dyn MachineView, call: &CallOptions) {
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
