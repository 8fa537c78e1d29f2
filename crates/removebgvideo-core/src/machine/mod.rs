//! The machines that drive a call, a wait, a download and a whole run, sans-IO in the style of
//! quinn-proto: answers, transport failures, body bytes and time go in through `handle_*`;
//! requests to send, the next wake-up, progress events and the outcome come out through
//! `poll_*`. A driver (the blocking client, the engine, a test with virtual time) only moves
//! bytes and time between a machine and the network; every protocol rule is in here.

mod call;
mod download;
mod run;
mod wait;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use call::{Answer, CallMachine};
pub use download::{BodyPlan, DownloadMachine, Fetched};
pub use run::{RunMachine, RunOutput, RunSource, RunSpec};
pub use wait::WaitMachine;

use crate::error::{Error, ErrorCode};
use crate::events::Event;
use crate::http::{Headers, HttpRequest, Method, MultipartFraming, ResponseBody};
use crate::job::Job;
use crate::random::Random;
use crate::rate::RateGate;
use crate::retry::{Outcome, Replay, RetryBudget, RetryPolicy};
use crate::timestamp::Timestamp;

/// Whether the server is known to honour `Idempotency-Key`, which decides if a POST that got no
/// answer may be sent again.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IdempotencySupport {
    /// Learn it: unknown until a success echoes the key back (the sandbox does).
    #[default]
    Detect,
    /// The server honours it: a POST without an answer is retried with the same key.
    Honoured,
    /// It does not: a POST without an answer is reported as `outcome_unknown`.
    NotHonoured,
}

/// What the machines of one client share: its retry policy, its retry budget (so a batch cannot
/// turn an outage into a retry storm) and what it learned about the server's idempotency.
/// Cheap to clone; clones share the budget, the learning and the source of jitter.
#[derive(Clone)]
pub struct Shared {
    /// Retries of each call (a call may lower or raise `max_retries` for itself).
    pub retry: RetryPolicy,
    /// The longest one API attempt may take.
    pub request_timeout: Duration,
    /// A transfer (upload or download body) fails after this long without a byte.
    pub transfer_idle_timeout: Duration,
    /// Whether the server honours Idempotency-Key.
    pub idempotency: IdempotencySupport,
    budget: Arc<Mutex<RetryBudget>>,
    idempotency_seen: Arc<AtomicBool>,
    random: Arc<Mutex<Box<dyn Random + Send>>>,
    gate: Arc<Mutex<RateGate>>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("retry", &self.retry)
            .field("request_timeout", &self.request_timeout)
            .field("transfer_idle_timeout", &self.transfer_idle_timeout)
            .field("idempotency", &self.idempotency)
            .field("budget_tokens", &self.budget_tokens())
            .finish_non_exhaustive()
    }
}

impl Shared {
    /// The shared state of a new client; `random` draws every jitter of its machines.
    pub fn new(
        retry: RetryPolicy,
        budget: RetryBudget,
        request_timeout: Duration,
        transfer_idle_timeout: Duration,
        idempotency: IdempotencySupport,
        random: Box<dyn Random + Send>,
    ) -> Self {
        Shared {
            retry,
            request_timeout,
            transfer_idle_timeout,
            idempotency,
            budget: Arc::new(Mutex::new(budget)),
            idempotency_seen: Arc::new(AtomicBool::new(false)),
            random: Arc::new(Mutex::new(random)),
            gate: Arc::new(Mutex::new(RateGate::new(None))),
        }
    }

    /// The same, with a ceiling of requests per second on the client's rate gate, which
    /// resumes after a pause at `phase` (a draw in [0, 1), see [`RateGate::with_phase`]).
    /// The phase is the caller's draw, not one of `random`'s: the machines' jitter stays
    /// the same sequence whatever the gate does.
    pub fn with_rate_gate(self, ceiling: Option<f64>, phase: f64) -> Self {
        *lock(&self.gate) = RateGate::new(ceiling).with_phase(phase);
        self
    }

    /// Runs `work` on the client's rate gate.
    pub fn with_gate<T>(&self, work: impl FnOnce(&mut RateGate) -> T) -> T {
        work(&mut lock(&self.gate))
    }

    /// Runs `work` with the source of jitter.
    pub fn with_random<T>(&self, work: impl FnOnce(&mut dyn Random) -> T) -> T {
        work(lock(&self.random).as_mut())
    }

    /// Runs `work` on the retry budget.
    pub fn with_budget<T>(&self, work: impl FnOnce(&mut RetryBudget) -> T) -> T {
        work(&mut lock(&self.budget))
    }

    /// Tokens left in the retry budget.
    pub fn budget_tokens(&self) -> u32 {
        self.with_budget(|b| b.tokens())
    }

    /// Whether the server honours idempotency keys: as configured, or learned from an echo
    /// (`None`: not known yet).
    pub fn keys_honoured(&self) -> Option<bool> {
        match self.idempotency {
            IdempotencySupport::Honoured => Some(true),
            IdempotencySupport::NotHonoured => Some(false),
            IdempotencySupport::Detect => self
                .idempotency_seen
                .load(Ordering::Relaxed)
                .then_some(true),
        }
    }

    /// Whether repeating `request` could do something twice.
    pub fn replay(&self, request: &HttpRequest) -> Replay {
        let honoured = match self.idempotency {
            IdempotencySupport::Honoured => true,
            IdempotencySupport::NotHonoured => false,
            IdempotencySupport::Detect => self.idempotency_seen.load(Ordering::Relaxed),
        };
        if request.method == Method::Get || honoured {
            Replay::Safe
        } else {
            Replay::Unsafe
        }
    }

    /// A success showed the server honours keys.
    fn learn_idempotency(&self) {
        self.idempotency_seen.store(true, Ordering::Relaxed);
    }
}

/// Locks shared state; a poisoned lock (a panic elsewhere) still holds usable state: each
/// update here is a few assignments, never left half-done in a way a reader could misuse.
fn lock<T: ?Sized>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The body a request carries.
#[derive(Clone, Debug, PartialEq)]
pub enum TransmitBody {
    /// The request's own JSON body, if any (`HttpRequest::body`).
    Json,
    /// A file streamed as multipart form data: `framing.head`, the file's bytes, `framing.tail`.
    Upload {
        /// The file.
        path: std::path::PathBuf,
        /// Its size when the call began.
        file_size: u64,
        /// The bytes around it.
        framing: MultipartFraming,
    },
}

/// The upload of the file at `path` (`size` bytes, as the driver read it): its request, named
/// after the file and checked, and the body that streams the file inside `boundary`.
pub fn upload_request(
    builder: &crate::http::RequestBuilder,
    path: &std::path::Path,
    size: u64,
    boundary: &str,
    idempotency_key: &str,
) -> Result<(HttpRequest, TransmitBody), Error> {
    let filename = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let file = crate::requests::UploadFile::new(filename, size);
    let (request, framing) = builder.upload(&file, boundary, idempotency_key)?;
    let body = TransmitBody::Upload {
        path: path.to_owned(),
        file_size: size,
        framing,
    };
    Ok((request, body))
}

/// A request a machine wants sent.
#[derive(Clone, Debug, PartialEq)]
// One transmit exists per attempt and is moved, not stored: boxing the larger variant would
// only add an allocation to every API call.
#[allow(clippy::large_enum_variant)]
pub enum Transmit {
    /// An API request; the driver reads its whole (small) answer and calls
    /// `handle_response`. Redirects are never followed: the key would go along.
    Api {
        /// The request.
        request: HttpRequest,
        /// What it carries.
        body: TransmitBody,
        /// The limit of this attempt, answer included. A streamed body is bounded by
        /// `Shared::transfer_idle_timeout` between bytes instead, and by `total` overall.
        timeout: Duration,
        /// What is left of the caller's deadline, if any.
        total: Option<Duration>,
    },
    /// A GET of an output URL (no API key). The driver calls `handle_head` with the status and
    /// headers, then moves the body as the returned [`BodyPlan`] says.
    Fetch {
        /// The URL.
        url: String,
        /// Headers to send (Range, If-Range, the call's own headers on the API's host only).
        headers: Vec<(String, String)>,
        /// The body fails after this long without a byte.
        idle_timeout: Duration,
        /// What is left of the caller's deadline, if any.
        total: Option<Duration>,
    },
}

/// Why an attempt got no answer, as the transport saw it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TransportErrorKind {
    /// No connection could be made: the request never left.
    ConnectFailed,
    /// The request did not leave whole (an upload stopped by its own cancellation): the
    /// server cannot have acted on it.
    NotSentWhole,
    /// The attempt timed out after the request may have been sent.
    TimedOut,
    /// The connection broke after the request may have been sent.
    Broken,
}

/// An attempt without an answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TransportError {
    /// What kind of failure.
    pub kind: TransportErrorKind,
    /// The transport's own words, for the error message.
    pub detail: String,
}

impl TransportError {
    /// A failure of this kind.
    pub fn new(kind: TransportErrorKind, detail: impl Into<String>) -> Self {
        TransportError {
            kind,
            detail: detail.into(),
        }
    }

    /// The retry decision's view of it.
    pub fn outcome(&self) -> Outcome<'static> {
        match self.kind {
            TransportErrorKind::ConnectFailed | TransportErrorKind::NotSentWhole => {
                Outcome::ConnectFailed
            }
            TransportErrorKind::TimedOut => Outcome::NoAnswer { timed_out: true },
            TransportErrorKind::Broken => Outcome::NoAnswer { timed_out: false },
        }
    }

    /// The error a caller sees, about `what` (`POST /v1/jobs`, `downloading the output`).
    pub fn to_error(&self, what: &str) -> Error {
        let detail = &self.detail;
        match self.kind {
            TransportErrorKind::ConnectFailed => Error::new(
                ErrorCode::ConnectionError,
                format!("{what}: could not connect ({detail})"),
            ),
            TransportErrorKind::NotSentWhole => Error::new(
                ErrorCode::ConnectionError,
                format!("{what}: the request was not sent whole ({detail})"),
            ),
            TransportErrorKind::TimedOut => Error::new(
                ErrorCode::RequestTimeout,
                format!("{what}: timed out ({detail})"),
            ),
            TransportErrorKind::Broken => Error::new(
                ErrorCode::ConnectionError,
                format!("{what}: the connection broke ({detail})"),
            ),
        }
    }
}

/// What every machine takes and gives, so one driver (the blocking loop, the engine) can move
/// any of them. Machines that do not download keep the defaults of the body inputs.
pub trait Machine {
    /// What a success produces.
    type Output;
    /// The next request, when one is due at `now`.
    fn poll_transmit(&mut self, now: Timestamp) -> Option<Transmit>;
    /// When `handle_timeout` is next due (`None`: waiting only on an answer, or done).
    fn poll_timeout(&self) -> Option<Timestamp>;
    /// Time passed.
    fn handle_timeout(&mut self, now: Timestamp);
    /// A whole answer to the API request in flight (or the body of an output URL's error
    /// answer, when [`BodyPlan::ReadError`] asked for it).
    fn handle_response(&mut self, status: u16, headers: Headers, body: &[u8], now: Timestamp);
    /// The request in flight got no answer.
    fn handle_transport_error(&mut self, failure: TransportError, now: Timestamp);
    /// The head of an output URL's answer ([`Transmit::Fetch`]): what to do with its body.
    fn handle_head(&mut self, _status: u16, _headers: Headers, _now: Timestamp) -> BodyPlan {
        BodyPlan::Discard
    }
    /// `n` more bytes of a streamed output body are written.
    fn handle_body_bytes(&mut self, _n: u64, _now: Timestamp) {}
    /// The streamed output body ended.
    fn handle_body_end(&mut self, _end: Result<(), TransportError>, _now: Timestamp) {}
    /// How many more bytes the body being streamed may bring (`None`: no known limit).
    fn room(&self) -> Option<u64> {
        None
    }
    /// A job read elsewhere (a webhook delivery): waits take it as an observation.
    fn handle_job_update(&mut self, _job: Job, _now: Timestamp) {}
    /// The job whose updates it takes, once known (a run learns it from its create).
    fn updates_for(&self) -> Option<&str> {
        None
    }
    /// The caller cancelled.
    fn cancel(&mut self);
    /// The next progress event.
    fn poll_event(&mut self) -> Option<Event>;
    /// The outcome, once decided (given once).
    fn poll_outcome(&mut self) -> Option<Result<Self::Output, Error>>;
}

/// Implements [`Machine`] by forwarding to a type's own methods of the same names.
macro_rules! forward_machine {
    ([$($generics:tt)*] $type:ty, $output:ty $(, $extra:ident)*) => {
        impl<$($generics)*> Machine for $type {
            type Output = $output;
            fn poll_transmit(&mut self, now: Timestamp) -> Option<Transmit> {
                Self::poll_transmit(self, now)
            }
            fn poll_timeout(&self) -> Option<Timestamp> {
                Self::poll_timeout(self)
            }
            fn handle_timeout(&mut self, now: Timestamp) {
                Self::handle_timeout(self, now)
            }
            fn handle_response(&mut self, status: u16, headers: Headers, body: &[u8], now: Timestamp) {
                Self::handle_response(self, status, headers, body, now)
            }
            fn handle_transport_error(&mut self, failure: TransportError, now: Timestamp) {
                Self::handle_transport_error(self, failure, now)
            }
            fn cancel(&mut self) {
                Self::cancel(self)
            }
            fn poll_event(&mut self) -> Option<Event> {
                Self::poll_event(self)
            }
            fn poll_outcome(&mut self) -> Option<Result<$output, Error>> {
                Self::poll_outcome(self)
            }
            $(forward_machine!(@$extra);)*
        }
    };
    (@body) => {
        fn handle_head(&mut self, status: u16, headers: Headers, now: Timestamp) -> BodyPlan {
            Self::handle_head(self, status, headers, now)
        }
        fn handle_body_bytes(&mut self, n: u64, now: Timestamp) {
            Self::handle_body_bytes(self, n, now)
        }
        fn handle_body_end(&mut self, end: Result<(), TransportError>, now: Timestamp) {
            Self::handle_body_end(self, end, now)
        }
        fn room(&self) -> Option<u64> {
            Self::room(self)
        }
    };
    (@updates) => {
        fn handle_job_update(&mut self, job: Job, now: Timestamp) {
            Self::handle_job_update(self, job, now)
        }
        fn updates_for(&self) -> Option<&str> {
            Self::updates_for(self)
        }
    };
    ($type:ty, $output:ty $(, $extra:ident)*) => {
        forward_machine!([] $type, $output $(, $extra)*);
    };
}

forward_machine!([T: ResponseBody] CallMachine<T>, Answer<T>);
forward_machine!(WaitMachine, Job, updates);
forward_machine!(DownloadMachine, Fetched, body);
forward_machine!(RunMachine, RunOutput, body, updates);
