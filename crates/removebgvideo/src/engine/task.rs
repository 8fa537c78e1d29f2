//! A machine as the engine holds it: its output type erased, its completion a closure the
//! engine runs on a worker once the outcome is known, and what travels with it between the
//! scheduler and a worker.

use removebgvideo_core::machine::Machine;
use removebgvideo_core::{Error, ErrorCode};

use crate::machine_view::MachineView;
use crate::options::CallOptions;
use crate::output_file::OutputFile;
use crate::transfer::emit_events;

/// Work to run once a machine has its outcome (placing a download, resolving a promise).
pub(crate) type Completion = Box<dyn FnOnce() + Send>;

/// What receives a machine's outcome, with the part file of a download.
pub(crate) type Done<T> = Box<dyn FnOnce(Result<T, Error>, Option<OutputFile>) + Send>;

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

impl<M: Machine> Drop for Driven<M> {
    fn drop(&mut self) {
        // A machine dropped unfinished (the engine stopped while it was on a worker, or its
        // message was still in a queue) still answers its caller.
        if let Some(done) = self.done.take() {
            done(Err(client_dropped()), None);
        }
    }
}

/// The outcome of a call still under way when its client goes.
pub(crate) fn client_dropped() -> Error {
    Error::new(
        ErrorCode::Cancelled,
        "the client was dropped while this call was under way",
    )
}

/// A machine under way, with what travels with it between the scheduler and a worker.
pub(crate) struct Entry {
    pub(crate) id: u64,
    pub(crate) task: Box<dyn Task>,
    pub(crate) call: CallOptions,
    /// The part file of a download.
    pub(crate) output: Option<OutputFile>,
    /// The machine has been told of the call's cancel.
    cancel_seen: bool,
    /// The scheduler has a record of it (it submitted it, or heard it went out).
    pub(crate) known: bool,
}

impl Entry {
    pub(crate) fn new(
        id: u64,
        task: Box<dyn Task>,
        call: CallOptions,
        output: Option<OutputFile>,
    ) -> Entry {
        Entry {
            id,
            task,
            call,
            output,
            cancel_seen: false,
            known: false,
        }
    }

    /// Tells the machine of a cancel raised since it last looked; whether there was one.
    pub(crate) fn notice_cancel(&mut self) -> bool {
        if self.cancel_seen || !self.call.cancelled() {
            return false;
        }
        self.cancel_seen = true;
        self.task.machine().cancel();
        true
    }

    /// Its events passed on; then, once the outcome is known, the work that delivers it.
    pub(crate) fn settle(&mut self) -> Option<Completion> {
        emit_events(self.task.machine(), &self.call);
        self.task.completion(&mut self.output)
    }

    /// Ends it with a local error, whatever the machine says.
    pub(crate) fn abort(&mut self, error: Error) -> Option<Completion> {
        let output = self.output.take();
        self.task.abort(error, output)
    }
}
