//! A wait: polls a job on the [`Poller`]'s schedule, each poll a [`CallMachine`], until the job
//! completes, fails or the deadline passes; job updates from elsewhere (a webhook) count as
//! observations too. A wait told that the job's events come by webhook (a hybrid wait) polls
//! only as a fallback once a delivery has come, and confirms a delivery's end with one read.

use std::collections::VecDeque;
use std::time::Duration;

use super::{CallMachine, Shared, Transmit, TransmitBody, TransportError};
use crate::error::{Error, ErrorCode};
use crate::events::Event;
use crate::http::{Headers, HttpRequest};
use crate::job::Job;
use crate::poll::{PollPolicy, PollStep, Poller};
use crate::retry::retry_after;
use crate::state::Verdict;
use crate::timestamp::Timestamp;

/// Drives one wait. Its outcome is the completed job, a `job_failed` error carrying the failed
/// job, a `wait_timeout` error carrying the last job seen, or the error that ended polling
/// (transient errors do not: they only back off).
#[derive(Debug)]
pub struct WaitMachine {
    job_id: String,
    request: HttpRequest,
    shared: Shared,
    max_retries: Option<u32>,
    timeout: Option<Duration>,
    poller: Poller,
    /// The poll under way, if any (boxed: a wait spends most of its life between polls, and
    /// ten thousand of them should not each keep a call machine's room).
    poll: Option<Box<CallMachine<Job>>>,
    /// When the next poll is due once none is under way (`None`: at once).
    next_poll: Option<Timestamp>,
    last_progress: Option<f64>,
    events: VecDeque<Event>,
    outcome: Option<Result<Job, Error>>,
    done: bool,
    /// Cancelled while a poll was out: the wait ends on its answer, whatever it says.
    cancel_requested: bool,
    /// Set for a hybrid wait.
    deliveries: Option<Deliveries>,
}

/// A hybrid wait's state: deliveries are expected, and polls are the fallback.
#[derive(Debug)]
struct Deliveries {
    /// The pause between fallback polls once a delivery came for the job (deliveries can be
    /// lost: the sender may give up, the receiver may be down).
    fallback: Duration,
    /// A delivery came: the job's deliveries reach this wait, so the schedule of polls alone
    /// gives way to the fallback. Until then the wait polls as if alone, so that a receiver
    /// nobody reaches costs nothing but the deliveries' absence.
    seen: bool,
    /// A delivery said the job ended: the wait ends on a read that confirms it (the API's
    /// job object, not one signed earlier), sent at once.
    ended: bool,
    /// That confirming read was sent; if it still saw the job running (a read behind the
    /// event), the next ones follow the schedule of polls alone.
    confirm_sent: bool,
    /// The first read is deferred past the two a wait alone would make while the job is
    /// still queued (at once, and one interval on): the job's first event (`job.started`,
    /// due when it leaves the queue) is likely on its way and would make them needless. The
    /// poller's interval grows as if they had been made, so a wait whose deliveries never
    /// come reads from then on when a wait alone would.
    first_read_set: bool,
}

impl WaitMachine {
    /// A wait for the job `request` reads (a `get_job` request), ending by `deadline` (`None`
    /// only when the caller asked for no limit). `max_retries` and `timeout` apply to each poll.
    pub fn new(
        job_id: &str,
        request: HttpRequest,
        policy: PollPolicy,
        shared: &Shared,
        max_retries: Option<u32>,
        timeout: Option<Duration>,
        deadline: Option<Timestamp>,
    ) -> Result<Self, Error> {
        policy.check()?;
        Ok(WaitMachine {
            job_id: job_id.to_owned(),
            request,
            shared: shared.clone(),
            max_retries,
            timeout,
            poller: Poller::new(policy, deadline),
            poll: None,
            next_poll: None,
            last_progress: None,
            events: VecDeque::new(),
            outcome: None,
            done: false,
            cancel_requested: false,
            deliveries: None,
        })
    }

    /// Makes it a hybrid wait (see the module doc): the job's events also come by webhook,
    /// and once one has, polls are `fallback` apart. A fallback of zero is refused.
    pub fn with_deliveries(mut self, fallback: Duration) -> Result<Self, Error> {
        if fallback.is_zero() {
            return Err(Error::validation(vec![crate::validate::Problem::error(
                "/webhook_fallback",
                crate::validate::ProblemCode::OutOfRange,
                "webhook_fallback must be more than 0 s: it is the pause between polls while deliveries come",
            )]));
        }
        self.deliveries = Some(Deliveries {
            fallback,
            seen: false,
            ended: false,
            confirm_sent: false,
            first_read_set: false,
        });
        Ok(self)
    }

    /// Whether it is a hybrid wait.
    pub fn expects_deliveries(&self) -> bool {
        self.deliveries.is_some()
    }

    /// The job waited for.
    pub fn job_id(&self) -> &str {
        &self.job_id
    }

    /// The job whose updates it takes.
    pub fn updates_for(&self) -> Option<&str> {
        Some(&self.job_id)
    }

    /// The polls that got a job so far.
    pub fn polls(&self) -> u32 {
        self.poller.polls()
    }

    /// The poller (its transitions, its last job).
    pub fn poller(&self) -> &Poller {
        &self.poller
    }

    /// The next poll, when one is due.
    pub fn poll_transmit(&mut self, now: Timestamp) -> Option<Transmit> {
        if self.done {
            return None;
        }
        if let Some(deliveries) = &mut self.deliveries
            && !deliveries.first_read_set
        {
            deliveries.first_read_set = true;
            if self.next_poll.is_none() && !deliveries.seen {
                let skipped = self.shared.with_random(|random| {
                    let first = self.poller.skip_read(random);
                    first + self.poller.skip_read(random)
                });
                let first = now.plus(skipped);
                self.next_poll = Some(match self.poller.deadline() {
                    Some(deadline) => first.min(deadline),
                    None => first,
                });
            }
        }
        if self.poll.is_none() && self.next_poll.is_none_or(|at| now >= at) {
            if let Some(deliveries) = &mut self.deliveries
                && deliveries.ended
            {
                deliveries.confirm_sent = true;
            }
            self.poll = Some(Box::new(CallMachine::new(
                self.request.clone(),
                TransmitBody::Json,
                &self.shared,
                self.max_retries,
                self.timeout,
                self.poller.deadline(),
            )));
        }
        let transmit = self.poll.as_mut()?.poll_transmit(now);
        if transmit.is_none() {
            // The poll may have ended without sending (the rate gate had no slot in time).
            self.after_poll_input(now);
        }
        transmit
    }

    /// When `handle_timeout` is next due: the next poll, or the end of a poll's retry pause.
    pub fn poll_timeout(&self) -> Option<Timestamp> {
        if self.done {
            return None;
        }
        match &self.poll {
            Some(poll) => poll.poll_timeout(),
            // With no next poll set, `poll_transmit` starts one at once.
            None => self.next_poll,
        }
    }

    /// Time passed.
    pub fn handle_timeout(&mut self, now: Timestamp) {
        if let Some(poll) = &mut self.poll {
            poll.handle_timeout(now);
        }
    }

    /// The answer to the poll in flight.
    pub fn handle_response(&mut self, status: u16, headers: Headers, body: &[u8], now: Timestamp) {
        if let Some(poll) = &mut self.poll {
            poll.handle_response(status, headers, body, now);
        }
        self.after_poll_input(now);
    }

    /// The poll in flight got no answer.
    pub fn handle_transport_error(&mut self, failure: TransportError, now: Timestamp) {
        if let Some(poll) = &mut self.poll {
            poll.handle_transport_error(failure, now);
        }
        self.after_poll_input(now);
    }

    /// A job read by someone else (a verified webhook delivery, another poller): it counts as an
    /// observation. A terminal one ends the wait; an answer to a poll still in flight is then
    /// ignored. In a hybrid wait a terminal one is confirmed by a read first, sent at once.
    pub fn handle_job_update(&mut self, job: Job, now: Timestamp) {
        if self.done || job.id != self.job_id {
            return;
        }
        let Some(deliveries) = &mut self.deliveries else {
            return self.observe(job, None, now);
        };
        deliveries.seen = true;
        if !job.status.is_terminal() {
            return self.observe(job, None, now);
        }
        if deliveries.ended {
            // Told again (a redelivery, or both events): the confirming read is under way.
            return;
        }
        deliveries.ended = true;
        if self.poll.is_none() {
            self.next_poll = Some(now);
        }
        // A poll in flight was sent before the delivery came: its answer sets the confirming
        // read at once if it does not see the end itself (see `next_poll_at`).
    }

    /// The caller cancelled.
    pub fn cancel(&mut self) {
        if self.done {
            return;
        }
        self.cancel_requested = true;
        if let Some(poll) = &mut self.poll {
            poll.cancel();
            if !poll.is_done() {
                // The poll in flight ends on its answer, which then ends the wait.
                return;
            }
        }
        self.finish(Err(self.cancelled()));
    }

    /// The next progress event (status changes, progress, retries).
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// The outcome, once decided (given once).
    pub fn poll_outcome(&mut self) -> Option<Result<Job, Error>> {
        self.outcome.take()
    }

    /// Whether the outcome is decided.
    pub fn is_done(&self) -> bool {
        self.done
    }

    fn cancelled(&self) -> Error {
        Error::new(
            ErrorCode::Cancelled,
            format!("the wait for job {} was cancelled", self.job_id),
        )
    }

    fn after_poll_input(&mut self, now: Timestamp) {
        let Some(poll) = &mut self.poll else {
            return;
        };
        while let Some(event) = poll.poll_event() {
            self.events.push_back(event);
        }
        let Some(outcome) = poll.poll_outcome() else {
            return;
        };
        self.poll = None;
        if self.done {
            return;
        }
        if self.cancel_requested {
            // A poll that succeeded after the cancel changes nothing: the caller stopped waiting.
            let error = self.cancelled();
            return self.finish(Err(error));
        }
        match outcome {
            Ok(answer) => {
                let hint = retry_after(&answer.headers, now);
                self.observe(answer.value, hint, now);
            }
            Err(error) if error.code == ErrorCode::Cancelled => {
                let error = self.cancelled();
                self.finish(Err(error));
            }
            Err(error) => {
                let step = self
                    .shared
                    .with_random(|random| self.poller.on_error(error, now, random));
                match step {
                    Ok(step) => self.step(step, now),
                    Err(error) => self.finish(Err(error)),
                }
            }
        }
    }

    /// A job seen at `now`: events for what changed, then the poller's next step.
    fn observe(&mut self, job: Job, hint: Option<Duration>, now: Timestamp) {
        let (status, progress, request_id) =
            (job.status.clone(), job.progress, job.request_id.clone());
        let before = self.poller.tracker().current().cloned();
        let observed = self
            .shared
            .with_random(|random| self.poller.on_job(job, now, hint, random));
        if observed.verdict != Verdict::Unchanged {
            self.events.push_back(Event::StatusChanged {
                job_id: self.job_id.clone(),
                from: before,
                to: status,
                verdict: observed.verdict,
                request_id,
            });
        }
        if let Some(progress) = progress.filter(|p| Some(*p) != self.last_progress) {
            self.last_progress = Some(progress);
            self.events.push_back(Event::Progress {
                job_id: self.job_id.clone(),
                progress,
            });
        }
        self.step(observed.step, now);
    }

    /// When to poll next, given the time the poller's schedule says.
    fn next_poll_at(&self, scheduled: Timestamp, now: Timestamp) -> Timestamp {
        let Some(deliveries) = &self.deliveries else {
            return scheduled;
        };
        if deliveries.ended {
            // The confirming read, once; then the poller's schedule until a read sees the end.
            return if deliveries.confirm_sent {
                scheduled
            } else {
                now
            };
        }
        if !deliveries.seen {
            return scheduled;
        }
        let fallback = now.plus(deliveries.fallback);
        // Never past the deadline: the wait then ends on a read, with the job as it was.
        match self.poller.deadline() {
            Some(deadline) if deadline < fallback => deadline,
            _ => fallback,
        }
    }

    fn step(&mut self, step: PollStep, now: Timestamp) {
        match step {
            PollStep::PollAt(at) => self.next_poll = Some(self.next_poll_at(at, now)),
            PollStep::Completed(job) => self.finish(Ok(job)),
            PollStep::Failed(job) => {
                let reason = job
                    .error
                    .clone()
                    .unwrap_or_else(|| "no reason given".into());
                let error = Error::new(
                    ErrorCode::JobFailed,
                    format!("job {} failed: {reason}", self.job_id),
                )
                .with_request_id(job.request_id.clone())
                .with_job(job);
                self.finish(Err(error));
            }
            PollStep::DeadlineReached(job) => {
                let seen = job
                    .as_ref()
                    .map(|j| j.status.to_string())
                    .unwrap_or_else(|| "never seen".into());
                let mut error = Error::new(
                    ErrorCode::WaitTimeout,
                    format!(
                        "job {} did not finish before the deadline (last status: {seen})",
                        self.job_id
                    ),
                );
                if let Some(job) = job {
                    error = error.with_request_id(job.request_id.clone()).with_job(job);
                }
                self.finish(Err(error));
            }
        }
    }

    fn finish(&mut self, outcome: Result<Job, Error>) {
        self.done = true;
        self.poll = None;
        self.outcome = Some(outcome);
    }
}
