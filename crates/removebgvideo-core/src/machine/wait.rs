//! A wait: polls a job on the [`Poller`]'s schedule, each poll a [`CallMachine`], until the job
//! completes, fails or the deadline passes; job updates from elsewhere (a webhook) count as
//! observations too.

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
        })
    }

    /// The job waited for.
    pub fn job_id(&self) -> &str {
        &self.job_id
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
        if self.poll.is_none() && self.next_poll.is_none_or(|at| now >= at) {
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
    /// ignored.
    pub fn handle_job_update(&mut self, job: Job, now: Timestamp) {
        if self.done || job.id != self.job_id {
            return;
        }
        self.observe(job, None, now);
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
                    Ok(step) => self.step(step),
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
        self.step(observed.step);
    }

    fn step(&mut self, step: PollStep) {
        match step {
            PollStep::PollAt(at) => self.next_poll = Some(at),
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
