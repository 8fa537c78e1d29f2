//! `wait`: a core [`WaitMachine`] driven on the caller's thread.

use removebgvideo_core::machine::WaitMachine;
use removebgvideo_core::{Error, Job, PollPolicy, Timestamp};

use crate::client::Client;
use crate::options::{CallOptions, WaitLimit, WaitOptions};

impl Client {
    /// The deadline a limit gives, from now.
    pub(crate) fn deadline(&self, limit: WaitLimit) -> Option<Timestamp> {
        let time = &self.inner.time;
        match limit {
            WaitLimit::Default => Some(time.after(self.inner.settings.wait_timeout)),
            WaitLimit::After(duration) => Some(time.after(duration)),
            WaitLimit::Unbounded => None,
        }
    }

    /// Waits for a job to finish. Completed returns the job; failed is a `job_failed` error
    /// carrying the job; the deadline is a `wait_timeout` error carrying the last job seen.
    /// Transient errors while polling do not end the wait. Cancel through `options.call.cancel`.
    pub fn wait(&self, job_id: &str, options: &WaitOptions) -> Result<Job, Error> {
        if self.webhooks().is_some() {
            // Deliveries reach waits through the engine.
            return self.through_engine(|done| self.submit_wait(job_id, options, done));
        }
        let deadline = self.deadline(options.limit);
        let mut machine =
            self.wait_machine(job_id, deadline, options.poll.clone(), &options.call)?;
        self.drive(&mut machine, &options.call, None)
    }

    /// The machine of a wait for `job_id`, polling on `poll` (else the client's schedule).
    pub(crate) fn wait_machine(
        &self,
        job_id: &str,
        deadline: Option<Timestamp>,
        poll: Option<PollPolicy>,
        call: &CallOptions,
    ) -> Result<WaitMachine, Error> {
        let request = self.builder_ref().get_job(job_id)?;
        let policy = poll.unwrap_or_else(|| self.inner.settings.poll.clone());
        let wait = WaitMachine::new(
            job_id,
            request,
            policy,
            &self.inner.shared,
            call.max_retries,
            call.timeout,
            deadline,
        )?;
        match self.webhook_fallback() {
            Some(fallback) => wait.with_deliveries(fallback),
            None => Ok(wait),
        }
    }

    /// Runs an operation through the engine and blocks until it ends.
    pub(crate) fn through_engine<T: Send + 'static>(
        &self,
        submit: impl FnOnce(crate::Callback<T>),
    ) -> Result<T, Error> {
        let (sender, receiver) = std::sync::mpsc::sync_channel(1);
        submit(Box::new(move |outcome| {
            let _ = sender.send(outcome);
        }));
        receiver.recv().unwrap_or_else(|_| {
            Err(Error::new(
                removebgvideo_core::ErrorCode::Cancelled,
                "the client's engine stopped before the call ended",
            ))
        })
    }
}
