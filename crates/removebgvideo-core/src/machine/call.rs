//! One API call with its retries: when to send, how long an attempt may take, what an answer
//! or a failure means, when to try again, and when a POST may have acted.

use std::collections::VecDeque;
use std::marker::PhantomData;
use std::time::Duration;

use super::{Shared, Transmit, TransmitBody, TransportError};
use crate::error::{Error, ErrorCode};
use crate::events::Event;
use crate::http::{
    Headers, HttpRequest, Method, ResponseBody, honours_idempotency, parse_response,
};
use crate::rate::{BucketHint, Priority};
use crate::retry::{self, Outcome, RetryDecision, RetryPolicy};
use crate::timestamp::Timestamp;

/// The shortest limit an attempt gets, however close the deadline is: the last poll of a wait
/// happens at the deadline itself and must still be able to see a job that completed just
/// before it.
pub const FINAL_ATTEMPT_FLOOR: Duration = Duration::from_secs(2);

/// A successful answer: the value and the headers it came with (Retry-After hints).
#[derive(Clone, Debug, PartialEq)]
pub struct Answer<T> {
    /// The parsed body.
    pub value: T,
    /// The response headers.
    pub headers: Headers,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// The next attempt may be sent (once the rate gate gives it a time).
    Ready,
    /// The rate gate gave the next attempt this send time (or, not firm, this time to ask
    /// again).
    Gated {
        until: Timestamp,
        generation: u64,
        firm: bool,
    },
    /// An attempt is out since `sent_at`; its answer or failure is awaited.
    InFlight { sent_at: Timestamp },
    /// Pausing before a retry.
    Paused { until: Timestamp },
    /// The outcome is decided.
    Done,
}

/// The last failed attempt.
#[derive(Clone, Debug)]
struct Failure {
    error: Error,
    /// Whether it may have acted (a POST without an answer, or answered 500, 502 or 504).
    may_have_acted: bool,
    /// What came back, in words, for an `outcome_unknown` message.
    what_came: String,
}

/// Drives one request to its outcome: `poll_transmit` gives each attempt, `handle_response` or
/// `handle_transport_error` takes its result, `poll_timeout`/`handle_timeout` pace the
/// retries, `poll_outcome` gives the answer or the error.
#[derive(Debug)]
pub struct CallMachine<T> {
    request: HttpRequest,
    body: TransmitBody,
    shared: Shared,
    policy: RetryPolicy,
    attempt_timeout: Duration,
    deadline: Option<Timestamp>,
    retries_done: u32,
    state: State,
    /// The attempt in flight counts as out at the rate gate (see [`CallMachine::returned`]).
    counted_out: bool,
    cancel_requested: bool,
    last_failure: Option<Failure>,
    events: VecDeque<Event>,
    outcome: Option<Result<Answer<T>, Error>>,
    answer: PhantomData<fn() -> T>,
}

impl<T> CallMachine<T> {
    /// The attempt counted as out at the rate gate is no longer out.
    fn returned(&mut self) {
        if std::mem::take(&mut self.counted_out) {
            self.shared.with_gate(|gate| gate.on_returned());
        }
    }
}

/// A call dropped with its attempt in flight (its job cancelled, its engine gone) leaves
/// the rate gate's count of requests out, which would otherwise hold requests back forever.
impl<T> Drop for CallMachine<T> {
    fn drop(&mut self) {
        self.returned();
    }
}

impl<T: ResponseBody> CallMachine<T> {
    /// A call of `request` carrying `body`. `max_retries` and `timeout` override the client's
    /// for this call; no retry pause passes `deadline`.
    pub fn new(
        request: HttpRequest,
        body: TransmitBody,
        shared: &Shared,
        max_retries: Option<u32>,
        timeout: Option<Duration>,
        deadline: Option<Timestamp>,
    ) -> Self {
        let mut policy = shared.retry.clone();
        if let Some(retries) = max_retries {
            policy.max_retries = retries;
        }
        CallMachine {
            request,
            body,
            attempt_timeout: timeout.unwrap_or(shared.request_timeout),
            shared: shared.clone(),
            policy,
            deadline,
            retries_done: 0,
            state: State::Ready,
            counted_out: false,
            cancel_requested: false,
            last_failure: None,
            events: VecDeque::new(),
            outcome: None,
            answer: PhantomData,
        }
    }

    /// The request (for logs: its operation, warnings and key).
    pub fn request(&self) -> &HttpRequest {
        &self.request
    }

    /// Retries made so far.
    pub fn retries_done(&self) -> u32 {
        self.retries_done
    }

    /// The next attempt, when one is due: its limit is the call's timeout, cut to what is left
    /// of the deadline but never below [`FINAL_ATTEMPT_FLOOR`].
    /// Every attempt first reserves its send time at the client's rate gate.
    pub fn poll_transmit(&mut self, now: Timestamp) -> Option<Transmit> {
        let admitted = match self.state {
            State::Ready => false,
            // A 429 since the slot was reserved pauses this request too: it asks again, as
            // one whose slot only said when to ask again does.
            State::Gated {
                until,
                generation,
                firm,
            } if now >= until => {
                firm && self.shared.with_gate(|gate| gate.generation()) == generation
            }
            _ => return None,
        };
        if !admitted {
            let priority = match self.request.method {
                Method::Post => Priority::Write,
                Method::Get => Priority::Read,
            };
            let (slot, generation, tight) = self.shared.with_gate(|gate| {
                let tight = gate.is_tight(now);
                (gate.reserve(now, priority), gate.generation(), tight)
            });
            // Only a pause or a pace fails the call: a request the open gate holds back for
            // a moment (as many are out as the key's bucket has tokens) goes soon, and a
            // wait's last poll may go that late.
            if slot.at > now && tight && self.deadline.is_some_and(|d| slot.at > d) {
                let error = Error::new(
                    ErrorCode::RateLimited,
                    format!(
                        "{} could not be sent before the deadline: the client is pacing its requests after a 429",
                        self.request.operation.name()
                    ),
                );
                self.finish(Err(self.with_key(error)));
                return None;
            }
            if slot.at > now || !slot.firm {
                self.state = State::Gated {
                    until: slot.at,
                    generation,
                    firm: slot.firm,
                };
                return None;
            }
        }
        self.state = State::InFlight { sent_at: now };
        // An upload may take minutes: the open gate does not hold other requests behind it.
        if matches!(self.body, TransmitBody::Json) {
            self.shared.with_gate(|gate| gate.on_sent());
            self.counted_out = true;
        }
        let remaining = self.deadline.map(|d| d.since(now).max(FINAL_ATTEMPT_FLOOR));
        let timeout = remaining.map_or(self.attempt_timeout, |r| self.attempt_timeout.min(r));
        Some(Transmit::Api {
            request: self.request.clone(),
            body: self.body.clone(),
            timeout,
            total: remaining,
        })
    }

    /// When `handle_timeout` is next due (the end of a retry pause).
    pub fn poll_timeout(&self) -> Option<Timestamp> {
        match self.state {
            State::Paused { until } | State::Gated { until, .. } => Some(until),
            _ => None,
        }
    }

    /// Time passed: a retry pause that is over makes the next attempt due.
    pub fn handle_timeout(&mut self, now: Timestamp) {
        if let State::Paused { until } = self.state
            && now >= until
        {
            self.state = State::Ready;
        }
    }

    /// The next progress event (a retry), if any.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// The outcome, once decided (given once).
    pub fn poll_outcome(&mut self) -> Option<Result<Answer<T>, Error>> {
        self.outcome.take()
    }

    /// Whether the outcome is decided (it may already have been taken).
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// The answer to the attempt in flight.
    pub fn handle_response(&mut self, status: u16, headers: Headers, body: &[u8], now: Timestamp) {
        let State::InFlight { sent_at } = self.state else {
            return;
        };
        let hint = retry::retry_after(&headers, now);
        // The pause a 429 sets for every call is held to the longest Retry-After the retry
        // policy takes: a hostile or broken server cannot stop the client for a year.
        let pause = hint.map(|h| h.min(self.shared.retry.max_retry_after));
        let bucket = BucketHint::from_headers(&headers);
        self.returned();
        self.shared
            .with_gate(|gate| gate.on_answer(status, pause, bucket, sent_at, now));
        let success = (200..300).contains(&status);
        // Only a success proves the origin honours keys: a gateway's 5xx may echo the header
        // without anything behind it remembering the key.
        if self.request.method == Method::Post && success && honours_idempotency(&headers) {
            self.shared.learn_idempotency();
        }
        match parse_response::<T>(status, &headers, body, now) {
            Ok(value) => {
                self.shared.with_budget(|b| b.on_success());
                self.finish(Ok(Answer { value, headers }));
            }
            Err(error) => {
                let code = error.code.clone();
                let outcome = if success {
                    // A 2xx whose body did not parse was lost in transit: we do not know what
                    // the server said, so it counts as no answer.
                    Outcome::NoAnswer { timed_out: false }
                } else {
                    Outcome::Status {
                        status,
                        code: &code,
                        headers: &headers,
                    }
                };
                let what_came = if success {
                    "no usable answer came".to_owned()
                } else {
                    format!(
                        "the answer was HTTP {status}, which a gateway can give after the server acted"
                    )
                };
                self.failed(error, &outcome, what_came, now);
            }
        }
    }

    /// The attempt in flight got no answer.
    pub fn handle_transport_error(&mut self, failure: TransportError, now: Timestamp) {
        if !matches!(self.state, State::InFlight { .. }) {
            return;
        }
        self.returned();
        let what = format!("{} {}", self.request.method.as_str(), self.request.path);
        let error = failure.to_error(&what);
        self.failed(
            error,
            &failure.outcome(),
            "no usable answer came".into(),
            now,
        );
    }

    /// The caller cancelled. A pause or a due attempt ends at once; an attempt in flight ends
    /// on its answer (a success is still a success: its job exists). A POST that may have
    /// acted ends as `outcome_unknown`, never as a plain cancel.
    pub fn cancel(&mut self) {
        self.cancel_requested = true;
        if matches!(
            self.state,
            State::Ready | State::Gated { .. } | State::Paused { .. }
        ) {
            let outcome = self.cancelled();
            self.finish(Err(outcome));
        }
    }

    fn cancelled(&self) -> Error {
        match &self.last_failure {
            Some(failure) if failure.may_have_acted => self.outcome_unknown(
                failure,
                &format!("{} before it was cancelled", failure.what_came),
            ),
            _ => self.with_key(Error::new(
                ErrorCode::Cancelled,
                format!("{} was cancelled", self.request.operation.name()),
            )),
        }
    }

    fn failed(&mut self, error: Error, outcome: &Outcome<'_>, what_came: String, now: Timestamp) {
        let may_have_acted = self.request.method == Method::Post && retry::may_have_acted(outcome);
        let failure = Failure {
            error,
            may_have_acted,
            what_came,
        };
        self.last_failure = Some(failure.clone());
        if self.cancel_requested {
            let error = self.cancelled();
            return self.finish(Err(error));
        }
        let replay = self.shared.replay(&self.request);
        let decision = self.shared.with_random(|random| {
            self.shared.with_budget(|budget| {
                retry::decide(
                    &self.policy,
                    budget,
                    self.retries_done,
                    outcome,
                    replay,
                    now,
                    random,
                )
            })
        });
        match decision {
            RetryDecision::Retry { delay, reason } => {
                if self.deadline.is_some_and(|d| now.plus(delay) > d) {
                    let error = if may_have_acted {
                        self.outcome_unknown(
                            &failure,
                            &format!("{}, and no time was left to retry", failure.what_came),
                        )
                    } else {
                        self.with_key(failure.error)
                    };
                    return self.finish(Err(error));
                }
                self.retries_done += 1;
                self.events.push_back(Event::Retry {
                    operation: self.request.operation.name().to_owned(),
                    attempt: self.retries_done,
                    max_retries: self.policy.max_retries,
                    delay_ms: crate::timestamp::duration_millis(delay),
                    reason: reason.to_string(),
                    request_id: failure.error.request_id.clone(),
                });
                self.state = State::Paused {
                    until: now.plus(delay),
                };
            }
            RetryDecision::GiveUp { .. } if may_have_acted => {
                let error = self.outcome_unknown(&failure, &failure.what_came);
                self.finish(Err(error));
            }
            RetryDecision::GiveUp { .. } => {
                let error = self.with_key(failure.error);
                self.finish(Err(error));
            }
        }
    }

    fn finish(&mut self, outcome: Result<Answer<T>, Error>) {
        self.state = State::Done;
        self.outcome = Some(outcome);
    }

    fn with_key(&self, error: Error) -> Error {
        error.with_idempotency_key(self.request.idempotency_key.clone())
    }

    /// The error of a POST that may have acted: it carries its key, the status a gateway
    /// answered and the request id, and says how to find out.
    fn outcome_unknown(&self, failure: &Failure, why: &str) -> Error {
        let operation = self.request.operation.name();
        let key = self.request.idempotency_key.as_deref().unwrap_or("");
        self.with_key(Error {
            status: failure.error.status,
            ..Error::new(
                ErrorCode::OutcomeUnknown,
                format!(
                    "{operation} was sent but {why} ({}); it may have taken effect, so it was not sent again. \
                     Check with a GET, or repeat it with idempotency_key {key:?} so the server can answer the first result",
                    failure.error.message
                ),
            )
            .with_request_id(failure.error.request_id.clone())
        })
    }
}
