//! A machine as the engine holds it: its output type erased, its completion a closure the
//! engine runs on a worker once the outcome is known.

use removebgvideo_core::machine::{BodyPlan, Machine, Transmit, TransportError};
use removebgvideo_core::{Error, Event, Headers, Job, Timestamp};

use crate::output_file::OutputFile;

/// Work to run once a machine has its outcome (placing a download, resolving a promise).
pub(crate) type Completion = Box<dyn FnOnce() + Send>;

/// What receives a machine's outcome, with the part file of a download.
pub(crate) type Done<T> = Box<dyn FnOnce(Result<T, Error>, Option<OutputFile>) + Send>;

/// The inputs and outputs of any machine, without its output type.
pub(crate) trait MachineView {
    fn poll_transmit(&mut self, now: Timestamp) -> Option<Transmit>;
    fn poll_timeout(&self) -> Option<Timestamp>;
    fn handle_timeout(&mut self, now: Timestamp);
    fn handle_response(&mut self, status: u16, headers: Headers, body: &[u8], now: Timestamp);
    fn handle_transport_error(&mut self, failure: TransportError, now: Timestamp);
    fn handle_head(&mut self, status: u16, headers: Headers, now: Timestamp) -> BodyPlan;
    fn handle_body_bytes(&mut self, n: u64, now: Timestamp);
    fn handle_body_end(&mut self, end: Result<(), TransportError>, now: Timestamp);
    fn room(&self) -> Option<u64>;
    fn handle_job_update(&mut self, job: Job, now: Timestamp);
    fn cancel(&mut self);
    fn poll_event(&mut self) -> Option<Event>;
}

impl<M: Machine> MachineView for M {
    fn poll_transmit(&mut self, now: Timestamp) -> Option<Transmit> {
        Machine::poll_transmit(self, now)
    }
    fn poll_timeout(&self) -> Option<Timestamp> {
        Machine::poll_timeout(self)
    }
    fn handle_timeout(&mut self, now: Timestamp) {
        Machine::handle_timeout(self, now)
    }
    fn handle_response(&mut self, status: u16, headers: Headers, body: &[u8], now: Timestamp) {
        Machine::handle_response(self, status, headers, body, now)
    }
    fn handle_transport_error(&mut self, failure: TransportError, now: Timestamp) {
        Machine::handle_transport_error(self, failure, now)
    }
    fn handle_head(&mut self, status: u16, headers: Headers, now: Timestamp) -> BodyPlan {
        Machine::handle_head(self, status, headers, now)
    }
    fn handle_body_bytes(&mut self, n: u64, now: Timestamp) {
        Machine::handle_body_bytes(self, n, now)
    }
    fn handle_body_end(&mut self, end: Result<(), TransportError>, now: Timestamp) {
        Machine::handle_body_end(self, end, now)
    }
    fn room(&self) -> Option<u64> {
        Machine::room(self)
    }
    fn handle_job_update(&mut self, job: Job, now: Timestamp) {
        Machine::handle_job_update(self, job, now)
    }
    fn cancel(&mut self) {
        Machine::cancel(self)
    }
    fn poll_event(&mut self) -> Option<Event> {
        Machine::poll_event(self)
    }
}

/// A machine with what receives its outcome.
pub(crate) trait Task: Send {
    /// The machine.
    fn machine(&mut self) -> &mut dyn MachineView;
    /// Once the outcome is known: the work that delivers it (given once).
    fn completion(&mut self, output: &mut Option<OutputFile>) -> Option<Completion>;
    /// Ends the task with a local error (a file that cannot be read), whatever the machine says.
    fn abort(&mut self, error: Error, output: Option<OutputFile>) -> Option<Completion>;
}

/// A machine and its receiver.
pub(crate) struct Driven<M: Machine> {
    machine: M,
    done: Option<Done<M::Output>>,
}

impl<M: Machine> Driven<M> {
    pub(crate) fn new(machine: M, done: Done<M::Output>) -> Self {
        Driven {
            machine,
            done: Some(done),
        }
    }
}

impl<M> Task for Driven<M>
where
    M: Machine + Send + 'static,
    M::Output: Send + 'static,
{
    fn machine(&mut self) -> &mut dyn MachineView {
        &mut self.machine
    }

    fn completion(&mut self, output: &mut Option<OutputFile>) -> Option<Completion> {
        let outcome = self.machine.poll_outcome()?;
        let done = self.done.take()?;
        let output = output.take();
        Some(Box::new(move || done(outcome, output)))
    }

    fn abort(&mut self, error: Error, output: Option<OutputFile>) -> Option<Completion> {
        let done = self.done.take()?;
        Some(Box::new(move || done(Err(error), output)))
    }
}
