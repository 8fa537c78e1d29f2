//! Polling decisions: when to look at a job next, and when the wait is over.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::eta::{ProgressProjection, Projection};
use crate::job::{Job, Phase};
use crate::random::Random;
use crate::retry::millis;
use crate::state::{JobTracker, Verdict};
use crate::timestamp::Timestamp;

/// The polling schedule. Defaults from PEERS.md: 1 s, x1.5, cap 10 s, +-20 % jitter, never
/// faster than 0.5 s, server hints honoured up to 60 s. Once the job's progress projects a
/// completion time, polls aim just after it instead (at most 30 s apart). On linearly
/// progressing jobs that takes the fewest polls of the policies in docs/benchmarks.md, with a
/// mean lag below a fixed 2 s interval's; a failure is seen up to 30 s late.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
// Absent fields take the defaults, so bindings can pass only what the caller changed; a
// misspelt one is an error rather than silently a default.
#[serde(default, deny_unknown_fields)]
pub struct PollPolicy {
    /// The first interval.
    #[serde(with = "millis")]
    pub initial_interval: Duration,
    /// Growth factor per poll.
    pub factor: f64,
    /// The longest interval.
    #[serde(with = "millis")]
    pub max_interval: Duration,
    /// Jitter, as a fraction either way (0.2 = +-20 %).
    pub jitter: f64,
    /// The shortest interval, whatever jitter or a hint say.
    #[serde(with = "millis")]
    pub min_interval: Duration,
    /// The longest server hint honoured (a longer one is cut to this).
    #[serde(with = "millis")]
    pub max_hint: Duration,
    /// Aim polls at the completion time the job's progress projects; the growing interval
    /// above is used until two reads show progress, whenever the last two reads show the
    /// same progress, and after errors.
    pub progress_eta: bool,
    /// The longest wait towards a projected completion, so a job that stalls, fails or
    /// slows down is seen within this time.
    #[serde(with = "millis")]
    pub max_eta_interval: Duration,
    /// How long after the projected completion the poll lands.
    #[serde(with = "millis")]
    pub eta_margin: Duration,
}

impl Default for PollPolicy {
    fn default() -> Self {
        PollPolicy {
            initial_interval: Duration::from_secs(1),
            factor: 1.5,
            max_interval: Duration::from_secs(10),
            jitter: 0.2,
            min_interval: Duration::from_millis(500),
            max_hint: Duration::from_secs(60),
            progress_eta: true,
            max_eta_interval: Duration::from_secs(30),
            eta_margin: Duration::from_millis(100),
        }
    }
}

impl PollPolicy {
    /// Every problem of the policy: `factor` in [1, 10], `jitter` in [0, 0.9], the first
    /// interval not above the longest. (`min_interval` wins over `max_eta_interval`, as over
    /// hints, so no combination of the two is an error.)
    pub fn check(&self) -> Result<(), Error> {
        use crate::validate::{Checker, into_result};
        let mut c = Checker::default();
        c.range(
            "/poll/factor",
            if self.factor.is_finite() {
                self.factor
            } else {
                -1.0
            },
            1.0,
            10.0,
        );
        c.range(
            "/poll/jitter",
            if self.jitter.is_finite() {
                self.jitter
            } else {
                -1.0
            },
            0.0,
            0.9,
        );
        if self.initial_interval > self.max_interval {
            c.error(
                "/poll/initial_interval",
                crate::validate::ProblemCode::OutOfRange,
                "must not be longer than max_interval",
            );
        }
        into_result(c.finish()).map(|_| ())
    }
}

/// `duration * factor`, capped at `cap`, never panicking on overflow or odd floats.
fn scale(duration: Duration, factor: f64, cap: Duration) -> Duration {
    Duration::try_from_secs_f64(duration.as_secs_f64() * factor.max(0.0))
        .unwrap_or(cap)
        .min(cap)
}

/// How sure a projection must be for a poll to aim just past it. Looser, and the wait
/// checks in earlier: in the benchmark's workload (docs/benchmarks.md) 1 s costs 0.3 polls
/// per job over aiming at every projection, and halves the mean detection lag.
const PROJECTION_TOLERANCE: Duration = Duration::from_secs(1);

/// Default deadline of a wait: 30 minutes.
pub const DEFAULT_WAIT_TIMEOUT: Duration = Duration::from_secs(30 * 60);

/// What the wait does next.
#[derive(Clone, Debug, PartialEq)]
pub enum PollStep {
    /// Poll again at this time.
    PollAt(Timestamp),
    /// The job completed.
    Completed(Job),
    /// The job failed: the caller raises `job_failed` with it.
    Failed(Job),
    /// The deadline passed: the caller raises `wait_timeout` with the last job seen.
    DeadlineReached(Option<Job>),
}

/// What one observation changed, for progress events.
#[derive(Clone, Debug, PartialEq)]
pub struct Observed {
    /// The verdict of the status seen.
    pub verdict: Verdict,
    /// What to do next.
    pub step: PollStep,
}

/// Drives one wait: feed it each job seen (or each error), it says when to poll next.
#[derive(Clone, Debug)]
pub struct Poller {
    policy: PollPolicy,
    deadline: Option<Timestamp>,
    interval: Duration,
    tracker: JobTracker,
    projection: ProgressProjection,
    last_job: Option<Job>,
    polls: u32,
}

impl Poller {
    /// A wait that must end by `deadline` (`None` only when the caller asked for no limit).
    pub fn new(policy: PollPolicy, deadline: Option<Timestamp>) -> Self {
        let interval = policy.initial_interval;
        Poller {
            policy,
            deadline,
            interval,
            tracker: JobTracker::new(),
            projection: ProgressProjection::new(),
            last_job: None,
            polls: 0,
        }
    }

    /// The policy it polls by.
    pub fn policy(&self) -> &PollPolicy {
        &self.policy
    }

    /// The deadline.
    pub fn deadline(&self) -> Option<Timestamp> {
        self.deadline
    }

    /// Observations so far.
    pub fn polls(&self) -> u32 {
        self.polls
    }

    /// The transitions seen so far.
    pub fn tracker(&self) -> &JobTracker {
        &self.tracker
    }

    /// The last job seen.
    pub fn last_job(&self) -> Option<&Job> {
        self.last_job.as_ref()
    }

    /// A job was read at `now`; `hint` is the response's Retry-After, when it had one.
    pub fn on_job(
        &mut self,
        job: Job,
        now: Timestamp,
        hint: Option<Duration>,
        random: &mut dyn Random,
    ) -> Observed {
        self.polls += 1;
        let verdict =
            self.tracker
                .observe(&job.status, job.progress, now, job.request_id.as_deref());
        self.projection
            .observe(now, job.status.phase(), job.progress);
        self.last_job = Some(job.clone());
        // Judge by the tracker, not the raw read: an illegal read (completed -> processing
        // from a stale replica) must not restart the wait.
        let phase = self.tracker.current().map(|s| s.phase());
        let step = match phase {
            Some(Phase::Completed) if job.status.phase() == Phase::Completed => {
                PollStep::Completed(job)
            }
            Some(Phase::Failed) if job.status.phase() == Phase::Failed => PollStep::Failed(job),
            _ => {
                let aim = self
                    .expected_completion()
                    .map(|projection| (projection, now));
                let delay = self.next_delay(hint, aim, random);
                self.schedule(now, delay)
            }
        };
        Observed { verdict, step }
    }

    /// The pause a read that saw nothing new would have set, taken without the read: the
    /// growing interval advances as if it had been made. A hybrid wait skips the reads a
    /// wait alone makes while the job is still queued this way, and its schedule from its
    /// first read on is the one a wait alone would follow.
    pub fn skip_read(&mut self, random: &mut dyn Random) -> Duration {
        self.next_delay(None, None, random)
    }

    /// A poll failed at `now`. Transient errors (rate limits, server and connection errors)
    /// do not end the wait; any other error does and is returned.
    pub fn on_error(
        &mut self,
        error: Error,
        now: Timestamp,
        random: &mut dyn Random,
    ) -> Result<PollStep, Error> {
        if !error.is_transient() {
            return Err(error);
        }
        // An error says nothing about the job's progress: back off on the growing interval
        // (a projection already passed would otherwise retry every min_interval).
        let delay = self.next_delay(error.retry_after, None, random);
        Ok(self.schedule(now, delay))
    }

    /// The projected completion, if the policy follows progress.
    pub fn expected_completion(&self) -> Option<Projection> {
        self.policy
            .progress_eta
            .then(|| self.projection.expected_completion())
            .flatten()
    }

    /// The wait before the next poll: the server's hint when it sent one; else towards the
    /// projected completion `aim` (seen at the given time); else the growing interval. A
    /// projection known to within `PROJECTION_TOLERANCE` is aimed just past; a vaguer one gets
    /// a checkpoint at the early side of its range, whose reading sharpens it. Only capped
    /// waits are jittered: an aimed poll follows its own job's projection, so clients spread
    /// as their jobs do, and jitter there would only add lag.
    fn next_delay(
        &mut self,
        hint: Option<Duration>,
        aim: Option<(Projection, Timestamp)>,
        random: &mut dyn Random,
    ) -> Duration {
        let policy = &self.policy;
        let delay = match (hint, aim) {
            (Some(hint), _) => hint.min(policy.max_hint),
            (None, Some((projection, now))) => {
                let aimed = if projection.uncertainty <= PROJECTION_TOLERANCE {
                    projection
                        .expected
                        .since(now)
                        .saturating_add(policy.eta_margin)
                } else {
                    projection
                        .expected
                        .since(now)
                        .saturating_sub(projection.uncertainty / 2)
                };
                if aimed > policy.max_eta_interval {
                    policy
                        .max_eta_interval
                        .mul_f64(1.0 - policy.jitter * random.unit())
                } else {
                    aimed
                }
            }
            (None, None) => {
                let spread = policy.jitter * (2.0 * random.unit() - 1.0);
                let jittered = scale(
                    self.interval,
                    1.0 + spread,
                    policy.max_interval.saturating_mul(2),
                );
                self.interval = scale(self.interval, policy.factor, policy.max_interval);
                jittered
            }
        };
        delay.max(policy.min_interval)
    }

    /// The next poll at `now + delay`, except that the deadline is never passed: if the delay
    /// would cross it, the last poll happens at the deadline itself.
    fn schedule(&self, now: Timestamp, delay: Duration) -> PollStep {
        match self.deadline {
            Some(deadline) if now >= deadline => PollStep::DeadlineReached(self.last_job.clone()),
            Some(deadline) => PollStep::PollAt(now.plus(delay).min(deadline)),
            None => PollStep::PollAt(now.plus(delay)),
        }
    }
}
