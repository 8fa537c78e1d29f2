//! The runner's decisions as plain data: what an item needs next, how many jobs may be in
//! flight, and whether a job fits the budget. No I/O here, so every rule of a resume is in one
//! place and tested without a server; the runner only carries the decisions out.

use std::borrow::Borrow;

use removebgvideo_ledger::{Item, ItemPhase};

/// What the caller allowed, and what is known about the server.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Policy {
    /// A budget is set: jobs are created as drafts, estimated from their duration, and started
    /// only when their estimate fits.
    pub budgeted: bool,
    /// How many times a failed job may be started again (`--restart-failed N`).
    pub restart_failed: u32,
    /// Whether the server is known to honour idempotency keys (so an unanswered create may
    /// be sent again with the same key), known not to, or not known yet.
    pub keys_honoured: Option<bool>,
    /// Create an `unknown` item again, as a new generation (opt-in: it may make a second job).
    pub recreate_unknown: bool,
}

/// The next step of an item.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Next {
    /// Upload its file (a file item not uploaded yet).
    Upload,
    /// Record the intent and send the create (again, with the same key, on a resume).
    Create,
    /// The create's outcome is unknown and sending it again could make a second job: park the
    /// item as `unknown`.
    Park,
    /// The create's outcome is unknown and whether the server honours keys is not known yet:
    /// wait until an answer of this run tells (then send it again, or park it).
    Hold,
    /// Read the draft job for its duration, to estimate its credits.
    Inspect,
    /// Reserve its estimate and start the draft (again, with the same key, on a resume).
    Start,
    /// Poll the job until it ends.
    Wait,
    /// Fetch the output (or record it, when it was put in place before a crash).
    Download,
    /// Check the recorded output is still there, whole.
    Verify,
    /// Start the failed job again, as a new generation.
    Restart,
    /// Nothing: the item is final.
    Leave,
}

impl Next {
    /// Whether this step begins new work (counted against the in-flight ceiling, refused once
    /// the run is stopping), rather than carrying on a job that exists.
    pub fn is_new_work(self) -> bool {
        matches!(self, Next::Upload | Next::Create)
    }
}

/// The next step of `item` under `policy`.
pub fn next_step(item: &Item, policy: &Policy) -> Next {
    match item.phase {
        ItemPhase::Planned => {
            if item.input.file_path.is_some() && item.uploaded_video_url.is_none() {
                Next::Upload
            } else {
                Next::Create
            }
        }
        ItemPhase::Creating => match policy.keys_honoured {
            Some(true) => Next::Create,
            Some(false) => Next::Park,
            None => Next::Hold,
        },
        ItemPhase::Unknown if policy.recreate_unknown => Next::Create,
        ItemPhase::Unknown => Next::Leave,
        ItemPhase::Created if is_draft(item) => {
            if item.credits_reserved.is_some() || !policy.budgeted {
                Next::Start
            } else {
                Next::Inspect
            }
        }
        // A restart's intent leaves the item running with the failed run's status until the
        // start is answered: a resume sends that start again (same key) instead of reading
        // the old failure as the new run's.
        ItemPhase::Running if restart_unanswered(item) => Next::Start,
        ItemPhase::Created | ItemPhase::Running => Next::Wait,
        ItemPhase::Downloading => Next::Download,
        ItemPhase::Done if item.output_path.is_some() => Next::Verify,
        ItemPhase::Done => Next::Leave,
        ItemPhase::Failed if item.generation < policy.restart_failed => Next::Restart,
        ItemPhase::Failed | ItemPhase::Error => Next::Leave,
    }
}

/// A restart whose start was not answered: running, with the failed run's status (a status
/// change to `failed` moves an item to `failed` with it, so only a restart's intent leaves it
/// so).
pub fn restart_unanswered(item: &Item) -> bool {
    item.phase == ItemPhase::Running && item.job_status.as_deref() == Some("failed")
}

/// A draft: created, never started.
pub fn is_draft(item: &Item) -> bool {
    item.job_status.as_deref() == Some("created")
}

/// How many items may have work under way at once: the caller's ceiling, halved on every
/// 429 and grown back by one for every window of successes (additive increase, multiplicative
/// decrease: a tight rate gate gets fewer requests, not more retries).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ceiling {
    max: usize,
    current: usize,
    successes: usize,
}

impl Ceiling {
    /// A ceiling of `max` (at least 1).
    pub fn new(max: usize) -> Ceiling {
        let max = max.max(1);
        Ceiling {
            max,
            current: max,
            successes: 0,
        }
    }

    /// Items that may be in flight now.
    pub fn current(&self) -> usize {
        self.current
    }

    /// The server said 429.
    pub fn rate_limited(&mut self) {
        self.current = (self.current / 2).max(1);
        self.successes = 0;
    }

    /// A request of new work succeeded.
    pub fn succeeded(&mut self) {
        self.successes += 1;
        if self.successes >= self.current {
            self.current = (self.current + 1).min(self.max);
            self.successes = 0;
        }
    }
}

/// The credit budget: what is committed (reserved for jobs under way, charged for jobs done)
/// against the limit.
#[derive(Clone, Debug, PartialEq)]
pub struct Budget {
    limit: Option<f64>,
    committed: f64,
}

impl Budget {
    /// A budget of `limit` credits (none: no limit) with what the ledger already commits.
    pub fn new(limit: Option<f64>, items: &[impl Borrow<Item>]) -> Budget {
        Budget {
            limit,
            committed: items
                .iter()
                .map(|item| item.borrow().credits_committed())
                .sum(),
        }
    }

    /// Credits committed.
    pub fn committed(&self) -> f64 {
        self.committed
    }

    /// The limit, if any.
    pub fn limit(&self) -> Option<f64> {
        self.limit
    }

    /// Reserves `estimate` when it fits; a job whose estimate would pass the limit is never
    /// started.
    pub fn reserve(&mut self, estimate: f64) -> bool {
        if self
            .limit
            .is_some_and(|limit| self.committed + estimate > limit + 1e-9)
        {
            return false;
        }
        self.committed += estimate;
        true
    }

    /// Counts a reservation the ledger made (it checked the limit).
    pub fn count(&mut self, estimate: f64) {
        self.committed += estimate;
    }

    /// What the ledger says the batch's other items commit (a shared ledger, where other
    /// workers reserve too): the figure this run reports from now on.
    pub fn saw_committed(&mut self, committed: f64) {
        self.committed = committed;
    }

    /// Settles a reservation with the job's charge (a refund charges 0).
    pub fn settle(&mut self, reserved: f64, charged: f64) {
        self.committed += charged - reserved;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use removebgvideo_ledger::ItemInput;
    use serde_json::json;

    fn item(phase: ItemPhase) -> Item {
        Item {
            id: 0,
            revision: 0,
            key: "k".into(),
            line: Some(2),
            input: ItemInput {
                video_url: Some("https://example.com/a.mp4".into()),
                ..ItemInput::default()
            },
            context: json!({}),
            phase,
            generation: 0,
            idempotency_key: None,
            uploaded_video_url: None,
            job_id: None,
            job_status: None,
            credits_estimated: None,
            credits_reserved: None,
            credits_charged: None,
            output_path: None,
            output_size: None,
            output_sha256: None,
            last_error_code: None,
            last_error_message: None,
            last_error_request_id: None,
            updated_at: 0,
        }
    }

    const CAUTIOUS: Policy = Policy {
        budgeted: false,
        restart_failed: 0,
        keys_honoured: Some(false),
        recreate_unknown: false,
    };

    #[test]
    fn an_unanswered_create_is_sent_again_only_to_a_server_that_honours_keys() {
        let creating = item(ItemPhase::Creating);
        assert_eq!(next_step(&creating, &CAUTIOUS), Next::Park);
        let not_known = Policy {
            keys_honoured: None,
            ..CAUTIOUS
        };
        assert_eq!(next_step(&creating, &not_known), Next::Hold);
        let honoured = Policy {
            keys_honoured: Some(true),
            ..CAUTIOUS
        };
        assert_eq!(next_step(&creating, &honoured), Next::Create);
        let unknown = item(ItemPhase::Unknown);
        assert_eq!(next_step(&unknown, &honoured), Next::Leave);
        let opted_in = Policy {
            recreate_unknown: true,
            ..CAUTIOUS
        };
        assert_eq!(next_step(&unknown, &opted_in), Next::Create);
    }

    #[test]
    fn a_file_item_is_uploaded_once() {
        let mut planned = item(ItemPhase::Planned);
        planned.input.video_url = None;
        planned.input.file_path = Some("a.mp4".into());
        assert_eq!(next_step(&planned, &CAUTIOUS), Next::Upload);
        planned.uploaded_video_url = Some("https://uploads/a.mp4".into());
        assert_eq!(next_step(&planned, &CAUTIOUS), Next::Create);
    }

    #[test]
    fn a_budgeted_draft_is_estimated_then_started_and_a_started_job_is_watched() {
        let budgeted = Policy {
            budgeted: true,
            ..CAUTIOUS
        };
        let mut draft = item(ItemPhase::Created);
        draft.job_status = Some("created".into());
        assert_eq!(next_step(&draft, &budgeted), Next::Inspect);
        draft.credits_reserved = Some(60.0);
        assert_eq!(next_step(&draft, &budgeted), Next::Start);
        let mut started = item(ItemPhase::Created);
        started.job_status = Some("pending".into());
        assert_eq!(next_step(&started, &budgeted), Next::Wait);
        assert_eq!(next_step(&item(ItemPhase::Running), &budgeted), Next::Wait);
        let mut restarting = item(ItemPhase::Running);
        restarting.job_status = Some("failed".into());
        assert_eq!(next_step(&restarting, &budgeted), Next::Start);
    }

    #[test]
    fn a_failed_job_is_restarted_up_to_n_times() {
        let allowed = Policy {
            restart_failed: 2,
            ..CAUTIOUS
        };
        let mut failed = item(ItemPhase::Failed);
        assert_eq!(next_step(&failed, &CAUTIOUS), Next::Leave);
        assert_eq!(next_step(&failed, &allowed), Next::Restart);
        failed.generation = 2;
        assert_eq!(next_step(&failed, &allowed), Next::Leave);
    }

    #[test]
    fn a_done_item_with_an_output_is_verified() {
        let mut done = item(ItemPhase::Done);
        assert_eq!(next_step(&done, &CAUTIOUS), Next::Leave);
        done.output_path = Some("out/k.webm".into());
        assert_eq!(next_step(&done, &CAUTIOUS), Next::Verify);
    }

    #[test]
    fn the_ceiling_halves_on_a_429_and_grows_back_one_by_one() {
        let mut ceiling = Ceiling::new(16);
        ceiling.rate_limited();
        ceiling.rate_limited();
        assert_eq!(ceiling.current(), 4);
        for _ in 0..4 {
            ceiling.succeeded();
        }
        assert_eq!(ceiling.current(), 5);
        for _ in 0..1000 {
            ceiling.succeeded();
        }
        assert_eq!(ceiling.current(), 16);
        let mut one = Ceiling::new(0);
        one.rate_limited();
        assert_eq!(one.current(), 1);
    }

    #[test]
    fn the_budget_refuses_an_estimate_that_would_pass_it_and_settles_charges() {
        let mut reserved = item(ItemPhase::Running);
        reserved.credits_reserved = Some(60.0);
        let mut charged = item(ItemPhase::Done);
        charged.credits_reserved = Some(60.0);
        charged.credits_charged = Some(45.0);
        let mut budget = Budget::new(Some(200.0), &[reserved, charged]);
        assert_eq!(budget.committed(), 105.0);
        assert!(budget.reserve(90.0));
        assert!(!budget.reserve(10.0), "195 + 10 passes 200");
        budget.settle(90.0, 0.0); // refunded
        assert!(budget.reserve(10.0));
        assert_eq!(budget.committed(), 115.0);
        assert!(Budget::new(None, &[] as &[Item]).reserve(1e12));
    }
}
