//! The engine: one scheduler thread with a timer heap drives any number of core machines, and
//! a small bounded pool of HTTP workers sends their requests. Ten thousand waits cost ten
//! thousand small machines, not ten thousand threads. It also takes job updates from outside
//! (a webhook delivery), which end the waits of those jobs.

mod scheduler;
mod task;
mod worker;

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Sender};
use std::sync::{Arc, Mutex};

use removebgvideo_core::Job;
use removebgvideo_core::machine::{Machine, Transmit};

pub(crate) use task::Done;
use task::{Completion, Driven, Entry};

use crate::clock::Time;
use crate::options::CallOptions;
use crate::output_file::OutputFile;
use crate::wire::Wire;

/// HTTP workers of a client's engine unless configured: enough to keep thousands of waits
/// polling on a local network, few enough that a Node or Python process stays within a
/// handful of threads.
pub const DEFAULT_WORKERS: usize = 4;

/// What the scheduler hears: from callers, from workers and from cancel tokens.
// An entry moves once through the queue per attempt; boxing would only add an allocation.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Message {
    Submit {
        entry: Entry,
        job_id: Option<String>,
    },
    /// A caller sent an entry's first request straight to a worker (see `send_at_once`).
    Away {
        id: u64,
        job_id: Option<String>,
    },
    /// A worker is done with an entry's transmit and the call goes on.
    Back(Entry),
    /// A worker is done with an entry's transmit, which settled the call (sent only when the
    /// scheduler knows the entry, or has entries waiting for the worker now free).
    Ended(u64),
    /// A worker is free and entries were waiting for one.
    Freed,
    Cancel(u64),
    JobUpdate(Box<Job>),
    Shutdown,
}

/// What a worker does.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Work {
    /// Send the transmit and feed the entry's machine the answer.
    Send {
        entry: Entry,
        transmit: Transmit,
    },
    Finish(Completion),
}

/// How many workers hold no transmit, shared by the scheduler, submitting callers and the
/// workers. A machine takes a worker before it asks for its transmit, so what passes the rate
/// gate goes out at once: a 429 then holds back everything not yet sent, instead of a queue of
/// requests already cleared.
#[derive(Debug)]
pub(crate) struct FreeWorkers {
    free: AtomicUsize,
    /// Entries in the scheduler's send queue, as it last published them.
    waiting: AtomicUsize,
}

// SeqCst throughout: a worker gives back then reads `waiting`, the scheduler publishes
// `waiting` then reads `free`, so one of them always sees the other (no lost wake-up).
impl FreeWorkers {
    fn new(count: usize) -> FreeWorkers {
        FreeWorkers {
            free: AtomicUsize::new(count),
            waiting: AtomicUsize::new(0),
        }
    }

    /// Takes one if any is free.
    pub(crate) fn take(&self) -> bool {
        self.free
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
    }

    /// Gives one back; whether entries are waiting for it (the scheduler must then hear).
    pub(crate) fn give_back(&self) -> bool {
        self.free.fetch_add(1, Ordering::SeqCst);
        self.waiting.load(Ordering::SeqCst) > 0
    }

    pub(crate) fn any(&self) -> bool {
        self.free.load(Ordering::SeqCst) > 0
    }

    /// Whether entries wait in the scheduler's send queue.
    pub(crate) fn waiting(&self) -> bool {
        self.waiting.load(Ordering::SeqCst) > 0
    }

    pub(crate) fn publish_waiting(&self, count: usize) {
        self.waiting.store(count, Ordering::SeqCst);
    }
}

/// A client's engine (see the module doc). Started on first use, shared by the client's clones,
/// stopped when the last of them is dropped: calls still running then end as `cancelled`.
#[derive(Debug)]
pub struct Engine {
    scheduler: Mutex<Sender<Message>>,
    to_workers: Mutex<Sender<Work>>,
    free: Arc<FreeWorkers>,
    time: Arc<dyn Time>,
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
        let free = Arc::new(FreeWorkers::new(workers));
        for n in 0..workers {
            let (wire, time, work) = (wire.clone(), time.clone(), work.clone());
            let (scheduler, free) = (to_scheduler.clone(), free.clone());
            std::thread::Builder::new()
                .name(format!("removebgvideo-http-{n}"))
                .spawn(move || worker::run(wire, time, free, work, scheduler))
                .expect("the engine can start its HTTP workers");
        }
        let scheduler = scheduler::Scheduler::new(time.clone(), to_workers.clone(), free.clone());
        std::thread::Builder::new()
            .name("removebgvideo-engine".into())
            .spawn(move || scheduler.run(messages))
            .expect("the engine can start its scheduler");
        Engine {
            scheduler: Mutex::new(to_scheduler),
            to_workers: Mutex::new(to_workers),
            free,
            time,
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
        let entry = Entry::new(
            id,
            Box::new(Driven::new(machine, done)),
            call.clone(),
            output,
        );
        if let Some(mut entry) = self.send_at_once(entry, &job_id) {
            entry.known = true;
            self.send(Message::Submit { entry, job_id });
        }
    }

    /// Sends an entry's first request straight to a free worker, from the caller's thread; the
    /// scheduler only hears of it. A short call then costs two thread hand-offs (to a worker,
    /// and its answer to the caller) instead of four more through the scheduler. The entry
    /// comes back when it must wait (no free worker, the rate gate, a cancel): the scheduler
    /// decides then. Virtual time keeps every step on the scheduler, which alone moves it.
    fn send_at_once(&self, mut entry: Entry, job_id: &Option<String>) -> Option<Entry> {
        // Entries waiting for a worker go first: a new call then waits its turn.
        let waiting = self.free.waiting();
        if self.time.is_virtual() || entry.call.cancelled() || waiting || !self.free.take() {
            return Some(entry);
        }
        let Some(transmit) = entry.task.machine().poll_transmit(self.time.now()) else {
            self.free.give_back();
            return Some(entry);
        };
        // Only an entry that job updates are for needs the scheduler to know of it (a short
        // call then never wakes the scheduler). Told before the work is, so the scheduler
        // hears of the entry before its worker can be done.
        if job_id.is_some() {
            entry.known = true;
            self.send(Message::Away {
                id: entry.id,
                job_id: job_id.clone(),
            });
        }
        let to_workers = self.to_workers.lock().unwrap_or_else(|p| p.into_inner());
        // Workers live as long as the engine's senders to them.
        let _ = to_workers.send(Work::Send { entry, transmit });
        None
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
