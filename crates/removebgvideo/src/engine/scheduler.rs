//! The scheduler: owns every machine of the engine, wakes each at its time from one timer heap,
//! hands its transmits to the workers and feeds their results back. It never blocks on the
//! network; it only waits for the next message or the next timer.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::time::Duration;

use removebgvideo_core::machine::Transmit;
use removebgvideo_core::{Error, ErrorCode, Timestamp};

use super::task::{MachineView, Task};
use super::{Message, Work};
use crate::clock::Time;
use crate::driver::{log_event, stalled};
use crate::options::CallOptions;
use crate::output_file::OutputFile;

/// One machine under way.
struct Entry {
    task: Box<dyn Task>,
    call: CallOptions,
    /// The part file of a download, while no worker holds it.
    output: Option<OutputFile>,
    /// A worker holds its transmit.
    busy: bool,
    /// When it wants `handle_timeout`, as pushed on the heap.
    timer: Option<Timestamp>,
    job_id: Option<String>,
    cancel_seen: bool,
    /// Waiting in the send queue for a free worker.
    queued: bool,
}

pub(crate) struct Scheduler {
    time: Arc<dyn Time>,
    workers: Sender<Work>,
    entries: HashMap<u64, Entry>,
    timers: BinaryHeap<Reverse<(Timestamp, u64)>>,
    /// The entries of each job, for updates from outside.
    by_job: HashMap<String, Vec<u64>>,
    /// Workers not holding a transmit. A machine asks for its transmit only once one is free,
    /// so what passes the rate gate goes out at once: a 429 then holds back everything not
    /// yet sent, instead of a queue of requests already cleared.
    free_workers: usize,
    /// Entries ready to send, in the order they became ready.
    send_queue: VecDeque<u64>,
}

impl Scheduler {
    pub(crate) fn new(time: Arc<dyn Time>, workers: Sender<Work>, count: usize) -> Self {
        Scheduler {
            time,
            workers,
            entries: HashMap::new(),
            timers: BinaryHeap::new(),
            by_job: HashMap::new(),
            free_workers: count,
            send_queue: VecDeque::new(),
        }
    }

    /// Runs until told to stop (or until every sender is gone).
    pub(crate) fn run(mut self, messages: Receiver<Message>) {
        loop {
            self.fire_due_timers();
            let message = match self.next_timer() {
                None => messages.recv().map_err(|_| RecvTimeoutError::Disconnected),
                Some(at) => {
                    let wait = at.since(self.time.now());
                    if self.is_idle_in_virtual_time() {
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
                Ok(message) => {
                    // A bug of ours in one machine must not stop every other call.
                    let handled = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        self.handle(message)
                    }));
                    if handled.is_err() {
                        tracing::error!(target: "removebgvideo", "the engine hit a bug handling a message; please report it");
                    }
                }
                Err(RecvTimeoutError::Timeout) => {}
            }
        }
    }

    fn is_idle_in_virtual_time(&self) -> bool {
        self.time.is_virtual() && self.entries.values().all(|e| !e.busy)
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
            let Some(entry) = self.entries.get_mut(&id) else {
                continue;
            };
            // Stale heap entries (a timer replaced, or a machine busy again) are skipped.
            if entry.timer != Some(at) || entry.busy {
                continue;
            }
            entry.timer = None;
            entry.task.machine().handle_timeout(now);
            self.step(id);
        }
    }

    fn handle(&mut self, message: Message) {
        let now = self.time.now();
        match message {
            Message::Submit {
                id,
                task,
                call,
                output,
                job_id,
            } => {
                if let Some(job) = &job_id {
                    self.by_job.entry(job.clone()).or_default().push(id);
                }
                let entry = Entry {
                    task,
                    call,
                    output,
                    busy: false,
                    timer: None,
                    job_id,
                    cancel_seen: false,
                    queued: false,
                };
                self.entries.insert(id, entry);
                self.step(id);
            }
            Message::Cancel(id) => self.with(id, cancel),
            Message::JobUpdate(job) => {
                let ids = self.by_job.get(&job.id).cloned().unwrap_or_default();
                for id in ids {
                    let job = (*job).clone();
                    self.with(id, |entry| entry.task.machine().handle_job_update(job, now));
                }
            }
            Message::Head {
                id,
                status,
                headers,
                reply,
            } => {
                let plan = self.entries.get_mut(&id).map(|entry| {
                    let machine = entry.task.machine();
                    let plan = machine.handle_head(status, headers, now);
                    (plan, machine.room())
                });
                // No entry (it was cancelled and ended): the worker drops the body.
                let plan = plan.unwrap_or((removebgvideo_core::machine::BodyPlan::Discard, None));
                let _ = reply.send(plan);
                self.emit(id);
            }
            Message::Bytes { id, n } => {
                if let Some(entry) = self.entries.get_mut(&id) {
                    entry.task.machine().handle_body_bytes(n, now);
                }
                self.emit(id);
            }
            Message::Shutdown => {}
            done => self.worker_done(done, now),
        }
    }

    /// A worker is done with a transmit: what it brought goes to its machine.
    fn worker_done(&mut self, message: Message, now: Timestamp) {
        match message {
            Message::Sent { id, sent } => self.answered(id, None, |entry| match sent {
                Err(error) => Err(error),
                Ok(Ok(raw)) => {
                    let machine = entry.task.machine();
                    machine.handle_response(raw.status, raw.headers, &raw.body, now);
                    Ok(())
                }
                Ok(Err(failure)) => {
                    entry.task.machine().handle_transport_error(failure, now);
                    Ok(())
                }
            }),
            Message::BodyEnd { id, end, output } => self.answered(id, output, |entry| {
                let end = end?;
                entry.task.machine().handle_body_end(end, now);
                Ok(())
            }),
            Message::ErrorBody {
                id,
                status,
                headers,
                body,
                output,
            } => self.answered(id, output, |entry| {
                entry
                    .task
                    .machine()
                    .handle_response(status, headers, &body, now);
                Ok(())
            }),
            Message::Discarded { id, output } => self.answered(id, output, |_| Ok(())),
            Message::FetchFailed {
                id,
                failure,
                output,
            } => self.answered(id, output, |entry| {
                entry.task.machine().handle_transport_error(failure, now);
                Ok(())
            }),
            _ => {}
        }
    }

    /// A worker is done with an entry's transmit: the part file comes back, a cancel raised
    /// meanwhile is told first (a POST that may have acted then says so), then the result.
    fn answered(
        &mut self,
        id: u64,
        output: Option<OutputFile>,
        feed: impl FnOnce(&mut Entry) -> Result<(), Error>,
    ) {
        self.free_workers += 1;
        self.answered_entry(id, output, feed);
        self.drain_send_queue();
    }

    /// Hands free workers to the entries waiting for one.
    fn drain_send_queue(&mut self) {
        while self.free_workers > 0 {
            let Some(id) = self.send_queue.pop_front() else {
                return;
            };
            if let Some(entry) = self.entries.get_mut(&id) {
                entry.queued = false;
            }
            self.step(id);
        }
    }

    fn answered_entry(
        &mut self,
        id: u64,
        output: Option<OutputFile>,
        feed: impl FnOnce(&mut Entry) -> Result<(), Error>,
    ) {
        let Some(entry) = self.entries.get_mut(&id) else {
            return;
        };
        entry.busy = false;
        if output.is_some() {
            entry.output = output;
        }
        if entry.call.cancelled() {
            cancel(entry);
        }
        if let Err(error) = feed(entry) {
            let output = entry.output.take();
            if let Some(completion) = entry.task.abort(error, output) {
                self.finish(id, completion);
            }
            return;
        }
        self.step(id);
    }

    fn with(&mut self, id: u64, work: impl FnOnce(&mut Entry)) {
        if let Some(entry) = self.entries.get_mut(&id) {
            work(entry);
            self.step(id);
        }
    }

    fn emit(&mut self, id: u64) {
        if let Some(entry) = self.entries.get_mut(&id) {
            emit(entry.task.machine(), &entry.call);
        }
    }

    /// Moves an entry on as far as it goes without waiting: its events out, its outcome
    /// delivered, its next transmit to a worker, or its next timer on the heap.
    fn step(&mut self, id: u64) {
        let now = self.time.now();
        let Some(entry) = self.entries.get_mut(&id) else {
            return;
        };
        let mut sending = Sending {
            workers: &self.workers,
            free: &mut self.free_workers,
            queue: &mut self.send_queue,
        };
        if let Some(completion) = advance(entry, id, now, &mut sending, &mut self.timers) {
            self.finish(id, completion);
        }
    }

    /// Removes a finished entry and runs its completion on a worker (placing a download or a
    /// caller's callback must not hold up the other machines).
    fn finish(&mut self, id: u64, completion: super::Completion) {
        if let Some(entry) = self.entries.remove(&id)
            && let Some(job) = entry.job_id
            && let Some(ids) = self.by_job.get_mut(&job)
        {
            ids.retain(|other| *other != id);
            if ids.is_empty() {
                self.by_job.remove(&job);
            }
        }
        let _ = self.workers.send(Work::Finish(completion));
    }

    /// Ends every machine still under way: the engine is being dropped.
    fn stop(mut self) {
        let ids: Vec<u64> = self.entries.keys().copied().collect();
        for id in ids {
            if let Some(entry) = self.entries.get_mut(&id) {
                let error = Error::new(
                    ErrorCode::Cancelled,
                    "the client was dropped while this call was under way",
                );
                let output = entry.output.take();
                if let Some(completion) = entry.task.abort(error, output) {
                    self.finish(id, completion);
                }
            }
        }
    }
}

/// The workers' side of the scheduler, for [`advance`].
struct Sending<'a> {
    workers: &'a Sender<Work>,
    free: &'a mut usize,
    queue: &'a mut VecDeque<u64>,
}

/// See [`Scheduler::step`]; returns the completion once the outcome is known.
fn advance(
    entry: &mut Entry,
    id: u64,
    now: Timestamp,
    sending: &mut Sending<'_>,
    timers: &mut BinaryHeap<Reverse<(Timestamp, u64)>>,
) -> Option<super::Completion> {
    loop {
        emit(entry.task.machine(), &entry.call);
        if let Some(completion) = entry.task.completion(&mut entry.output) {
            return Some(completion);
        }
        if entry.busy {
            return None;
        }
        if entry.call.cancelled() && !entry.cancel_seen {
            cancel(entry);
            continue;
        }
        if *sending.free == 0 {
            // Only a machine with nothing to wait for wants a worker; it asks for its
            // transmit once one is free.
            match entry.task.machine().poll_timeout() {
                Some(at) if at > now => set_timer(entry, id, at, timers),
                _ if entry.queued => {}
                _ => {
                    entry.queued = true;
                    sending.queue.push_back(id);
                }
            }
            return None;
        }
        if let Some(transmit) = entry.task.machine().poll_transmit(now) {
            entry.busy = true;
            *sending.free -= 1;
            let output = match transmit {
                Transmit::Fetch { .. } => entry.output.take(),
                Transmit::Api { .. } => None,
            };
            let work = Work::Send {
                id,
                transmit,
                call: entry.call.clone(),
                output,
            };
            // Workers live as long as the scheduler's sender to them.
            let _ = sending.workers.send(work);
            return None;
        }
        // Asking for a transmit can decide the outcome (no send fits the deadline).
        emit(entry.task.machine(), &entry.call);
        if let Some(completion) = entry.task.completion(&mut entry.output) {
            return Some(completion);
        }
        return match entry.task.machine().poll_timeout() {
            Some(at) => {
                set_timer(entry, id, at, timers);
                None
            }
            None => {
                let output = entry.output.take();
                entry.task.abort(stalled(), output)
            }
        };
    }
}

fn set_timer(
    entry: &mut Entry,
    id: u64,
    at: Timestamp,
    timers: &mut BinaryHeap<Reverse<(Timestamp, u64)>>,
) {
    if entry.timer != Some(at) {
        entry.timer = Some(at);
        timers.push(Reverse((at, id)));
    }
}

fn cancel(entry: &mut Entry) {
    entry.cancel_seen = true;
    entry.task.machine().cancel();
}

fn emit(machine: &mut dyn MachineView, call: &CallOptions) {
    while let Some(event) = machine.poll_event() {
        log_event(&event);
        call.emit(event);
    }
}
