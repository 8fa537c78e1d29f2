//! The batch runner: carries out each item's next step ([`crate::plan`]) on the client's
//! engine. One coordinating thread owns the ledger: every answer the engine hands back is
//! committed before the runner acts on it, and every intent before its request is sent, so a
//! kill at any moment leaves the ledger saying what a resume must do.

use std::collections::{HashMap, HashSet, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc::{self, Receiver, Sender};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use removebgvideo::core::state::TransitionRecord;
use removebgvideo::{
    CallOptions, CancelToken, Client, DownloadOptions, Error, ErrorKind, Event, Job, JobAccepted,
    JobStatus, StartJobRequest, UploadResult, WaitLimit, WaitOptions,
};
use removebgvideo_core::Timestamp;
use removebgvideo_ledger::{
    Item, ItemPhase, Ledger, LedgerError, Reservation, Step, derive_idempotency_key,
};
use serde::Serialize;
use serde_json::json;

use crate::crash;
use crate::files;
use crate::ledger_cost::{LedgerCost, TimedLedger};
use crate::plan::{Budget, Ceiling, Next, Policy, next_step};
use crate::request::{create_request, estimate};
use crate::shared_gate::SharedGate;

/// How many times the runner itself sends a step again after the client's own retries gave
/// up (an outage longer than the retry policy); then the item waits for the next run.
const RESENDS: u32 = 3;

/// The most answers handled in one group commit.
const GROUP_MOST: usize = 512;

/// How long a group waits for more answers before it commits. Each step, and the requests it
/// leads to, wait up to this long: nothing next to jobs that take seconds. A commit costs
/// about 90 us of CPU whatever it holds (taking the write lock, two writes per WAL frame) and
/// a step about 10 us: at 10 ms a batch of 256 in flight committed every 15 steps and the
/// ledger took 7-9 % of the run's CPU; at 40 ms, every 50 steps and 5.4-8 % (80 ms: 8 % less
/// ledger CPU, and the batch 10 % slower at the bench's 300x clock).
const GROUP_WINDOW: Duration = Duration::from_millis(40);

/// How often progress is reported at most.
const PROGRESS_EVERY: Duration = Duration::from_millis(100);

/// A shared ledger: how long a worker's claim on an item lasts unless renewed (its heartbeat
/// renews it every third of that). A dead worker's items are taken over this long after its
/// last heartbeat, and a takeover only resumes the polling of a job already made.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(30);

/// A shared ledger: how often a worker with room asks for more items, and how often one with
/// nothing left looks for items whose worker died.
const CLAIM_EVERY: Duration = Duration::from_millis(250);
const IDLE_CLAIM_EVERY: Duration = Duration::from_secs(1);

/// Receives the batch's progress.
pub type ProgressHandler = Arc<dyn Fn(&Progress) + Send + Sync>;

/// Receives each item's result line (as `results.jsonl` or `errors.jsonl` has it) once per
/// run: an item already final when the run begins at once, the others as they end, and the
/// ones the run could not finish (held by the budget, stopped) at the end.
pub type ItemHandler = Arc<dyn Fn(&serde_json::Value) + Send + Sync>;

/// How a batch runs.
#[derive(Clone)]
pub struct BatchOptions {
    /// Where outputs, `results.jsonl` and `errors.jsonl` go.
    pub out_dir: PathBuf,
    /// Items with work under way at most (lowered while the server answers 429).
    pub max_in_flight: usize,
    /// Credits the batch may commit; a job whose estimate would pass it is never started.
    pub budget_credits: Option<f64>,
    /// How many times a failed job is started again.
    pub restart_failed: u32,
    /// Create an `unknown` item again (it may make a second job).
    pub recreate_unknown: bool,
    /// How long each job may take.
    pub wait_limit: WaitLimit,
    /// Stops starting new work and ends the calls under way; everything stays resumable.
    pub cancel: CancelToken,
    /// Progress, at most every 100 ms and once at the end.
    pub on_progress: Option<ProgressHandler>,
    /// Each item's result, once.
    pub on_item: Option<ItemHandler>,
    /// A shared ledger: how long a claim lasts unless renewed ([`DEFAULT_LEASE`]).
    pub lease: Duration,
    /// Requests per second the API key may be sent at most. On a shared ledger this is the
    /// key's ceiling, split between every worker that uses the key (each worker's client gets
    /// its share, as workers come and go); otherwise this run's client's. `None`: only the
    /// server's 429s pace the requests (shared by every worker all the same).
    pub max_requests_per_second: Option<f64>,
}

impl BatchOptions {
    /// Defaults: 64 in flight, no budget, no restarts, no limit on a job's time.
    pub fn new(out_dir: impl Into<PathBuf>) -> BatchOptions {
        BatchOptions {
            out_dir: out_dir.into(),
            max_in_flight: 64,
            budget_credits: None,
            restart_failed: 0,
            recreate_unknown: false,
            wait_limit: WaitLimit::Unbounded,
            cancel: CancelToken::new(),
            on_progress: None,
            on_item: None,
            lease: DEFAULT_LEASE,
            max_requests_per_second: None,
        }
    }
}

impl std::fmt::Debug for BatchOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BatchOptions")
            .field("out_dir", &self.out_dir)
            .field("max_in_flight", &self.max_in_flight)
            .field("budget_credits", &self.budget_credits)
            .field("restart_failed", &self.restart_failed)
            .field("recreate_unknown", &self.recreate_unknown)
            .field("lease", &self.lease)
            .field("max_requests_per_second", &self.max_requests_per_second)
            .finish_non_exhaustive()
    }
}

/// Where a batch stands.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Progress {
    pub total: u64,
    /// Completed, output in place.
    pub done: u64,
    /// The job failed (after any restarts).
    pub failed: u64,
    /// Parked: the create's outcome is unknown.
    pub unknown: u64,
    /// Refused without a job.
    pub errors: u64,
    /// Drafts held back: their estimate would pass the budget (a run with a larger budget
    /// starts them).
    pub held: u64,
    /// With work under way now.
    pub in_flight: u64,
    /// Not started yet.
    pub planned: u64,
    /// Whose create is under way (or was, when a run stopped: a resume sends it again).
    pub creating: u64,
    /// Credits reserved or charged.
    pub credits_committed: f64,
    pub budget_credits: Option<f64>,
    /// The in-flight ceiling now.
    pub ceiling: usize,
}

/// How a run ended.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Summary {
    pub batch: String,
    pub progress: Progress,
    /// Every item completed.
    pub complete: bool,
    /// Stopped by the cancel token before the end.
    pub cancelled: bool,
    pub results: PathBuf,
    pub errors: PathBuf,
    pub seconds: f64,
    /// What the ledger cost this run.
    pub ledger: LedgerCost,
}

/// A run that could not go on.
#[derive(Debug)]
pub enum BatchError {
    Ledger(LedgerError),
    Io(String),
}

impl std::fmt::Display for BatchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BatchError::Ledger(error) => error.fmt(f),
            BatchError::Io(message) => f.write_str(message),
        }
    }
}

impl std::error::Error for BatchError {}

impl From<LedgerError> for BatchError {
    fn from(error: LedgerError) -> Self {
        BatchError::Ledger(error)
    }
}

/// A request held until the group that leads to it commits.
type HeldRequest = Box<dyn FnOnce(&Client)>;

/// What the engine hands back, with the item it belongs to.
enum Reply {
    Uploaded(Result<UploadResult, Error>),
    Created(Result<JobAccepted, Error>),
    /// A draft read for its duration (or a job read to confirm a start).
    Inspected(Result<Job, Error>),
    Started(Result<JobAccepted, Error>),
    Confirmed(Result<Job, Error>),
    Event(Event),
    Waited(Result<Job, Error>),
    /// A job read before its download.
    Fetched(Result<Job, Error>),
    Downloaded(Result<(PathBuf, u64, String), Error>),
}

/// Runs (or resumes) the batch `batch` of `ledger` on `client` until every item is final, or
/// the cancel token stops it. Returns the summary; `results.jsonl` and `errors.jsonl` are in
/// the out folder.
pub fn run(
    client: &Client,
    ledger: &mut Ledger,
    batch: &str,
    options: &BatchOptions,
) -> Result<Summary, BatchError> {
    let started = Instant::now();
    std::fs::create_dir_all(&options.out_dir).map_err(|e| {
        BatchError::Io(format!(
            "cannot make the out folder {}: {e}",
            options.out_dir.display()
        ))
    })?;
    let keys_honoured = match ledger.keys_honoured(batch)? {
        Some(known) => Some(known),
        None => client.keys_honoured(),
    };
    let (sender, replies) = mpsc::channel();
    let mut timed = TimedLedger::new(ledger, batch);
    // A shared ledger: this worker takes up only the items it claims, a ceiling's worth at a
    // time; the others are other workers'.
    let leases = timed.is_shared().then(|| Leases::new(options.lease));
    // The key's limit is every worker's: a shared ledger shares the client's rate gate too.
    let gate = timed
        .is_shared()
        .then(|| SharedGate::new(client, options.max_requests_per_second));
    if gate.is_none() && options.max_requests_per_second.is_some() {
        client.with_rate_gate(|gate, _| gate.set_ceiling(options.max_requests_per_second));
    }
    let items = match &leases {
        Some(leases) => timed.claim(options.max_in_flight.max(1), leases.lease, now())?,
        None => timed.load()?,
    };
    let every_item = match &leases {
        Some(_) => timed.items()?,
        None => items.clone(),
    };
    let mut runner = Runner {
        client,
        ledger: timed,
        batch,
        options,
        policy: Policy {
            budgeted: options.budget_credits.is_some(),
            restart_failed: options.restart_failed,
            keys_honoured,
            recreate_unknown: options.recreate_unknown,
        },
        ceiling: Ceiling::new(options.max_in_flight),
        budget: Budget::new(options.budget_credits, &every_item),
        sender,
        replies,
        queue: VecDeque::new(),
        outbox: Vec::new(),
        finished: Vec::new(),
        arrived: Vec::new(),
        undecided: Vec::new(),
        active: HashMap::new(),
        resends: HashMap::new(),
        held: HashSet::new(),
        reported: HashSet::new(),
        last_progress: None,
        unreported: false,
        leases,
        gate,
    };
    drop(every_item);
    // The key's gate before the first request: a pause another worker's 429 started, this
    // worker's share of the ceiling.
    let driven = runner
        .sync_gate()
        .and_then(|()| runner.start(&items))
        .and_then(|()| runner.drive());
    if driven.is_err() {
        // A step failed inside a group: none of the group is kept (its requests were never
        // sent), and the ledger is left without an open transaction.
        let _ = runner.ledger.rollback_group();
    }
    if runner.leases.is_some() {
        // Done, stopped or failed: what this worker still holds goes to the others at once,
        // not a lease later. (A failure to say so leaves the leases to lapse.)
        let _ = runner.ledger.release_leases();
    }
    driven?;
    let items = runner.ledger.items()?;
    for item in &items {
        runner.report_item(item);
    }
    let (results, errors) = files::write_results(&options.out_dir, &items)
        .map_err(|e| BatchError::Io(format!("cannot write the results: {e}")))?;
    let progress = runner.progress()?;
    runner.report(&progress);
    Ok(Summary {
        batch: batch.to_owned(),
        complete: progress.done == progress.total,
        cancelled: options.cancel.is_cancelled(),
        progress,
        results,
        errors,
        seconds: started.elapsed().as_secs_f64(),
        ledger: runner.ledger.cost(),
    })
}

struct Runner<'a> {
    client: &'a Client,
    ledger: TimedLedger<'a>,
    batch: &'a str,
    options: &'a BatchOptions,
    policy: Policy,
    ceiling: Ceiling,
    budget: Budget,
    sender: Sender<(String, Reply)>,
    replies: Receiver<(String, Reply)>,
    /// Items waiting for room under the ceiling.
    queue: VecDeque<String>,
    /// Requests held until the open group commits.
    outbox: Vec<HeldRequest>,
    /// Items the open group finished, reported once it commits.
    finished: Vec<Arc<Item>>,
    /// The answers of the open window, handled together once it closes.
    arrived: Vec<(String, Reply)>,
    /// Unanswered creates of an earlier run, waiting to learn whether the server honours keys.
    undecided: Vec<String>,
    /// Items with a call under way, and how many calls (a wait's events come before it ends).
    active: HashMap<String, u32>,
    /// Steps the runner sent again, per item.
    resends: HashMap<String, u32>,
    /// Drafts this run held back for the budget.
    held: HashSet<String>,
    /// Items whose result was handed to `on_item`.
    reported: HashSet<String>,
    last_progress: Option<Instant>,
    /// A step was recorded since the last progress report.
    unreported: bool,
    /// A shared ledger: this worker's claims.
    leases: Option<Leases>,
    /// A shared ledger: the rate gate of the key, kept in step with the other workers'.
    gate: Option<SharedGate>,
}

/// A worker's hold on its share of a batch in a shared ledger: the lease it claims items for,
/// and when it next renews its leases and next asks for more items.
struct Leases {
    lease: Duration,
    next_heartbeat: Instant,
    next_claim: Instant,
    /// When it next tries the drafts held back for the budget (other workers free credits).
    next_held_look: Instant,
    /// A claim's answer was lost with the connection: the ledger may lease this worker items
    /// it does not know of, to be given back once the connection is back.
    claim_lost: bool,
}

impl Leases {
    fn new(lease: Duration) -> Leases {
        let now = Instant::now();
        Leases {
            lease,
            next_heartbeat: now + lease / 3,
            next_claim: now,
            next_held_look: now + CLAIM_EVERY,
            claim_lost: false,
        }
    }
}

/// The wall clock as the ledger records it.
pub fn now() -> Timestamp {
    let millis = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    Timestamp::from_unix_millis(millis)
}

fn error_pair(error: &Error) -> Option<(String, String)> {
    Some((error.code.as_str().to_owned(), error.message.clone()))
}

/// A step that records an error, with the request id and status of the answer that carried it.
fn error_step(kind: &'static str, phase: Option<ItemPhase>, error: &Error) -> Step {
    Step {
        kind,
        phase,
        request_id: error.request_id.clone(),
        http_status: error.status,
        error: error_pair(error),
        ..Step::default()
    }
}

/// The credits a job says it was charged, when the figure is usable: a negative or absurd one
/// (a broken or hostile server) would otherwise give credits back to the budget.
fn charge_of(job: &Job) -> Option<f64> {
    job.credits_used
        .filter(|credits| credits.is_finite() && (0.0..=1e12).contains(credits))
}

/// What the report reads from a job that ended: its model, duration and billing.
fn job_facts(job: &Job) -> serde_json::Value {
    json!({
        "model": job.model,
        "duration_seconds": job.duration_seconds,
        "billing_status": job.billing_status,
        "error": job.error,
    })
}

/// Errors after which the same request may succeed later (the client's retries ran out).
fn is_transient(error: &Error) -> bool {
    matches!(
        error.kind(),
        ErrorKind::RateLimit | ErrorKind::Server | ErrorKind::Connection
    )
}

impl Runner<'_> {
    /// Takes up an item as the ledger has it: new work waits its turn, a job under way is
    /// carried on at once (a resume restarts every poll without waiting for the ceiling).
    fn begin(&mut self, item: &Item) -> Result<(), BatchError> {
        let next = next_step(item, &self.policy);
        if next.is_new_work() || next == Next::Restart {
            self.queue.push_back(item.key.clone());
            return Ok(());
        }
        if next == Next::Hold {
            self.undecided.push(item.key.clone());
            return Ok(());
        }
        if next == Next::Leave || (next == Next::Verify && files::output_intact(item)) {
            self.report_item(item);
            return Ok(());
        }
        self.act(item, next)
    }

    /// Hands an item's result to `on_item`, once per run.
    fn report_item(&mut self, item: &Item) {
        if let Some(handler) = &self.options.on_item
            && self.reported.insert(item.key.clone())
        {
            handler(&files::result_line(item));
        }
    }

    fn park_undecided(&mut self) -> Result<(), BatchError> {
        for key in std::mem::take(&mut self.undecided) {
            let item = self.ledger.item(&key)?;
            self.act(&item, Next::Park)?;
        }
        self.commit_and_send()
    }

    /// Takes up every item, in one group.
    fn start(&mut self, items: &[Arc<Item>]) -> Result<(), BatchError> {
        for item in items {
            self.begin(item)?;
        }
        self.commit_and_send()
    }

    /// Handles answers, each arrival's in one group, until nothing is under way (and, on a
    /// shared ledger, no other worker holds an unfinished item that could fall to this one).
    fn drive(&mut self) -> Result<(), BatchError> {
        loop {
            self.heartbeat()?;
            self.sync_gate()?;
            if self.leases.is_some() && self.queue.is_empty() && self.claim_more()? {
                continue;
            }
            if self.active.is_empty() && self.outbox.is_empty() {
                if self.others_hold_work()? {
                    // Their workers may die: look again for items whose lease lapsed.
                    let _ = self.replies.recv_timeout(IDLE_CLAIM_EVERY);
                    continue;
                }
                // Nothing this run did told whether the server honours keys: the unanswered
                // creates of an earlier run are parked, never sent blindly.
                if !self.undecided.is_empty()
                    && self.policy.keys_honoured != Some(true)
                    && !self.options.cancel.is_cancelled()
                {
                    self.park_undecided()?;
                }
                self.maybe_report()?;
                return Ok(());
            }
            // Waits are silent while their jobs run: a change the last report missed (it came
            // too soon after the one before) is reported once the answers stop coming.
            let (key, reply) = match self.replies.recv_timeout(PROGRESS_EVERY) {
                Ok(message) => message,
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    if self.unreported {
                        self.maybe_report()?;
                    }
                    continue;
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    unreachable!("the runner holds a sender, so the channel stays open")
                }
            };
            // The answers that arrive within the window join the same commit: a commit costs
            // tens of microseconds of CPU whatever it holds, and answers come one at a time.
            // They are gathered first and handled in one burst (what they lead to is sent only
            // after the commit anyway): steps taken one after another, rather than one per
            // wake-up between the HTTP workers' turns, cost about half as much (the CPU's
            // caches still hold them); the ledger's writer then writes them all at the commit.
            self.arrived.push((key, reply));
            let window_ends = Instant::now() + GROUP_WINDOW;
            while self.arrived.len() < GROUP_MOST {
                let left = window_ends.saturating_duration_since(Instant::now());
                match self.replies.recv_timeout(left) {
                    Ok(message) => self.arrived.push(message),
                    Err(_) => break,
                }
            }
            let mut arrived = std::mem::take(&mut self.arrived);
            for (key, reply) in arrived.drain(..) {
                self.handle(&key, reply)?;
            }
            self.arrived = arrived;
            // Progress once the group is committed: it never shows a step a kill could undo.
            self.commit_and_send()?;
            self.maybe_report()?;
        }
    }

    /// A shared ledger: tells the other workers of this one's 429s, and this one of theirs
    /// (every 100 ms; the loop wakes that often while work is under way).
    fn sync_gate(&mut self) -> Result<(), BatchError> {
        let Some(gate) = &mut self.gate else {
            return Ok(());
        };
        match gate.sync(self.client, &mut self.ledger) {
            // The gate works on its own meanwhile; the next sync tells what was missed.
            Err(error) if error.is_connection_lost() => Ok(()),
            Err(error) => Err(error.into()),
            Ok(()) => Ok(()),
        }
    }

    /// A shared ledger: renews this worker's leases every third of a lease.
    fn heartbeat(&mut self) -> Result<(), BatchError> {
        let Some(leases) = &mut self.leases else {
            return Ok(());
        };
        if Instant::now() < leases.next_heartbeat {
            return Ok(());
        }
        leases.next_heartbeat = Instant::now() + leases.lease / 3;
        let (lease, claim_lost) = (leases.lease, leases.claim_lost);
        // The ledger retries a lost connection for a while itself; past that, the next
        // heartbeat tries again (the leases run on the server's clock, which a restart does
        // not move on).
        match self.ledger.renew_leases(lease, now()) {
            Ok(_) => {}
            Err(error) if error.is_connection_lost() => return Ok(()),
            Err(error) => return Err(error.into()),
        }
        if claim_lost {
            self.ledger.release_unknown_leases(now())?;
            if let Some(leases) = &mut self.leases {
                leases.claim_lost = false;
            }
        }
        Ok(())
    }

    /// A shared ledger: claims items while there is room under the ceiling (at most every
    /// 250 ms, every second once nothing is under way), and takes them up; whether it got any.
    fn claim_more(&mut self) -> Result<bool, BatchError> {
        self.look_at_held()?;
        let room = self
            .ceiling
            .current()
            .saturating_sub(self.active.len() + self.queue.len());
        let idle = self.active.is_empty();
        let Some(leases) = &mut self.leases else {
            return Ok(false);
        };
        if room == 0 || self.options.cancel.is_cancelled() || Instant::now() < leases.next_claim {
            return Ok(false);
        }
        leases.next_claim = Instant::now() + if idle { IDLE_CLAIM_EVERY } else { CLAIM_EVERY };
        let lease = leases.lease;
        let claimed = match self.ledger.claim(room, lease, now()) {
            Ok(claimed) => claimed,
            // Not sent again at once: the claim may have landed (see `claim_lost`). The next
            // heartbeat gives back what it leased, and the next claim asks again.
            Err(error) if error.is_connection_lost() => {
                leases.claim_lost = true;
                leases.next_heartbeat = Instant::now();
                return Ok(false);
            }
            Err(error) => return Err(error.into()),
        };
        if claimed.is_empty() {
            return Ok(false);
        }
        for item in &claimed {
            self.begin(item)?;
        }
        self.commit_and_send()?;
        Ok(true)
    }

    /// A shared ledger: tries the drafts held back for the budget again (every 250 ms at
    /// most), as other workers' settles may have freed credits.
    fn look_at_held(&mut self) -> Result<(), BatchError> {
        let Some(leases) = &mut self.leases else {
            return Ok(());
        };
        if self.held.is_empty() || Instant::now() < leases.next_held_look {
            return Ok(());
        }
        leases.next_held_look = Instant::now() + CLAIM_EVERY;
        self.start_held()?;
        self.commit_and_send()
    }

    /// A shared ledger, nothing under way here: whether items of the batch that are not this
    /// worker's still need work (other workers hold them, or will let them fall to this one
    /// when their leases lapse). Items this worker holds back (the budget, an undecided
    /// create) are its own and do not keep it.
    fn others_hold_work(&mut self) -> Result<bool, BatchError> {
        if self.leases.is_none() || self.options.cancel.is_cancelled() {
            return Ok(false);
        }
        Ok(self.ledger.unfinished_elsewhere()? > 0)
    }

    /// Starts queued work while there is room under the ceiling.
    fn fill(&mut self) -> Result<(), BatchError> {
        while !self.options.cancel.is_cancelled() && self.active.len() < self.ceiling.current() {
            let Some(key) = self.queue.pop_front() else {
                break;
            };
            let item = self.ledger.item(&key)?;
            let next = next_step(&item, &self.policy);
            self.act(&item, next)?;
        }
        Ok(())
    }

    /// Holds a request until the group that leads to it is committed (an intent before its
    /// POST, an answer before what follows from it).
    fn defer(&mut self, send: impl FnOnce(&Client) + 'static) {
        self.outbox.push(Box::new(send));
    }

    /// Commits the open group, then sends the requests it held.
    fn commit_and_send(&mut self) -> Result<(), BatchError> {
        self.fill()?;
        self.ledger.commit_group()?;
        for send in std::mem::take(&mut self.outbox) {
            crash::point("intent_committed");
            send(self.client);
        }
        for item in std::mem::take(&mut self.finished) {
            self.report_item(&item);
        }
        Ok(())
    }

    /// Call options of one item: the run's cancel token, its idempotency key, and its
    /// status changes and retries sent back to be recorded.
    fn call(&self, key: &str, idempotency_key: Option<String>) -> CallOptions {
        let sender = self.sender.clone();
        let key = key.to_owned();
        CallOptions {
            idempotency_key,
            cancel: Some(self.options.cancel.clone()),
            on_event: Some(Arc::new(move |event: &Event| {
                if matches!(event, Event::StatusChanged { .. } | Event::Retry { .. }) {
                    let _ = sender.send((key.clone(), Reply::Event(event.clone())));
                }
            })),
            ..CallOptions::default()
        }
    }

    /// A callback that sends an outcome back to the coordinator, tagged with its item.
    fn reply<T: Send + 'static>(
        &mut self,
        key: &str,
        wrap: fn(Result<T, Error>) -> Reply,
    ) -> removebgvideo::Callback<T> {
        *self.active.entry(key.to_owned()).or_insert(0) += 1;
        let sender = self.sender.clone();
        let key = key.to_owned();
        Box::new(move |outcome| {
            let _ = sender.send((key, wrap(outcome)));
        })
    }

    /// Commits a step; an item it leaves with nothing more to do is reported.
    fn record(&mut self, key: &str, step: Step) -> Result<(), BatchError> {
        let to = step.phase;
        self.ledger.record(key, step, now())?;
        self.unreported = true;
        if self.options.on_item.is_some() && to.is_some_and(ItemPhase::is_final) {
            let item = self.ledger.item(key)?;
            // A done item's next step is only a check of its output, on a later run.
            if matches!(next_step(&item, &self.policy), Next::Leave | Next::Verify) {
                // Reported once its group is committed: a caller never hears of a result a
                // kill could still take back.
                self.finished.push(item);
            }
        }
        Ok(())
    }

    /// Carries out `next` for `item`.
    fn act(&mut self, item: &Item, next: Next) -> Result<(), BatchError> {
        let key = item.key.as_str();
        match next {
            Next::Upload => {
                let path = PathBuf::from(item.input.file_path.as_deref().unwrap_or_default());
                let call = self.call(key, None);
                let done = self.reply(key, Reply::Uploaded);
                self.defer(move |client| client.submit_upload(&path, &call, done));
            }
            Next::Create => self.send_create(item)?,
            Next::Park => {
                let step = Step {
                    kind: "create_unknown",
                    phase: Some(ItemPhase::Unknown),
                    error: Some((
                        "outcome_unknown".into(),
                        "the create was sent (or about to be) when the run stopped, and the server is not known to honour idempotency keys: parked, not sent again (--recreate-unknown sends a new one)".into(),
                    )),
                    ..Step::default()
                };
                self.record(key, step)?;
            }
            Next::Inspect => {
                let job_id = item.job_id.clone().unwrap_or_default();
                let call = self.call(key, None);
                let done = self.reply(key, Reply::Inspected);
                self.defer(move |client| client.submit_get_job(&job_id, &call, done));
            }
            Next::Start => self.send_start(item, item.generation)?,
            Next::Restart => {
                let credits = self
                    .policy
                    .budgeted
                    .then(|| item.credits_estimated.unwrap_or(0.0));
                // The intent moves the item to `running` first: a resume then polls the job,
                // which shows whether this start reached the server, instead of starting it
                // twice.
                let step = Step {
                    kind: "restart",
                    phase: Some(ItemPhase::Running),
                    credits_reserved: credits,
                    next_generation: true,
                    detail: Some(json!({ "generation": item.generation + 1 })),
                    ..Step::default()
                };
                if let Some(credits) = credits
                    && !self.reserve(key, step.clone(), credits)?
                {
                    let step = Step {
                        kind: "budget_held",
                        error: Some((
                            "budget_exceeded".into(),
                            format!(
                                "a restart's estimate of {credits} credits would pass the budget; not restarted"
                            ),
                        )),
                        ..Step::default()
                    };
                    return self.record(key, step);
                }
                if credits.is_none() {
                    self.record(key, step)?;
                }
                self.send_start(item, item.generation + 1)?;
            }
            Next::Wait => self.send_wait(item),
            Next::Download => self.prepare_download(item)?,
            Next::Verify => {
                if !files::output_intact(item) {
                    let step = Step {
                        kind: "output_missing",
                        phase: Some(ItemPhase::Downloading),
                        detail: Some(json!({ "path": item.output_path })),
                        ..Step::default()
                    };
                    self.record(key, step)?;
                    let item = self.ledger.item(key)?;
                    self.prepare_download(&item)?;
                }
            }
            Next::Hold => self.undecided.push(key.to_owned()),
            Next::Leave => {}
        }
        Ok(())
    }

    fn send_create(&mut self, item: &Item) -> Result<(), BatchError> {
        let key = item.key.as_str();
        let request = match create_request(item, !self.policy.budgeted) {
            Ok(request) => request,
            Err(error) => {
                return self.record(key, error_step("error", Some(ItemPhase::Error), &error));
            }
        };
        let idempotency_key = self.ledger.begin_create(key, now())?;
        let call = self.call(key, Some(idempotency_key));
        let done = self.reply(key, Reply::Created);
        self.defer(move |client| client.submit_create_job(&request, &call, done));
        Ok(())
    }

    fn send_start(&mut self, item: &Item, generation: u32) -> Result<(), BatchError> {
        let key = item.key.as_str();
        let job_id = item.job_id.clone().unwrap_or_default();
        let idempotency_key = format!(
            "{}-start",
            derive_idempotency_key(self.batch, key, generation)
        );
        let call = self.call(key, Some(idempotency_key));
        let done = self.reply(key, Reply::Started);
        self.defer(move |client| {
            client.submit_start_job(&job_id, &StartJobRequest::default(), &call, done)
        });
        Ok(())
    }

    fn send_wait(&mut self, item: &Item) {
        let key = item.key.as_str();
        let job_id = item.job_id.clone().unwrap_or_default();
        let options = WaitOptions {
            limit: self.options.wait_limit,
            poll: None,
            call: self.call(key, None),
        };
        let done = self.reply(key, Reply::Waited);
        self.defer(move |client| client.submit_wait(&job_id, &options, done));
    }

    /// A download to do: recorded at once when the output was renamed into place before a
    /// crash (the client renames only a whole, length-checked file), fetched otherwise.
    fn prepare_download(&mut self, item: &Item) -> Result<(), BatchError> {
        let key = item.key.as_str();
        let target = files::output_path(&self.options.out_dir, item);
        files::remove_stale_parts(&target).map_err(|e| {
            BatchError::Io(format!("cannot clean up beside {}: {e}", target.display()))
        })?;
        if target.exists() {
            return match files::digest(&target) {
                Ok((size, sha)) => self.record_output(key, &target, size, sha),
                Err(error) => Err(BatchError::Io(format!(
                    "cannot read {}: {error}",
                    target.display()
                ))),
            };
        }
        let job_id = item.job_id.clone().unwrap_or_default();
        let call = self.call(key, None);
        let done = self.reply(key, Reply::Fetched);
        self.defer(move |client| client.submit_get_job(&job_id, &call, done));
        Ok(())
    }

    fn send_download(&mut self, key: &str, job: Job) -> Result<(), BatchError> {
        let item = self.ledger.item(key)?;
        let target = files::output_path(&self.options.out_dir, &item);
        if let Some(dir) = target.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| BatchError::Io(format!("cannot make {}: {e}", dir.display())))?;
        }
        let options = DownloadOptions {
            overwrite: false,
            call: self.call(key, None),
        };
        *self.active.entry(key.to_owned()).or_insert(0) += 1;
        let sender = self.sender.clone();
        let owner = key.to_owned();
        let done: removebgvideo::Callback<removebgvideo::Download> = Box::new(move |outcome| {
            // Hashing here keeps a large output's read off the coordinator.
            let weighed = outcome.and_then(|download| {
                let (size, sha) = files::digest(&download.path).map_err(|e| {
                    Error::new(
                        removebgvideo::core::ErrorCode::DownloadFailed,
                        format!("cannot read back {}: {e}", download.path.display()),
                    )
                })?;
                Ok((download.path, size, sha))
            });
            let _ = sender.send((owner, Reply::Downloaded(weighed)));
        });
        self.defer(move |client| client.submit_download(job, &target, &options, done));
        Ok(())
    }

    fn record_output(
        &mut self,
        key: &str,
        path: &Path,
        size: u64,
        sha: String,
    ) -> Result<(), BatchError> {
        let step = Step {
            kind: "output",
            phase: Some(ItemPhase::Done),
            output: Some((path.display().to_string(), size, sha)),
            ..Step::default()
        };
        self.record(key, step)
    }

    /// Handles one answer: commits it, then takes the item's next step.
    fn handle(&mut self, key: &str, reply: Reply) -> Result<(), BatchError> {
        if !matches!(reply, Reply::Event(_)) {
            self.finished_call(key);
        }
        match reply {
            Reply::Event(event) => self.on_event(key, event),
            Reply::Uploaded(outcome) => self.on_uploaded(key, outcome),
            Reply::Created(outcome) => self.on_created(key, outcome),
            Reply::Inspected(outcome) => self.on_inspected(key, outcome),
            Reply::Started(outcome) => self.on_started(key, outcome),
            Reply::Confirmed(outcome) => self.on_confirmed(key, outcome),
            Reply::Waited(outcome) => self.on_waited(key, outcome),
            Reply::Fetched(outcome) => match outcome {
                Ok(job) => self.on_fetched(key, job),
                Err(error) => self.on_download_error(key, &error),
            },
            Reply::Downloaded(Ok((path, size, sha))) => {
                crash::point("output_renamed");
                self.record_output(key, &path, size, sha)
            }
            Reply::Downloaded(Err(error)) => self.on_download_error(key, &error),
        }
    }

    fn finished_call(&mut self, key: &str) {
        if let Some(calls) = self.active.get_mut(key) {
            *calls -= 1;
            if *calls == 0 {
                self.active.remove(key);
            }
        }
    }

    /// A status change or a retry, recorded as it happened.
    fn on_event(&mut self, key: &str, event: Event) -> Result<(), BatchError> {
        match event {
            Event::StatusChanged {
                from,
                to,
                verdict,
                request_id,
                ..
            } => {
                let item = self.ledger.item(key)?;
                // Only changes are kept: a wait's first read of a status the ledger already
                // has is none. A terminal status is recorded with the wait's end, in one step
                // with the phase it moves the item to (`completed`, `failed`).
                if to.is_terminal() || item.job_status.as_deref() == Some(to.as_str()) {
                    return Ok(());
                }
                let phase = (item.phase == ItemPhase::Created).then_some(ItemPhase::Running);
                let record = TransitionRecord {
                    // A wait's first read knows no "before"; the ledger does.
                    from: from.or_else(|| item.job_status.as_deref().map(JobStatus::from)),
                    to,
                    progress: None,
                    at: now(),
                    request_id,
                    verdict,
                };
                self.ledger.record_status(key, &record, phase)?;
                self.unreported = true;
            }
            Event::Retry {
                operation,
                attempt,
                delay_ms,
                reason,
                request_id,
                ..
            } => {
                if reason == "HTTP 429" {
                    self.ceiling.rate_limited();
                }
                let step = Step {
                    kind: "retry",
                    attempt: Some(attempt),
                    request_id,
                    detail: Some(json!({
                        "operation": operation,
                        "reason": reason,
                        "delay_ms": delay_ms,
                    })),
                    ..Step::default()
                };
                self.record(key, step)?;
            }
            _ => {}
        }
        Ok(())
    }

    /// Counts a resend of `key`; false once it has had its share.
    fn may_resend(&mut self, key: &str) -> bool {
        let count = self.resends.entry(key.to_owned()).or_insert(0);
        *count += 1;
        *count <= RESENDS && !self.options.cancel.is_cancelled()
    }

    fn on_uploaded(
        &mut self,
        key: &str,
        outcome: Result<UploadResult, Error>,
    ) -> Result<(), BatchError> {
        match outcome {
            Ok(upload) => {
                let step = Step {
                    kind: "uploaded",
                    uploaded_video_url: Some(upload.video_url.clone()),
                    detail: Some(json!({ "video_id": upload.video_id, "size": upload.size })),
                    ..Step::default()
                };
                self.record(key, step)?;
                let item = self.ledger.item(key)?;
                self.send_create(&item)
            }
            Err(error) if error.kind() == ErrorKind::Cancelled => Ok(()),
            Err(error) if is_transient(&error) && self.may_resend(key) => {
                self.record(key, error_step("error", None, &error))?;
                let item = self.ledger.item(key)?;
                self.act(&item, Next::Upload)
            }
            Err(error) => {
                let phase = (!is_transient(&error)).then_some(ItemPhase::Error);
                self.record(key, error_step("error", phase, &error))
            }
        }
    }

    fn on_created(
        &mut self,
        key: &str,
        outcome: Result<JobAccepted, Error>,
    ) -> Result<(), BatchError> {
        crash::point("create_answered");
        match outcome {
            Ok(accepted) => {
                self.learn_keys()?;
                self.ceiling.succeeded();
                // A job made started is running from its first answer; a draft waits.
                let phase = if accepted.status == JobStatus::Created {
                    ItemPhase::Created
                } else {
                    ItemPhase::Running
                };
                let step = Step {
                    kind: "created",
                    phase: Some(phase),
                    job_id: Some(accepted.id.clone()),
                    status_to: Some(accepted.status.as_str().to_owned()),
                    request_id: accepted.request_id.clone(),
                    ..Step::default()
                };
                self.record(key, step)?;
                let item = self.ledger.item(key)?;
                let next = next_step(&item, &self.policy);
                self.act(&item, next)
            }
            Err(error) if error.kind() == ErrorKind::Cancelled => Ok(()),
            Err(error) if error.kind() == ErrorKind::OutcomeUnknown => {
                self.learn_keys()?;
                let honoured = self.policy.keys_honoured;
                match honoured {
                    Some(true) if self.may_resend(key) => {
                        self.record(key, error_step("create_unanswered", None, &error))?;
                        let item = self.ledger.item(key)?;
                        self.send_create(&item)
                    }
                    // Not known yet (no answer of this run echoed a key so far): it waits to
                    // learn, and is parked at the end if nothing tells.
                    None => {
                        self.record(key, error_step("create_unanswered", None, &error))?;
                        self.undecided.push(key.to_owned());
                        Ok(())
                    }
                    _ => self.record(
                        key,
                        error_step("create_unknown", Some(ItemPhase::Unknown), &error),
                    ),
                }
            }
            Err(error) if is_transient(&error) && self.may_resend(key) => {
                // Not received (the client knows when a POST may have acted): the same key
                // again is safe whatever the server does with keys.
                self.record(key, error_step("error", None, &error))?;
                let item = self.ledger.item(key)?;
                self.send_create(&item)
            }
            Err(error) => {
                let phase = (!is_transient(&error)).then_some(ItemPhase::Error);
                self.record(key, error_step("error", phase, &error))
            }
        }
    }

    /// Keeps in the ledger that the server honours keys, once the client has learned it.
    fn learn_keys(&mut self) -> Result<(), BatchError> {
        if self.policy.keys_honoured != Some(true) && self.client.keys_honoured() == Some(true) {
            self.policy.keys_honoured = Some(true);
            self.ledger.set_keys_honoured(true)?;
            // The unanswered creates of an earlier run can go again now, with their keys.
            self.queue.extend(self.undecided.drain(..));
        }
        Ok(())
    }

    fn on_inspected(&mut self, key: &str, outcome: Result<Job, Error>) -> Result<(), BatchError> {
        let job = match outcome {
            Ok(job) => job,
            Err(error) if error.kind() == ErrorKind::Cancelled => return Ok(()),
            Err(error) => return self.record(key, error_step("error", None, &error)),
        };
        let item = self.ledger.item(key)?;
        let Some(credits) = estimate(&item, &job) else {
            self.held.insert(key.to_owned());
            let step = Step {
                kind: "budget_held",
                error: Some((
                    "estimate_unavailable".into(),
                    "the job's duration is not known, so its credits cannot be held to the budget; not started".into(),
                )),
                ..Step::default()
            };
            return self.record(key, step);
        };
        self.start_within_budget(key, credits)
    }

    /// Starts the draft `key` if its estimate fits the budget; holds it back otherwise, to be
    /// tried again whenever a settled job gives credits back.
    fn start_within_budget(&mut self, key: &str, credits: f64) -> Result<(), BatchError> {
        let step = Step {
            kind: "start_intent",
            credits_estimated: Some(credits),
            credits_reserved: Some(credits),
            ..Step::default()
        };
        if !self.reserve(key, step, credits)? {
            if self.held.insert(key.to_owned()) {
                let step = Step {
                    kind: "budget_held",
                    credits_estimated: Some(credits),
                    error: Some((
                        "budget_exceeded".into(),
                        format!(
                            "its estimate of {credits} credits would pass the budget ({} of {} committed); not started",
                            self.budget.committed(),
                            self.budget.limit().unwrap_or_default()
                        ),
                    )),
                    ..Step::default()
                };
                self.record(key, step)?;
            }
            return Ok(());
        }
        self.held.remove(key);
        let item = self.ledger.item(key)?;
        self.send_start(&item, item.generation)
    }

    /// Records `step`, which reserves `credits` for `key`, if they fit the budget; returns
    /// whether they did. On a shared ledger the ledger decides, in the step's own transaction,
    /// against what every worker has committed (N workers together never pass the budget);
    /// otherwise this run's own count does.
    fn reserve(&mut self, key: &str, step: Step, credits: f64) -> Result<bool, BatchError> {
        match self.budget.limit() {
            Some(limit) if self.ledger.is_shared() => {
                match self.ledger.reserve(key, step, limit, now())? {
                    Reservation::Made => {
                        self.budget.count(credits);
                        self.unreported = true;
                        Ok(true)
                    }
                    Reservation::Refused { committed } => {
                        self.budget.saw_committed(committed);
                        Ok(false)
                    }
                }
            }
            _ => {
                if !self.budget.reserve(credits) {
                    return Ok(false);
                }
                self.record(key, step)?;
                Ok(true)
            }
        }
    }

    /// Settles a job's reservation with its charge, and gives the credits it freed to the
    /// drafts held back, in manifest order.
    fn settle(&mut self, item: &Item, charged: f64) -> Result<(), BatchError> {
        self.budget
            .settle(item.credits_reserved.unwrap_or(0.0), charged);
        self.start_held()
    }

    /// Tries the drafts held back for the budget again, in manifest order: after a settle
    /// here, and on a shared ledger at every claim (other workers' settles free credits too).
    /// Those whose estimate is more than the room left are skipped without asking.
    fn start_held(&mut self) -> Result<(), BatchError> {
        if self.held.is_empty() || self.options.cancel.is_cancelled() {
            return Ok(());
        }
        let mut held: Vec<Arc<Item>> = Vec::new();
        for key in &self.held {
            held.push(self.ledger.item(key)?);
        }
        held.sort_by_key(|item| item.line);
        for item in held {
            let Some(credits) = item.credits_estimated else {
                continue;
            };
            let room = self
                .budget
                .limit()
                .map_or(f64::INFINITY, |limit| limit - self.budget.committed());
            if credits <= room + 1e-9 {
                self.start_within_budget(&item.key, credits)?;
            }
        }
        Ok(())
    }

    fn on_started(
        &mut self,
        key: &str,
        outcome: Result<JobAccepted, Error>,
    ) -> Result<(), BatchError> {
        crash::point("start_answered");
        let item = self.ledger.item(key)?;
        match outcome {
            Ok(accepted) => {
                self.ceiling.succeeded();
                let step = Step {
                    kind: "started",
                    phase: Some(ItemPhase::Running),
                    status_to: Some(accepted.status.as_str().to_owned()),
                    request_id: accepted.request_id.clone(),
                    detail: Some(json!({ "generation": item.generation })),
                    ..Step::default()
                };
                self.record(key, step)?;
                let item = self.ledger.item(key)?;
                self.send_wait(&item);
                Ok(())
            }
            Err(error) if error.kind() == ErrorKind::Cancelled => Ok(()),
            Err(error) if error.kind() == ErrorKind::InsufficientCredits => {
                self.settle(&item, 0.0)?;
                let step = Step {
                    credits_charged: Some(0.0),
                    ..error_step("error", Some(ItemPhase::Error), &error)
                };
                self.record(key, step)
            }
            Err(error) => {
                // Whether the start took effect (an unanswered one, or one refused because a
                // first copy already started the job): the job itself says.
                self.record(key, error_step("start_unconfirmed", None, &error))?;
                let job_id = item.job_id.clone().unwrap_or_default();
                let call = self.call(key, None);
                let done = self.reply(key, Reply::Confirmed);
                self.defer(move |client| client.submit_get_job(&job_id, &call, done));
                Ok(())
            }
        }
    }

    fn on_confirmed(&mut self, key: &str, outcome: Result<Job, Error>) -> Result<(), BatchError> {
        let job = match outcome {
            Ok(job) => job,
            Err(error) if error.kind() == ErrorKind::Cancelled => return Ok(()),
            Err(error) => return self.record(key, error_step("error", None, &error)),
        };
        let item = self.ledger.item(key)?;
        let not_started = job.status == JobStatus::Created
            || (job.status == JobStatus::Failed && item.phase == ItemPhase::Running);
        if not_started && self.may_resend(key) {
            return self.send_start(&item, item.generation);
        }
        if item.phase == ItemPhase::Created {
            let step = Step {
                kind: "started",
                phase: Some(ItemPhase::Running),
                status_to: Some(job.status.as_str().to_owned()),
                request_id: job.request_id.clone(),
                ..Step::default()
            };
            self.record(key, step)?;
        }
        let item = self.ledger.item(key)?;
        self.send_wait(&item);
        Ok(())
    }

    fn on_waited(&mut self, key: &str, outcome: Result<Job, Error>) -> Result<(), BatchError> {
        let item = self.ledger.item(key)?;
        match outcome {
            Ok(job) => {
                crash::point("job_ended");
                let charged = charge_of(&job);
                if let Some(charged) = charged {
                    self.settle(&item, charged)?;
                }
                let step = Step {
                    kind: "completed",
                    phase: Some(ItemPhase::Downloading),
                    status_from: item.job_status.clone(),
                    status_to: Some(JobStatus::Completed.as_str().to_owned()),
                    credits_charged: charged,
                    credits_estimated: estimate(&item, &job)
                        .filter(|_| item.credits_estimated.is_none()),
                    request_id: job.request_id.clone(),
                    detail: Some(job_facts(&job)),
                    ..Step::default()
                };
                self.record(key, step)?;
                self.send_download(key, job)
            }
            Err(error) if error.kind() == ErrorKind::JobFailed => {
                crash::point("job_ended");
                let job = error.job.as_deref();
                let charged = job.and_then(charge_of);
                if let Some(charged) = charged {
                    self.settle(&item, charged)?;
                }
                let step = Step {
                    credits_charged: charged,
                    status_from: item.job_status.clone(),
                    status_to: Some(JobStatus::Failed.as_str().to_owned()),
                    detail: job.map(job_facts),
                    ..error_step("failed", Some(ItemPhase::Failed), &error)
                };
                self.record(key, step)?;
                let item = self.ledger.item(key)?;
                if next_step(&item, &self.policy) == Next::Restart {
                    self.queue.push_back(key.to_owned());
                }
                Ok(())
            }
            Err(error) if error.kind() == ErrorKind::Cancelled => Ok(()),
            Err(error) => {
                self.record(key, error_step("error", None, &error))?;
                if error.kind() != ErrorKind::WaitTimeout && self.may_resend(key) {
                    self.send_wait(&item);
                }
                Ok(())
            }
        }
    }

    /// The job read before a resumed download: its charge, if a kill came before it was
    /// recorded, then the download.
    fn on_fetched(&mut self, key: &str, job: Job) -> Result<(), BatchError> {
        let item = self.ledger.item(key)?;
        if item.credits_charged.is_none()
            && let Some(charged) = charge_of(&job)
        {
            self.settle(&item, charged)?;
            let step = Step {
                kind: "charged",
                credits_charged: Some(charged),
                request_id: job.request_id.clone(),
                ..Step::default()
            };
            self.record(key, step)?;
        }
        self.send_download(key, job)
    }

    fn on_download_error(&mut self, key: &str, error: &Error) -> Result<(), BatchError> {
        if error.kind() == ErrorKind::Cancelled {
            return Ok(());
        }
        self.record(key, error_step("error", None, error))?;
        if self.may_resend(key) {
            let item = self.ledger.item(key)?;
            self.prepare_download(&item)?;
        }
        Ok(())
    }

    fn progress(&mut self) -> Result<Progress, BatchError> {
        let counts = self.ledger.counts()?;
        Ok(Progress {
            total: counts.total,
            done: counts.of(ItemPhase::Done),
            failed: counts.of(ItemPhase::Failed),
            unknown: counts.of(ItemPhase::Unknown),
            errors: counts.of(ItemPhase::Error),
            held: self.held.len() as u64,
            in_flight: self.active.len() as u64,
            planned: counts.of(ItemPhase::Planned),
            creating: counts.of(ItemPhase::Creating),
            credits_committed: self.budget.committed(),
            budget_credits: self.budget.limit(),
            ceiling: self.ceiling.current(),
        })
    }

    fn report(&self, progress: &Progress) {
        if let Some(handler) = &self.options.on_progress {
            handler(progress);
        }
    }

    fn maybe_report(&mut self) -> Result<(), BatchError> {
        if self.options.on_progress.is_none()
            || self
                .last_progress
                .is_some_and(|at| at.elapsed() < PROGRESS_EVERY)
        {
            return Ok(());
        }
        self.last_progress = Some(Instant::now());
        self.unreported = false;
        let progress = self.progress()?;
        self.report(&progress);
        Ok(())
    }
}
