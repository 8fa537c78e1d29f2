//! `wait`: polls a job on the core's schedule until it completes, fails or the deadline passes.

use removebgvideo_core::poll::{PollStep, Poller};
use removebgvideo_core::retry::retry_after;
use removebgvideo_core::state::Verdict;
use removebgvideo_core::{Error, ErrorCode, Event, Job, Timestamp};

use crate::client::{Client, Payload};
use crate::clock::ThreadRandom;
use crate::options::{CallOptions, WaitLimit, WaitOptions};

impl Client {
    /// The deadline a limit gives, from now.
    pub(crate) fn deadline(&self, limit: WaitLimit) -> Option<Timestamp> {
        match limit {
            WaitLimit::Default => Some(self.inner.clock.after(self.inner.settings.wait_timeout)),
            WaitLimit::After(duration) => Some(self.inner.clock.after(duration)),
            WaitLimit::Unbounded => None,
        }
    }

    /// Waits for a job to finish. Completed returns the job; failed is a `job_failed` error
    /// carrying the job; the deadline is a `wait_timeout` error carrying the last job seen.
    /// Transient errors while polling do not end the wait. Cancel through `options.call.cancel`.
    pub fn wait(&self, job_id: &str, options: &WaitOptions) -> Result<Job, Error> {
        let deadline = self.deadline(options.limit);
        self.wait_until(job_id, deadline, options.poll.clone(), &options.call)
    }

    pub(crate) fn wait_until(
        &self,
        job_id: &str,
        deadline: Option<Timestamp>,
        poll: Option<removebgvideo_core::PollPolicy>,
        call: &CallOptions,
    ) -> Result<Job, Error> {
        let request = self.builder_ref().get_job(job_id)?;
        let policy = poll.unwrap_or_else(|| self.inner.settings.poll.clone());
        policy.check()?;
        let mut poller = Poller::new(policy, deadline);
        let mut last_progress = None;
        loop {
            if call.cancelled() {
                return Err(Error::new(
                    ErrorCode::Cancelled,
                    format!("the wait for job {job_id} was cancelled"),
                ));
            }
            let step = match self.execute::<Job>(&request, Payload::Json, call, deadline) {
                Ok((job, headers)) => {
                    let hint = retry_after(&headers, self.now());
                    let (status, progress, request_id) =
                        (job.status.clone(), job.progress, job.request_id.clone());
                    let before = poller.tracker().current().cloned();
                    let observed = poller.on_job(job, self.now(), hint, &mut ThreadRandom);
                    if observed.verdict != Verdict::Unchanged {
                        if observed.verdict == Verdict::Illegal
                            || observed.verdict == Verdict::Unjudged
                        {
                            tracing::warn!(target: "removebgvideo", job_id, "job went from {before:?} to {status}: {:?}", observed.verdict);
                        }
                        call.emit(Event::StatusChanged {
                            job_id: job_id.to_owned(),
                            from: before,
                            to: status,
                            verdict: observed.verdict,
                            request_id,
                        });
                    }
                    if let Some(progress) = progress.filter(|p| Some(*p) != last_progress) {
                        last_progress = Some(progress);
                        call.emit(Event::Progress {
                            job_id: job_id.to_owned(),
                            progress,
                        });
                    }
                    observed.step
                }
                Err(error) if error.code == ErrorCode::Cancelled => return Err(error),
                Err(error) => poller.on_error(error, self.now(), &mut ThreadRandom)?,
            };
            match step {
                PollStep::PollAt(at) => {
                    let pause = at.since(self.now());
                    let cancelled = match &call.cancel {
                        Some(cancel) => cancel.sleep(pause),
                        None => {
                            std::thread::sleep(pause);
                            false
                        }
                    };
                    if cancelled {
                        return Err(Error::new(
                            ErrorCode::Cancelled,
                            format!("the wait for job {job_id} was cancelled"),
                        ));
                    }
                }
                PollStep::Completed(job) => return Ok(job),
                PollStep::Failed(job) => {
                    let reason = job
                        .error
                        .clone()
                        .unwrap_or_else(|| "no reason given".into());
                    let request_id = job.request_id.clone();
                    return Err(Error::new(
                        ErrorCode::JobFailed,
                        format!("job {job_id} failed: {reason}"),
                    )
                    .with_request_id(request_id)
                    .with_job(job));
                }
                PollStep::DeadlineReached(job) => {
                    let seen = job
                        .as_ref()
                        .map(|j| j.status.to_string())
                        .unwrap_or_else(|| "never seen".into());
                    let mut error = Error::new(
                        ErrorCode::WaitTimeout,
                        format!(
                            "job {job_id} did not finish before the deadline (last status: {seen})"
                        ),
                    );
                    if let Some(job) = job {
                        error = error.with_request_id(job.request_id.clone()).with_job(job);
                    }
                    return Err(error);
                }
            }
        }
    }
}
