//! The engine: one scheduler thread with a timer heap drives any number of core machines, and
//! a small bounded pool of HTTP workers sends their requests. Ten thousand waits cost ten
//! thousand small machines, not ten thousand threads. It also takes job updates from outside
//! (a webhook delivery), which end the waits of those jobs.

mod scheduler;
mod task;
mod worker;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Sender};
use std::sync::{Arc, Mutex};

use removebgvideo_core::machine::{Machine, Transmit, TransportError};
use removebgvideo_core::{Error, Headers, Job};

pub(crate) use task::Done;
use task::{Completion, Driven, Task};

use crate::clock::Time;
use crate::options::CallOptions;
use crate::output_file::OutputFile;
use crate::wire::{Sent, Wire};

/// HTTP workers of a client's engine unless configured: enough to keep thousands of waits
/// polling on a local network, few enough that a Node or Python process stays within a
/// handful of threads.
pub const DEFAULT_WORKERS: usize = 4;

/// What the scheduler hears: from callers, from workers and from cancel tokens.
pub(crate) enum Message {
    Submit {
        id: u64,
        task: Box<dyn Task>,
        call: CallOptions,
        output: Option<OutputFile>,
        job_id: Option<String>,
    },
    Cancel(u64),
    JobUpdate(Box<Job>),
    /// An API attempt's result.
    Sent {
        id: u64,
        sent: Result<Sent, Error>,
    },
    /// The head of an output URL's answer; the plan for its body goes back on `reply`.
    Head {
        id: u64,
        status: u16,
        headers: Headers,
        reply: worker::PlanReply,
    },
    /// More bytes of an output body are written.
    Bytes {
        id: u64,
        n: u64,
    },
    /// An output body ended (or could not be written: `Err`).
    BodyEnd {
        id: u64,
        end: worker::FetchEnd,
        output: Option<OutputFile>,
    },
    /// An output URL's error answer, with its body.
    ErrorBody {
        id: u64,
        status: u16,
        headers: Headers,
        body: Vec<u8>,
        output: Option<OutputFile>,
    },
    /// An output URL's answer whose body the machine did not need.
    Discarded {
        id: u64,
        output: Option<OutputFile>,
    },
    /// An output URL's request got no answer.
    FetchFailed {
        id: u64,
        failure: TransportError,
        output: Option<OutputFile>,
    },
    Shutdown,
}

/// What a worker does.
// Moved once through the queue per attempt; boxing would only add an allocation to each.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Work {
    Send {
        id: u64,
        transmit: Transmit,
        call: CallOptions,
        output: Option<OutputFile>,
    },
    Finish(Completion),
}

/// A client's engine (see the module doc). Started on first use, shared by the client's clones,
/// stopped when the last of them is dropped: calls still running then end as `cancelled`.
#[derive(Debug)]
pub struct Engine {
    scheduler: Mutex<Sender<Message>>,
    next_id: AtomicU64,
    workers: usize,
}

impl Engine {
    /// Starts the scheduler and `workers` HTTP workers (at least one).
    pub(crate) fn start(wire: Arc<Wire>, time: Arc<dyn Time>, workers: usize) -> Engine {
        let workers = workers.max(1);
        let (to_scheduler, messages) = mpsc::channel();
        let (to_workers, work) = mpsc::channel();
        let work = Arc::new(Mutex::new(work));
        for n in 0..workers {
            let (wire, work, scheduler) = (wire.clone(), work.clone(), to_scheduler.clone());
            std::thread::Builder::new()
                .name(format!("removebgvideo-http-{n}"))
                .spawn(move || worker::run(wire, work, scheduler))
                .expect("the engine can start its HTTP workers");
        }
        std::thread::Builder::new()
            .name("removebgvideo-engine".into())
            .spawn(move || scheduler::Scheduler::new(time, to_workers, workers).run(messages))
            .expect("the engine can start its scheduler");
        Engine {
            scheduler: Mutex::new(to_scheduler),
            next_id: AtomicU64::new(1),
            workers,
        }
    }

    /// Its HTTP workers.
    pub fn workers(&self) -> usize {
        self.workers
    }

    /// A job read elsewhere (a verified webhook delivery): every wait of that job takes it as an
    /// observation, and a terminal one ends them.
    pub fn update_job(&self, job: Job) {
        self.send(Message::JobUpdate(Box::new(job)));
    }

    /// Drives `machine` to its outcome; `done` receives it on one of the engine's workers.
    /// `job_id` names the job a wait is about, for updates from outside.
    pub(crate) fn submit<M>(
        &self,
        machine: M,
        call: &CallOptions,
        output: Option<OutputFile>,
        job_id: Option<String>,
        done: Done<M::Output>,
    ) where
        M: Machine + Send + 'static,
        M::Output: Send + 'static,
    {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        if let Some(cancel) = &call.cancel {
            let scheduler = self.sender();
            cancel.on_cancel(Box::new(move || {
                let _ = scheduler.send(Message::Cancel(id));
            }));
        }
        self.send(Message::Submit {
            id,
            task: Box::new(Driven::new(machine, done)),
            call: call.clone(),
            output,
            job_id,
        });
    }

    fn sender(&self) -> Sender<Message> {
        self.scheduler
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn send(&self, message: Message) {
        // The scheduler stops only when the engine is dropped, so this cannot fail while it
        // exists; if it ever did, the task's receiver is dropped and its caller sees that.
        let _ = self.sender().send(message);
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        self.send(Message::Shutdown);
    }
}
