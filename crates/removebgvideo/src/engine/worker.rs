//! An HTTP worker of the engine: takes one transmit at a time, sends it over the client's wire,
//! and reports what came back to the scheduler. An output body is streamed here, into the part
//! file that travels with the transmit; only its head's plan is asked of the scheduler.

use std::sync::mpsc::{self, Receiver, Sender, SyncSender};
use std::sync::{Arc, Mutex};

use removebgvideo_core::machine::{BodyPlan, Transmit, TransportError};
use removebgvideo_core::{Error, Headers};

use super::{Message, Work};
use crate::options::CallOptions;
use crate::output_file::OutputFile;
use crate::wire::{self, BodyObserver, Wire};

/// Bytes of a streamed body between two reports to the scheduler.
const REPORT_EVERY: u64 = 256 * 1024;

/// The plan for a body, and how many bytes it may bring.
pub(crate) type Plan = (BodyPlan, Option<u64>);

/// Runs until the work queue closes.
pub(crate) fn run(wire: Arc<Wire>, work: Arc<Mutex<Receiver<Work>>>, scheduler: Sender<Message>) {
    loop {
        // The lock is held only to take one item; a poisoned lock still holds the receiver.
        let next = work.lock().unwrap_or_else(|p| p.into_inner()).recv();
        match next {
            Ok(Work::Send {
                id,
                transmit,
                call,
                output,
            }) => {
                let message = send(&wire, id, transmit, &call, output, &scheduler);
                if scheduler.send(message).is_err() {
                    return;
                }
            }
            // A caller's callback that panics must not take the worker with it.
            Ok(Work::Finish(completion)) => {
                if std::panic::catch_unwind(std::panic::AssertUnwindSafe(completion)).is_err() {
                    tracing::error!(target: "removebgvideo", "a completion callback panicked");
                }
            }
            Err(_) => return,
        }
    }
}

fn send(
    wire: &Wire,
    id: u64,
    transmit: Transmit,
    call: &CallOptions,
    output: Option<OutputFile>,
    scheduler: &Sender<Message>,
) -> Message {
    match transmit {
        Transmit::Api {
            request,
            body,
            timeout,
            total,
        } => Message::Sent {
            id,
            sent: wire.send(&request, &body, timeout, total, call),
        },
        Transmit::Fetch {
            url,
            headers,
            idle_timeout,
            total,
        } => match open(output).and_then(|output| {
            match wire.fetch(&url, &headers, idle_timeout, total) {
                Ok(answer) => Ok((output, answer)),
                Err(error) => Err((error, output)),
            }
        }) {
            Err((error, output)) => Message::BodyEnd {
                id,
                end: Err(error),
                output,
            },
            Ok((output, Err(failure))) => Message::FetchFailed {
                id,
                failure,
                output,
            },
            Ok((output, Ok(response))) => receive(id, response, call, output, scheduler),
        },
    }
}

/// Makes the part file before the first request for the output (see `OutputFile::open`).
fn open(output: Option<OutputFile>) -> Result<Option<OutputFile>, (Error, Option<OutputFile>)> {
    match output {
        Some(mut file) => match file.open() {
            Ok(()) => Ok(Some(file)),
            Err(error) => Err((error, Some(file))),
        },
        None => Ok(None),
    }
}

/// Asks the scheduler what to do with the body, then does it.
fn receive(
    id: u64,
    response: ureq::http::Response<ureq::Body>,
    call: &CallOptions,
    output: Option<OutputFile>,
    scheduler: &Sender<Message>,
) -> Message {
    let status = response.status().as_u16();
    let headers: Headers = crate::transport::headers_of(&response);
    let (reply, plan) = mpsc::sync_channel::<Plan>(1);
    let asked = scheduler.send(Message::Head {
        id,
        status,
        headers: headers.clone(),
        reply,
    });
    let Ok((plan, room)) = asked.map_err(drop).and_then(|_| plan.recv().map_err(drop)) else {
        return Message::Discarded { id, output };
    };
    match plan {
        BodyPlan::Discard => Message::Discarded { id, output },
        BodyPlan::ReadError { limit } => Message::ErrorBody {
            id,
            status,
            headers,
            body: wire::read_error_body(response.into_body(), limit),
            output,
        },
        BodyPlan::Stream { offset } => {
            let Some(mut file) = output else {
                return Message::BodyEnd {
                    id,
                    end: Err(crate::driver::nowhere_to_write()),
                    output: None,
                };
            };
            let end = file.cut(offset).and_then(|_| {
                let mut observer = Reporting {
                    id,
                    room,
                    unreported: 0,
                    scheduler,
                };
                let end = wire::stream_body(response.into_body(), &mut file, &mut observer, call);
                observer.flush();
                end
            });
            Message::BodyEnd {
                id,
                end,
                output: Some(file),
            }
        }
    }
}

/// Keeps a streamed body within its room and reports its bytes in stretches.
struct Reporting<'a> {
    id: u64,
    room: Option<u64>,
    unreported: u64,
    scheduler: &'a Sender<Message>,
}

impl Reporting<'_> {
    fn flush(&mut self) {
        if self.unreported > 0 {
            let _ = self.scheduler.send(Message::Bytes {
                id: self.id,
                n: self.unreported,
            });
            self.unreported = 0;
        }
    }
}

impl BodyObserver for Reporting<'_> {
    fn room(&self) -> Option<u64> {
        self.room
    }

    fn wrote(&mut self, n: u64) {
        self.room = self.room.map(|r| r.saturating_sub(n));
        self.unreported += n;
        if self.unreported >= REPORT_EVERY {
            self.flush();
        }
    }
}

/// What the scheduler's answer to a head is sent back on.
pub(crate) type PlanReply = SyncSender<Plan>;

/// A failed fetch or a local error, for the scheduler.
pub(crate) type FetchEnd = Result<Result<(), TransportError>, Error>;
