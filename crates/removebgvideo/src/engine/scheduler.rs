//! The scheduler: owns every machine of the engine that is not on a worker, wakes each at its
//! time from one timer heap and hands it, with its transmit, to a free worker. It never blocks
//! on the network; it only waits for the next message or the next timer.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::time::Duration;

use removebgvideo_core::machine::Transmit;
use removebgvideo_core::{Job, Timestamp};

use super::task::{Completion, Entry, client_dropped};
use super::{FreeWorkers, Message, Work};
use crate::clock::Time;
use crate::driver::stalled;

/// An entry the scheduler holds, and its place in the scheduler's queues.
struct Home {
    entry: Entry,
    /// When it wants `handle_timeout`, as pushed on the heap.
    timer: Option<Timestamp>,
    /// Waiting in the send queue for a free worker.
    queued: bool,
}

/// What stepping an entry came to.
// Made and matched at once, never stored: boxing the transmit would only add an allocation.
#[allow(clippy::large_enum_variant)]
enum Step {
    /// It waits (for its timer, or its turn for a worker).
    Stays,
    Sends(Transmit),
    Finishes(Completion),
}

pub(crate) struct Scheduler {
    time: Arc<dyn Time>,
    workers: Sender<Work>,
    free: Arc<FreeWorkers>,
    home: HashMap<u64, Home>,
    /// Entries on a worker, with the job updates that came for them meanwhile.
    away: HashMap<u64, Vec<Job>>,
    timers: BinaryHeap<Reverse<(Timestamp, u64)>>,
    /// The entries of each job, for updates from outside, and the job of each such entry.
    by_job: HashMap<String, Vec<u64>>,
    job_of: HashMap<u64, String>,
    /// The latest update of each job no entry took yet (a delivery can beat the wait it ends,
    /// or a run's create answer), oldest first, for the entries that come for them.
    unclaimed: HashMap<String, Job>,
    unclaimed_order: VecDeque<String>,
    /// Entries ready to send, in the order they became ready.
    send_queue: VecDeque<u64>,
}

/// Updates kept for entries still to come: the deliveries of a large batch's jobs in flight.
const UNCLAIMED_UPDATES: usize = 20_000;

impl Scheduler {
    pub(crate) fn new(time: Arc<dyn Time>, workers: Sender<Work>, free: Arc<FreeWorkers>) -> Self {
        Scheduler {
            time,
            workers,
            free,
            home: HashMap::new(),
            away: HashMap::new(),
            timers: BinaryHeap::new(),
            by_job: HashMap::new(),
            job_of: HashMap::new(),
            unclaimed: HashMap::new(),
            unclaimed_order: VecDeque::new(),
            send_queue: VecDeque::new(),
        }
    }

    /// Runs until told to stop (or until every sender is gone).
    pub(crate) fn run(mut self, messages: Receiver<Message>) {
        loop {
            // A timer's step can queue an entry for a worker: the drain right after it
            // publishes that, so a worker freeing itself wakes the scheduler.
            self.guarded(Scheduler::fire_due_timers);
            self.guarded(Scheduler::drain_send_queue);
            let message = match self.next_timer() {
                None => messages.recv().map_err(|_| RecvTimeoutError::Disconnected),
                Some(at) => {
                    let wait = at.since(self.time.now());
                    // An entry waiting for a worker waits for the message that frees one.
                    let idle = self.away.is_empty() && self.send_queue.is_empty();
                    if self.time.is_virtual() && idle {
                        // Nothing can arrive before the timer: let virtual time jump to it.
                        self.time.sleep(wait, None);
                        continue;
                    }
                    messages.recv_timeout(wait.max(Duration::from_millis(1)))
                }
            };
            match message {
                Ok(Message::Shutdown) | Err(RecvTimeoutError::Disconnected) => {
                    return self.stop();
                }
                Ok(message) => self.guarded(|scheduler| scheduler.handle(message)),
                Err(RecvTimeoutError::Timeout) => {}
            }
            self.guarded(Scheduler::drain_send_queue);
        }
    }

    /// Runs `work`; a bug of ours in one machine must not stop every other call.
    fn guarded(&mut self, work: impl FnOnce(&mut Scheduler)) {
        let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| work(self)));
        if ran.is_err() {
            tracing::error!(target: "removebgvideo", "the engine hit a bug; please report it");
        }
    }

    fn next_timer(&self) -> Option<Timestamp> {
        self.timers.peek().map(|Reverse((at, _))| *at)
    }

    fn fire_due_timers(&mut self) {
        let now = self.time.now();
        while let Some(Reverse((at, id))) = self.timers.peek().copied() {
            if at > now {
                break;
            }
            self.timers.pop();
            let Some(home) = self.home.get_mut(&id) else {
                continue;
            };
            // Stale heap entries (a timer replaced, or one whose entry went out since) are skipped.
            if home.timer != Some(at) {
                continue;
            }
            home.timer = None;
            home.entry.task.machine().handle_timeout(now);
            self.step(id);
        }
    }

    fn handle(&mut self, message: Message) {
        match message {
            Message::Submit { entry, job_id } => {
                let id = entry.id;
                self.home.insert(
                    id,
                    Home {
                        entry,
                        timer: None,
                        queued: false,
                    },
                );
                self.note_job(id, job_id);
                self.step(id);
            }
            Message::Away { id, job_id } => {
                self.away.insert(id, Vec::new());
                self.note_job(id, job_id);
            }
            Message::Back(entry) => self.came_back(entry),
            Message::Ended(id) => {
                self.away.remove(&id);
                self.forget_job(id);
            }
            // The send queue is drained after every message.
            Message::Freed => {}
            // An entry on a worker notices its cancel when it comes back.
            Message::Cancel(id) => {
                if let Some(home) = self.home.get_mut(&id)
                    && home.entry.notice_cancel()
                {
                    self.step(id);
                }
            }
            Message::JobUpdate(job) => self.job_update(&job),
            Message::Shutdown => {}
        }
    }

    fn came_back(&mut self, mut entry: Entry) {
        let id = entry.id;
        // From now on the scheduler has a record of it, and hears when it ends.
        entry.known = true;
        let updates = self.away.remove(&id).unwrap_or_default();
        let mut home = Home {
            entry,
            timer: None,
            queued: false,
        };
        let now = self.time.now();
        for job in updates {
            home.entry.task.machine().handle_job_update(job, now);
        }
        self.home.insert(id, home);
        self.step(id);
    }

    fn job_update(&mut self, job: &Job) {
        let ids = self.by_job.get(&job.id).cloned().unwrap_or_default();
        if ids.is_empty() {
            return self.keep_unclaimed(job);
        }
        let now = self.time.now();
        for id in ids {
            if let Some(updates) = self.away.get_mut(&id) {
                updates.push(job.clone());
            } else if let Some(home) = self.home.get_mut(&id) {
                home.entry
                    .task
                    .machine()
                    .handle_job_update(job.clone(), now);
                self.step(id);
            }
        }
    }

    /// Notes the job an entry takes updates for, and hands it the update that came first.
    fn note_job(&mut self, id: u64, job_id: Option<String>) {
        let Some(job_id) = job_id else {
            return;
        };
        self.by_job.entry(job_id.clone()).or_default().push(id);
        self.job_of.insert(id, job_id.clone());
        let Some(update) = self.unclaimed.remove(&job_id) else {
            return;
        };
        self.unclaimed_order.retain(|other| *other != job_id);
        if let Some(updates) = self.away.get_mut(&id) {
            updates.push(update);
        } else if let Some(home) = self.home.get_mut(&id) {
            let now = self.time.now();
            home.entry.task.machine().handle_job_update(update, now);
        }
    }

    fn keep_unclaimed(&mut self, job: &Job) {
        if self.unclaimed.insert(job.id.clone(), job.clone()).is_none() {
            self.unclaimed_order.push_back(job.id.clone());
        }
        while self.unclaimed_order.len() > UNCLAIMED_UPDATES {
            if let Some(oldest) = self.unclaimed_order.pop_front() {
                self.unclaimed.remove(&oldest);
            }
        }
    }

    /// A machine that learned its job as it went (a run, from its create's answer) is noted
    /// for that job's updates.
    fn learn_job(&mut self, id: u64) {
        if self.job_of.contains_key(&id) {
            return;
        }
        let learned = self
            .home
            .get_mut(&id)
            .and_then(|home| home.entry.task.machine().updates_for().map(str::to_owned));
        if learned.is_some() {
            self.note_job(id, learned);
        }
    }

    fn forget_job(&mut self, id: u64) {
        if let Some(job) = self.job_of.remove(&id)
            && let Some(ids) = self.by_job.get_mut(&job)
        {
            ids.retain(|other| *other != id);
            if ids.is_empty() {
                self.by_job.remove(&job);
            }
        }
    }

    /// Hands free workers to the entries waiting for one, and tells the workers how many
    /// still wait (a worker that frees itself then wakes the scheduler).
    fn drain_send_queue(&mut self) {
        loop {
            while self.free.any() {
                let Some(id) = self.send_queue.pop_front() else {
                    break;
                };
                if let Some(home) = self.home.get_mut(&id) {
                    home.queued = false;
                }
                self.step(id);
                // A caller took the worker first: the entry keeps its place at the front.
                if self.home.get(&id).is_some_and(|home| home.queued)
                    && self.send_queue.back() == Some(&id)
                {
                    self.send_queue.pop_back();
                    self.send_queue.push_front(id);
                    break;
                }
            }
            self.free.publish_waiting(self.send_queue.len());
            // A worker freed between the last look and the publishing is seen here.
            if self.send_queue.is_empty() || !self.free.any() {
                return;
            }
        }
    }

    /// Moves an entry on as far as it goes without waiting: its events out, its outcome
    /// delivered, its next transmit to a worker, or its next timer on the heap.
    fn step(&mut self, id: u64) {
        self.learn_job(id);
        let now = self.time.now();
        let Some(home) = self.home.get_mut(&id) else {
            return;
        };
        let step = advance(
            home,
            now,
            &self.free,
            &mut self.send_queue,
            &mut self.timers,
        );
        match step {
            Step::Stays => {}
            Step::Sends(transmit) => {
                let Some(home) = self.home.remove(&id) else {
                    return;
                };
                self.away.insert(id, Vec::new());
                // Workers live as long as the scheduler's sender to them.
                let _ = self.workers.send(Work::Send {
                    entry: home.entry,
                    transmit,
                });
            }
            Step::Finishes(completion) => self.finish(id, completion),
        }
    }

    /// Removes a finished entry and runs its completion on a worker (placing a download or a
    /// caller's callback must not hold up the other machines).
    fn finish(&mut self, id: u64, completion: Completion) {
        self.home.remove(&id);
        self.forget_job(id);
        let _ = self.workers.send(Work::Finish(completion));
    }

    /// Ends every machine the scheduler holds: the engine is being dropped. An entry on a
    /// worker ends there when it cannot come back.
    fn stop(mut self) {
        let ids: Vec<u64> = self.home.keys().copied().collect();
        for id in ids {
            if let Some(home) = self.home.get_mut(&id)
                && let Some(completion) = home.entry.abort(client_dropped())
            {
                self.finish(id, completion);
            }
        }
    }
}

/// See [`Scheduler::step`].
fn advance(
    home: &mut Home,
    now: Timestamp,
    free: &FreeWorkers,
    queue: &mut VecDeque<u64>,
    timers: &mut BinaryHeap<Reverse<(Timestamp, u64)>>,
) -> Step {
    let id = home.entry.id;
    loop {
        if let Some(completion) = home.entry.settle() {
            return Step::Finishes(completion);
        }
        if home.entry.notice_cancel() {
            continue;
        }
        if !free.take() {
            // Only a machine with nothing to wait for wants a worker; it asks for its
            // transmit once one is free.
            match home.entry.task.machine().poll_timeout() {
                Some(at) if at > now => set_timer(home, id, at, timers),
                _ if home.queued => {}
                _ => {
                    home.queued = true;
                    queue.push_back(id);
                }
            }
            return Step::Stays;
        }
        if let Some(transmit) = home.entry.task.machine().poll_transmit(now) {
            return Step::Sends(transmit);
        }
        free.give_back();
        // Asking for a transmit can decide the outcome (no send fits the deadline).
        if let Some(completion) = home.entry.settle() {
            return Step::Finishes(completion);
        }
        return match home.entry.task.machine().poll_timeout() {
            Some(at) => {
                set_timer(home, id, at, timers);
                Step::Stays
            }
            None => match home.entry.abort(stalled()) {
                Some(completion) => Step::Finishes(completion),
                None => Step::Stays,
            },
        };
    }
}

fn set_timer(
    home: &mut Home,
    id: u64,
    at: Timestamp,
    timers: &mut BinaryHeap<Reverse<(Timestamp, u64)>>,
) {
    if home.timer != Some(at) {
        home.timer = Some(at);
        timers.push(Reverse((at, id)));
    }
}
