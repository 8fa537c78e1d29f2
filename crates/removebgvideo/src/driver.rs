//! The blocking driver: moves one core machine's requests over the wire and its pauses through
//! the client's clock, on the caller's thread, until the machine has an outcome. Every decision
//! (retry, poll, resume, refresh, give up) is the machine's; this loop only moves bytes and time.

use removebgvideo_core::machine::Machine;
use removebgvideo_core::{Error, ErrorCode};

use crate::client::Client;
use crate::options::CallOptions;
use crate::output_file::OutputFile;
use crate::transfer::{self, emit_events};

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
                let (wire, time) = (&self.inner.wire, &*self.inner.time);
                transfer::perform(wire, time, machine, transmit, call, output.as_deref_mut())?;
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
}

pub(crate) fn stalled() -> Error {
    Error::new(
        ErrorCode::SdkBug,
        "the SDK's state machine stalled (nothing to send, nothing to wait for); please report it",
    )
}
