//! An HTTP worker of the engine: takes one entry at a time with its transmit, sends it over
//! the client's wire and feeds the machine what came back (streaming an output body into the
//! part file that travels with it). When that settles the call, the worker delivers it at
//! once; otherwise the entry goes back to the scheduler for its next step.

use std::sync::mpsc::{Receiver, SendError, Sender};
use std::sync::{Arc, Mutex};

use removebgvideo_core::machine::Transmit;
use removebgvideo_core::{Error, ErrorCode};

use super::task::{Completion, Entry, client_dropped};
use super::{FreeWorkers, Message, Work};
use crate::clock::Time;
use crate::transfer;
use crate::wire::Wire;

/// Runs until the work queue closes.
pub(crate) fn run(
    wire: Arc<Wire>,
    time: Arc<dyn Time>,
    free: Arc<FreeWorkers>,
    work: Arc<Mutex<Receiver<Work>>>,
    scheduler: Sender<Message>,
) {
    loop {
        // The lock is held only to take one item; a poisoned lock still holds the receiver.
        let next = work.lock().unwrap_or_else(|p| p.into_inner()).recv();
        match next {
            Ok(Work::Send { entry, transmit }) => {
                carry(&wire, &*time, &free, entry, transmit, &scheduler)
            }
            Ok(Work::Finish(completion)) => complete(completion),
            Err(_) => return,
        }
    }
}

/// Sends an entry's transmit and feeds its machine the answer. A call settled by it is
/// delivered from here: the caller hears without a hand-off back to the scheduler.
fn carry(
    wire: &Wire,
    time: &dyn Time,
    free: &FreeWorkers,
    mut entry: Entry,
    transmit: Transmit,
    scheduler: &Sender<Message>,
) {
    // A bug of ours in one machine must not take the worker (and every call after) with it.
    // Settling passes the machine's events to the caller's handler: inside the guard too.
    let fed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let output = entry.output.as_mut();
        transfer::perform(
            wire,
            time,
            entry.task.machine(),
            transmit,
            &entry.call,
            output,
        )
        .map(|()| entry.settle())
    }));
    let settled = match fed {
        Ok(Ok(settled)) => settled,
        Ok(Err(error)) => entry.abort(error),
        Err(_) => {
            tracing::error!(target: "removebgvideo", "the engine hit a bug sending a request; please report it");
            entry.abort(Error::new(
                ErrorCode::SdkBug,
                "the SDK hit a bug sending this call's request; please report it",
            ))
        }
    };
    match settled {
        Some(completion) => {
            if entry.known {
                let _ = scheduler.send(Message::Ended(entry.id));
            }
            drop(entry);
            complete(completion);
            // Free once the completion ran (placing a download holds the worker too). The
            // scheduler hears only if entries wait for a worker.
            if free.give_back() {
                let _ = scheduler.send(Message::Freed);
            }
        }
        None => {
            // Given back first, so the entry's next step can have it (the message wakes the
            // scheduler anyway).
            free.give_back();
            if let Err(SendError(Message::Back(mut entry))) = scheduler.send(Message::Back(entry)) {
                // The engine stopped meanwhile: the call ends here.
                if let Some(completion) = entry.abort(client_dropped()) {
                    complete(completion);
                }
            }
        }
    }
}

/// Runs a completion; a caller's callback that panics must not take the worker with it.
fn complete(completion: Completion) {
    if std::panic::catch_unwind(std::panic::AssertUnwindSafe(completion)).is_err() {
        tracing::error!(target: "removebgvideo", "a completion callback panicked");
    }
}
