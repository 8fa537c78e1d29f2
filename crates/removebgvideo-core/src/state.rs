//! The job state machine: judges each observed status against the documented lifecycle and
//! keeps an audit log of transitions.

use serde::{Deserialize, Serialize};

use crate::job::{JobStatus, Phase};
use crate::timestamp::Timestamp;

/// What an observed status change means.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// The first status seen.
    Initial,
    /// The same status as before.
    Unchanged,
    /// A forward move (phases may be skipped between polls: created -> completed is fine).
    Advanced,
    /// A failed job is processing or completed again: it was restarted.
    Restarted,
    /// A move the lifecycle forbids (backwards, or out of completed). Reported, not accepted:
    /// the tracker keeps the earlier status, because a stale replica must not undo progress.
    Illegal,
    /// A status this version does not know is involved; accepted as non-terminal.
    Unjudged,
}

/// Judges the move `from` -> `to` by the lifecycle in API.md:
/// created/pending -> processing -> completed | failed, failed -> processing (restart).
pub fn judge(from: Option<&JobStatus>, to: &JobStatus) -> Verdict {
    let Some(from) = from else {
        return Verdict::Initial;
    };
    if from == to {
        return Verdict::Unchanged;
    }
    match (from.phase(), to.phase()) {
        (Phase::Completed, _) => Verdict::Illegal,
        (Phase::Unknown, _) | (_, Phase::Unknown) => Verdict::Unjudged,
        (Phase::Failed, Phase::Processing | Phase::Completed) => Verdict::Restarted,
        (Phase::Failed, _) => Verdict::Illegal,
        // created <-> pending: two words for the same phase.
        (Phase::Waiting, Phase::Waiting) => Verdict::Advanced,
        (a, b) if b > a => Verdict::Advanced,
        _ => Verdict::Illegal,
    }
}

/// One entry of the audit log.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TransitionRecord {
    /// The status before (none for the first observation).
    pub from: Option<JobStatus>,
    /// The status observed.
    pub to: JobStatus,
    /// Progress observed with it.
    pub progress: Option<f64>,
    /// When it was observed.
    pub at: Timestamp,
    /// The request id of the response that showed it.
    pub request_id: Option<String>,
    /// What the move means.
    pub verdict: Verdict,
}

/// Follows one job through its observed statuses.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct JobTracker {
    current: Option<JobStatus>,
    log: Vec<TransitionRecord>,
}

impl JobTracker {
    /// A tracker that has seen nothing.
    pub fn new() -> Self {
        JobTracker::default()
    }

    /// The last accepted status.
    pub fn current(&self) -> Option<&JobStatus> {
        self.current.as_ref()
    }

    /// Every status change observed, illegal ones included, oldest first.
    pub fn log(&self) -> &[TransitionRecord] {
        &self.log
    }

    /// Records an observation and returns its verdict. Unchanged statuses are not logged.
    pub fn observe(
        &mut self,
        status: &JobStatus,
        progress: Option<f64>,
        at: Timestamp,
        request_id: Option<&str>,
    ) -> Verdict {
        let verdict = judge(self.current.as_ref(), status);
        if verdict == Verdict::Unchanged {
            return verdict;
        }
        self.log.push(TransitionRecord {
            from: self.current.clone(),
            to: status.clone(),
            progress,
            at,
            request_id: request_id.map(str::to_owned),
            verdict,
        });
        if verdict != Verdict::Illegal {
            self.current = Some(status.clone());
        }
        verdict
    }
}
