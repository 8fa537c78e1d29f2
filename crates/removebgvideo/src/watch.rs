//! `watch`: waits for many jobs at once on the client's engine, yielding each result as its
//! job finishes.

use std::sync::mpsc::{self, Receiver};

use removebgvideo_core::{Error, Job};

use crate::cancel::CancelToken;
use crate::client::Client;
use crate::options::WaitOptions;

/// The jobs a [`Client::watch`] waits for. Iterating blocks until the next job ends and yields
/// its id with the outcome `wait` would have had; it ends once every job has.
#[derive(Debug)]
pub struct JobSet {
    results: Receiver<(String, Result<Job, Error>)>,
    pending: usize,
    cancel: CancelToken,
}

impl JobSet {
    /// Jobs not yet yielded.
    pub fn pending(&self) -> usize {
        self.pending
    }

    /// Stops every wait still under way: each ends as `cancelled`.
    pub fn cancel(&self) {
        self.cancel.cancel();
    }
}

impl Iterator for JobSet {
    type Item = (String, Result<Job, Error>);

    fn next(&mut self) -> Option<Self::Item> {
        if self.pending == 0 {
            return None;
        }
        let next = self.results.recv().ok()?;
        self.pending -= 1;
        Some(next)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.pending, Some(self.pending))
    }
}

impl Client {
    /// Waits for every job of `job_ids` at once, on the engine (no thread per job), each with
    /// `options`; results come as jobs finish. Dropping the set cancels nothing: use
    /// [`JobSet::cancel`] (or the options' own token) for that.
    pub fn watch<I, S>(&self, job_ids: I, options: &WaitOptions) -> JobSet
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let (sender, results) = mpsc::channel();
        let mut options = options.clone();
        let cancel = options
            .call
            .cancel
            .get_or_insert_with(CancelToken::new)
            .clone();
        let mut pending = 0;
        for job_id in job_ids {
            let job_id: String = job_id.into();
            let sender = sender.clone();
            let id = job_id.clone();
            pending += 1;
            self.submit_wait(
                &job_id,
                &options,
                Box::new(move |outcome| {
                    // A set that was dropped no longer wants its results.
                    let _ = sender.send((id, outcome));
                }),
            );
        }
        JobSet {
            results,
            pending,
            cancel,
        }
    }
}
