//! The rate gate of one client (one API key): every request reserves its send time here, so a
//! 429 pauses every call of the key, not only the one that got it, and a batch paces itself
//! instead of starting a 429 storm. Each 429 is dear: it pauses every client of the key for a
//! whole `Retry-After` (a second at least), so the gate's aim is to use the key near its rate
//! without one.
//!
//! - The open gate (no pace yet) lets requests go at once, but never more at a time than it
//!   has room for: one before any answer (a batch's first burst could empty any bucket),
//!   then as many as the key's bucket had tokens at the last answer, or, when the server says
//!   nothing of its bucket, a window that grows by one per success (doubling with each round
//!   trip, TCP's slow start).
//! - When the server tells what is left of the key's token bucket (`X-RateLimit-Limit` and
//!   `X-RateLimit-Remaining`, [`BucketHint`]), the gate acts before the bucket is empty:
//!   - the open gate starts pacing when the bucket runs low (three fifths or less left), at
//!     80 % of what got through, and climbs by one request per second per success (a slow
//!     start, since that estimate rests on one burst) until the bucket runs low again;
//!   - then every answer that finds the bucket low, and not refilling since the last answer,
//!     cuts the pace by 2 %, and every other answer lets it grow by two requests per second
//!     each second. Every client of the key sees the same bucket, so together they settle just
//!     under its refill rate, and a client that started late catches up with the others.
//! - A 429 pauses every request until its `Retry-After` (a request whose slot was reserved
//!   before the 429 asks for a new one when that slot comes), and the gate paces at 80 % of the
//!   rate the server was answering successes at (its goodput over the last second; once a
//!   key's bucket is empty, that is its refill rate), once for all the requests that were
//!   already out. After the first cut, the pace climbs as in a slow start until the next 429;
//!   after that, without bucket headers, it grows by a quarter of a request per second each
//!   second, probing slowly for the next 429.
//! - After a pause, each client resumes at its own phase (a draw, within a quarter of a second
//!   or one interval), so the clients of a key that one pause held do not all go at its end.
//! - Slots are not queued: a write (a create, start or upload) may take the next free slot, a
//!   read (a poll) only one that is free now, so a write always finds room within one interval
//!   and a pace that grew takes effect at once. Other requests ask again when told.
//! - An optional ceiling (requests per second) is never passed.

use std::time::Duration;

use crate::timestamp::Timestamp;

/// What a steady pace gains per second when the server says nothing of its bucket, in
/// requests per second: only a 429 tells it passed the key's rate, and each 429 pauses
/// every client of the key, so it probes slowly.
const BLIND_GROWTH: f64 = 0.25;
/// Or, if more, this share of the pace per success (a client alone on a fast key finds its
/// rate again in seconds).
const BLIND_INCREASE: f64 = 0.005;
/// The share of the goodput the pace restarts at after a 429.
const DECREASE: f64 = 0.8;
/// The slowest pace the gate goes down to, so a key is never starved for ever.
const MIN_RATE: f64 = 0.05;
/// A pace is dropped after this long without a 429 (or the time of 200 requests at it, if
/// longer): a key that was limited once is not held back for the rest of the client's life.
const QUIET: Duration = Duration::from_secs(30);
/// The window the goodput is measured over.
const WINDOW: Duration = Duration::from_secs(1);
/// The most of its pace a slow start keeps when the bucket runs low.
const DRAIN_CUT: f64 = 0.9;
/// What a steady pace gains per second while the key's bucket is not low, in requests per
/// second.
const HINTED_GROWTH: f64 = 2.0;
/// The share of a steady pace kept for each answer that finds the bucket low.
const DRAIN_STEP: f64 = 0.98;
/// The longest time over which the clients of a key spread their first requests after a
/// pause (one interval of the pace, if shorter).
pub const RESUME_SPREAD: Duration = Duration::from_millis(250);
/// How long a request the open gate holds back (more are out than the bucket has tokens)
/// waits before it asks again.
const HELD_BACK: Duration = Duration::from_millis(10);

/// What an answer said of the key's token bucket.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BucketHint {
    /// The bucket's size (`X-RateLimit-Limit`), at least 1.
    pub limit: u32,
    /// The tokens left after this request (`X-RateLimit-Remaining`), at most `limit`.
    pub remaining: u32,
}

impl BucketHint {
    /// The hint of an answer's headers, when both are there and make sense.
    pub fn from_headers(headers: &crate::http::Headers) -> Option<BucketHint> {
        let number = |name: &str| headers.get(name)?.trim().parse::<u32>().ok();
        let limit = number("x-ratelimit-limit").filter(|l| *l > 0)?;
        let remaining = number("x-ratelimit-remaining")?;
        Some(BucketHint {
            limit,
            remaining: remaining.min(limit),
        })
    }

    /// Three fifths of the bucket or less is left: the key is used about as fast as it
    /// refills (what is left then is the margin against the jitter of many clients' sends).
    fn is_low(self) -> bool {
        u64::from(self.remaining) * 5 <= u64::from(self.limit) * 3
    }
}

/// A send time the gate gave (see [`RateGate::reserve`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Slot {
    /// When to send, or to ask again.
    pub at: Timestamp,
    /// Whether the request is sent at `at` (otherwise it asks again then).
    pub firm: bool,
}

/// Whether a request only reads (a poll may wait for a write).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Priority {
    /// A create, start or upload: it goes first when the gate is tight.
    Write,
    /// A read (polls, lists): it yields.
    Read,
}

/// The gate's state. Times are the caller's `now`; nothing here reads a clock.
#[derive(Clone, Debug, PartialEq)]
pub struct RateGate {
    ceiling: Option<f64>,
    /// The pace, once a 429 (or the ceiling) asked for one.
    pace: Option<f64>,
    /// No request goes before this (a 429's Retry-After).
    paused_until: Timestamp,
    /// The next free send time (theoretical arrival time, as in GCRA): no two requests go
    /// closer than one interval of the pace, so the clients of a key never burst together.
    next_send: Timestamp,
    /// Successes in the current measuring window, and its start.
    window_successes: u32,
    success_window_start: Timestamp,
    /// The success rate (goodput) of the last full window.
    goodput: f64,
    /// 429s seen.
    limited: u64,
    /// When the pace was last cut.
    last_cut: Timestamp,
    /// When the last 429 came, or the last answer that found the key's bucket low: the last
    /// time the server confirmed the pace is needed.
    last_limited: Timestamp,
    /// Between the first cut and the next 429: the pace grows fast.
    slow_start: bool,
    /// Counts the 429s: a slot reserved before the last one was reserved before its pause
    /// and its pace, so its request asks again when the slot comes.
    generation: u64,
    /// Requests sent and not answered yet.
    in_flight: u32,
    /// How many requests the open gate lets out at once when the server says nothing of its
    /// bucket: one at first, one more for each success (doubling with each round trip, as
    /// TCP's slow start does), so a batch's first burst is not a burst of 429s.
    window: u32,
    /// What the last answer said of the key's bucket (none: the server does not say).
    bucket: Option<BucketHint>,
    /// Where in its first interval this gate resumes after a pause, in [0, 1): drawn once
    /// per client, so the clients of a key that one pause held resume one after another
    /// instead of all at its end (more at once than the bucket holds is the next 429).
    phase: f64,
}

impl RateGate {
    /// A gate with an optional ceiling in requests per second (`None`: only 429s pace it).
    pub fn new(ceiling: Option<f64>) -> Self {
        let ceiling = ceiling.filter(|c| c.is_finite() && *c > 0.0);
        RateGate {
            ceiling,
            pace: ceiling,
            paused_until: Timestamp::EPOCH,
            next_send: Timestamp::EPOCH,
            window_successes: 0,
            success_window_start: Timestamp::EPOCH,
            goodput: 0.0,
            limited: 0,
            last_cut: Timestamp::EPOCH,
            last_limited: Timestamp::EPOCH,
            slow_start: false,
            generation: 0,
            in_flight: 0,
            window: 1,
            bucket: None,
            phase: 0.0,
        }
    }

    /// The same gate, resuming after a pause at `phase` (a draw in [0, 1)) of its first
    /// interval.
    pub fn with_phase(mut self, phase: f64) -> Self {
        self.phase = if phase.is_finite() {
            phase.clamp(0.0, 1.0)
        } else {
            0.0
        };
        self
    }

    /// When this gate resumes after a pause that ends at `until`.
    fn resume_at(&self, until: Timestamp) -> Timestamp {
        let first = self
            .pace
            .map_or(RESUME_SPREAD, |pace| interval(pace).min(RESUME_SPREAD));
        until.plus(first.mul_f64(self.phase))
    }

    /// Changes with every 429: a reservation made under another generation is void.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// The pace in requests per second, when the gate paces.
    pub fn pace(&self) -> Option<f64> {
        self.pace
    }

    /// 429s seen so far.
    pub fn rate_limited_count(&self) -> u64 {
        self.limited
    }

    /// Whether the gate is pacing or paused (polls then yield to writes).
    pub fn is_tight(&self, now: Timestamp) -> bool {
        self.pace.is_some() || now < self.paused_until
    }

    /// Reserves a send time for one request at or after `now`. A firm slot is the request's
    /// own: it is sent then (unless a 429 came in between, see [`RateGate::generation`]), and
    /// [`RateGate::on_sent`] is called when it is. A slot that is not firm only says when to
    /// ask again: the open gate holds the request back (as many are out as the key's bucket
    /// has tokens) or pauses it, and the requests a pause held must not all go at its end.
    pub fn reserve(&mut self, now: Timestamp, priority: Priority) -> Slot {
        self.relax(now);
        let at = now.max(self.paused_until);
        let Some(pace) = self.pace else {
            if at > now {
                let at = self.resume_at(at);
                return Slot { at, firm: false };
            }
            if self.held_back() {
                let at = now.plus(HELD_BACK);
                return Slot { at, firm: false };
            }
            return Slot { at, firm: true };
        };
        let step = interval(pace);
        let at = at.max(self.next_send);
        // Slots are not queued: a queue reserved at a slow pace would keep the gate slow
        // after the pace grew (a slow start climbs tenfold). A write may take the next free
        // slot, a read only one that is free now, so a write asking finds room within one
        // interval however many reads wait.
        let horizon = match priority {
            Priority::Write => step,
            Priority::Read => Duration::ZERO,
        };
        if at > now.plus(horizon) {
            return Slot {
                at: at.minus(horizon).max(self.paused_until),
                firm: false,
            };
        }
        self.next_send = at.plus(step);
        Slot { at, firm: true }
    }

    /// Whether the open gate holds a request back: as many are out as the key's bucket had
    /// tokens at the last answer, or, without a word of the bucket, as its window allows.
    /// One always goes when none is out, so a stale hint never stops the key.
    fn held_back(&self) -> bool {
        let room = match self.bucket {
            Some(bucket) => bucket.remaining.max(1),
            None => self.window,
        };
        self.in_flight >= room
    }

    /// A request reserved here was sent: it counts as out until [`RateGate::on_returned`].
    /// Uploads are not counted: one may take minutes, and the open gate must not hold every
    /// other request behind it.
    pub fn on_sent(&mut self) {
        self.in_flight = self.in_flight.saturating_add(1);
    }

    /// A request counted by [`RateGate::on_sent`] is no longer out: it was answered, it
    /// failed without an answer, or its call was dropped.
    pub fn on_returned(&mut self) {
        self.in_flight = self.in_flight.saturating_sub(1);
    }

    /// A request got an answer at `now`: a 429 with its `Retry-After` (if any) slows and
    /// pauses every request; a success lets the pace grow, unless what it says of the key's
    /// bucket (`bucket`) shows the bucket draining. `sent_at` is when the answered request was
    /// sent.
    pub fn on_answer(
        &mut self,
        status: u16,
        retry_after: Option<Duration>,
        bucket: Option<BucketHint>,
        sent_at: Timestamp,
        now: Timestamp,
    ) {
        if status != 429 {
            self.count_success(now);
            if self.pace.is_none() {
                self.window = self.window.saturating_add(1);
            }
            if let Some(hint) = bucket
                && self.last_cut == Timestamp::EPOCH
            {
                self.bucket = bucket;
                self.start_from_bucket(hint, now);
                return;
            }
            let before = std::mem::replace(&mut self.bucket, bucket);
            // Whether the bucket is filling up since the last answer: a cut already made is
            // taking effect.
            let refilling =
                matches!((before, bucket), (Some(b), Some(h)) if h.remaining > b.remaining);
            match bucket {
                Some(hint) if hint.is_low() && refilling => {}
                Some(hint) if hint.is_low() => self.on_drained(sent_at, now),
                // Below its refill rate, the bucket fills up: every client of the key then
                // gains the same requests per second, so a client that started late (at a
                // small share) catches up with the others.
                Some(_) if !self.slow_start => self.grow_by(HINTED_GROWTH),
                _ => self.grow(),
            }
            return;
        }
        self.bucket = bucket.map(|hint| BucketHint {
            remaining: 0,
            ..hint
        });
        self.limited += 1;
        self.generation += 1;
        self.last_limited = self.last_limited.max(now);
        let wait = retry_after.unwrap_or(Duration::from_secs(1));
        self.paused_until = self.paused_until.max(now.plus(wait));
        // Requests sent before the last cut were sent at the old pace: their 429s say nothing
        // new about the new one.
        if self.pace.is_none() || sent_at >= self.last_cut {
            // The first cut, ceiling or not, rests on one burst's estimate.
            self.slow_start = self.last_cut == Timestamp::EPOCH;
            let pace = self.capacity_estimate(now, wait) * DECREASE;
            self.pace = Some(self.capped(pace.max(MIN_RATE)));
            self.last_cut = now;
        }
        // Every slot reserved so far is void (see `generation`): the schedule starts again
        // after the pause, at the new pace.
        self.next_send = self.resume_at(self.paused_until);
    }

    /// Adds `per_second` requests per second each second (one `per_second / pace` per
    /// success at the pace).
    fn grow_by(&mut self, per_second: f64) {
        if let Some(pace) = self.pace {
            self.pace = Some(self.capped(pace + per_second / pace.max(1.0)));
        }
    }

    fn grow(&mut self) {
        if let Some(pace) = self.pace {
            if self.slow_start {
                self.pace = Some(self.capped(pace + 1.0));
            } else {
                self.grow_by(BLIND_GROWTH.max(pace * pace * BLIND_INCREASE));
            }
        }
    }

    /// The first answer that tells the key's bucket starts a slow start at one bucket per
    /// second (or the ceiling, if lower): the clients of a key that start together (a
    /// batch's workers) would otherwise each take the whole bucket at once, or each the whole
    /// ceiling until they know of each other, and meet at the next 429.
    fn start_from_bucket(&mut self, hint: BucketHint, now: Timestamp) {
        let pace = self.capped(f64::from(hint.limit));
        self.pace = Some(pace);
        self.slow_start = true;
        self.last_cut = now;
        self.next_send = self.next_send.max(now.plus(interval(pace)));
    }

    /// A success left the key's bucket low: an open gate starts pacing (as after a 429,
    /// without its pause); a slow start ends with a cut to what got through; a steady pace
    /// is cut a little for each such answer, until the bucket is no longer low. Answers to
    /// requests sent before the last cut say nothing of the pace they were not sent at.
    fn on_drained(&mut self, sent_at: Timestamp, now: Timestamp) {
        self.last_limited = self.last_limited.max(now);
        let pace = match self.pace {
            None => {
                self.slow_start = self.last_cut == Timestamp::EPOCH;
                let estimate = self.capacity_estimate(now, WINDOW) * DECREASE;
                let pace = self.capped(estimate.max(MIN_RATE));
                self.pace = Some(pace);
                self.last_cut = now;
                // The bucket is almost empty: the next request waits one interval.
                self.next_send = self.next_send.max(now.plus(interval(pace)));
                return;
            }
            Some(_) if sent_at < self.last_cut => return,
            // The climb of a slow start passed the refill rate, by up to a half.
            Some(pace) if self.slow_start => {
                self.slow_start = false;
                self.last_cut = now;
                pace * DRAIN_CUT
            }
            Some(pace) => pace * DRAIN_STEP,
        };
        self.pace = Some(self.capped(pace.max(MIN_RATE)));
    }

    /// No request goes before this (the last 429's Retry-After, here or elsewhere).
    pub fn paused_until(&self) -> Timestamp {
        self.paused_until
    }

    /// Another client of the same key (another worker of a shared batch) got a 429 asking
    /// for a pause until `until`: no request of this gate goes before it either (the key's
    /// bucket is shared and empty), and the slots reserved before it are void. The pace is
    /// left to this gate's own 429s: cutting every worker's pace for each worker's 429 cuts
    /// the key's pace many times over for one empty bucket (measured: the workers' paces
    /// collapse), and its own 429s count only here.
    pub fn on_limited_elsewhere(&mut self, until: Timestamp) {
        self.generation += 1;
        self.paused_until = self.paused_until.max(until);
        self.next_send = self.next_send.max(self.resume_at(self.paused_until));
    }

    /// Changes the ceiling (requests per second; `None`: only 429s pace it): a worker's share
    /// of a ceiling all the workers of a key share, as workers come and go.
    pub fn set_ceiling(&mut self, ceiling: Option<f64>) {
        let ceiling = ceiling.filter(|c| c.is_finite() && *c > 0.0);
        if ceiling == self.ceiling {
            return;
        }
        self.ceiling = ceiling;
        // A pace no 429 asked for was the old ceiling's: it follows the new one.
        let learned = self
            .pace
            .filter(|_| self.limited > 0 || self.last_cut > Timestamp::EPOCH);
        self.pace = match (learned, ceiling) {
            (Some(pace), Some(ceiling)) => Some(pace.min(ceiling)),
            (Some(pace), None) => Some(pace),
            (None, ceiling) => ceiling,
        };
    }

    /// Drops a pace that no 429 (nor a low bucket) has confirmed for a long while.
    fn relax(&mut self, now: Timestamp) {
        if let Some(pace) = self.pace
            && self.last_cut > Timestamp::EPOCH
        {
            let quiet = QUIET.max(interval(pace).saturating_mul(200));
            if now.since(self.last_cut.max(self.last_limited)) >= quiet {
                self.pace = self.ceiling;
            }
        }
    }

    fn capped(&self, rate: f64) -> f64 {
        match self.ceiling {
            Some(ceiling) => rate.min(ceiling),
            None => rate,
        }
    }

    /// What the server can take, in requests per second, as a 429 asking for `wait` shows it:
    /// the successes of the last full second; without one (the first burst), the successes so
    /// far spread over the time they took plus the wait; without any, one per `wait`.
    fn capacity_estimate(&self, now: Timestamp, wait: Duration) -> f64 {
        if self.goodput > 0.0 {
            return self.goodput;
        }
        if self.window_successes == 0 {
            return 1.0 / wait.as_secs_f64().max(0.001);
        }
        let span = now.since(self.success_window_start).saturating_add(wait);
        f64::from(self.window_successes) / span.as_secs_f64().max(0.001)
    }

    fn count_success(&mut self, now: Timestamp) {
        let elapsed = now.since(self.success_window_start);
        if elapsed >= WINDOW {
            self.goodput = if elapsed >= 2 * WINDOW {
                0.0
            } else {
                f64::from(self.window_successes) / elapsed.as_secs_f64()
            };
            self.success_window_start = now;
            self.window_successes = 0;
        }
        self.window_successes = self.window_successes.saturating_add(1);
    }
}

/// The time between two sends at `rate` per second.
fn interval(rate: f64) -> Duration {
    Duration::try_from_secs_f64(1.0 / rate.max(MIN_RATE)).unwrap_or(Duration::from_secs(20))
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: Timestamp = Timestamp::from_unix_secs(1_000);

    /// 50 successes a second for two seconds; returns the time after them.
    fn successes(gate: &mut RateGate) -> Timestamp {
        for i in 0..100 {
            let at = T0.plus(Duration::from_millis(i * 20));
            gate.reserve(at, Priority::Read);
            gate.on_answer(200, None, None, at, at);
        }
        T0.plus(Duration::from_secs(2))
    }

    #[test]
    fn a_429_elsewhere_pauses_this_gate_without_counting_as_its_own_or_cutting_its_pace() {
        let mut gate = RateGate::new(None);
        let after = successes(&mut gate);
        let generation = gate.generation();
        let until = after.plus(Duration::from_millis(400));
        gate.on_limited_elsewhere(until);
        assert_eq!(gate.rate_limited_count(), 0);
        assert_ne!(
            gate.generation(),
            generation,
            "slots reserved before it are void"
        );
        assert_eq!(gate.reserve(after, Priority::Write).at, until, "paused");
        assert_eq!(gate.pace(), None, "its pace is its own 429s' to set");
        // A pause that ended already changes nothing.
        gate.on_limited_elsewhere(after);
        assert_eq!(gate.paused_until(), until);
    }

    #[test]
    fn a_shared_ceilings_share_follows_the_workers_count_until_a_429_teaches_a_pace() {
        let mut gate = RateGate::new(None);
        gate.set_ceiling(Some(10.0));
        assert_eq!(gate.pace(), Some(10.0));
        gate.set_ceiling(Some(20.0));
        assert_eq!(gate.pace(), Some(20.0), "a ceiling's pace follows it up");
        gate.set_ceiling(None);
        assert_eq!(gate.pace(), None);
        gate.set_ceiling(Some(20.0));
        gate.on_answer(429, Some(Duration::from_secs(1)), None, T0, T0);
        let learned = gate.pace().unwrap();
        assert!(learned < 20.0);
        gate.set_ceiling(Some(40.0));
        assert_eq!(gate.pace(), Some(learned), "a learned pace stays");
        gate.set_ceiling(Some(learned / 2.0));
        assert_eq!(
            gate.pace(),
            Some(learned / 2.0),
            "and never passes the ceiling"
        );
    }

    #[test]
    fn an_open_gate_lets_everything_through_at_once() {
        let mut gate = RateGate::new(None);
        for _ in 0..1000 {
            assert_eq!(
                gate.reserve(T0, Priority::Read),
                Slot { at: T0, firm: true }
            );
        }
        assert!(!gate.is_tight(T0));
    }

    #[test]
    fn an_open_gate_without_bucket_headers_widens_its_window_with_each_success() {
        let mut gate = RateGate::new(None);
        let mut out = 0;
        while gate.reserve(T0, Priority::Read).firm {
            gate.on_sent();
            out += 1;
        }
        assert_eq!(out, 1, "one before any answer");
        for round in 1..=4 {
            // Every request out is answered, then as many as the window allows go.
            for _ in 0..out {
                gate.on_returned();
                gate.on_answer(200, None, None, T0, T0);
            }
            out = 0;
            while gate.reserve(T0, Priority::Read).firm {
                gate.on_sent();
                out += 1;
            }
            assert_eq!(out, 1 << round, "doubling with each round trip");
        }
    }

    #[test]
    fn the_first_answer_that_tells_the_bucket_starts_a_slow_start_at_one_bucket_a_second() {
        let mut gate = RateGate::new(None);
        let hint = |remaining| {
            Some(BucketHint {
                limit: 10,
                remaining,
            })
        };
        assert!(gate.reserve(T0, Priority::Read).firm);
        gate.on_sent();
        assert!(
            !gate.reserve(T0, Priority::Read).firm,
            "one out before any answer"
        );
        gate.on_returned();
        gate.on_answer(200, None, hint(9), T0, T0);
        assert_eq!(gate.pace(), Some(10.0));
        assert_eq!(
            gate.reserve(T0, Priority::Read),
            Slot {
                at: T0.plus(Duration::from_millis(100)),
                firm: false
            },
            "the next one waits an interval: others may share the bucket"
        );
        let later = T0.plus(Duration::from_millis(100));
        gate.on_answer(200, None, hint(9), later, later);
        assert_eq!(gate.pace(), Some(11.0), "a slow start climbs");
        gate.on_answer(200, None, hint(5), later, later);
        let cut = gate.pace().unwrap();
        assert!(cut < 11.0, "until the bucket runs low: {cut}");
        assert_eq!(gate.rate_limited_count(), 0, "before any 429");
    }

    #[test]
    fn a_paced_gate_cuts_while_the_bucket_drains_and_holds_while_it_refills() {
        let mut gate = RateGate::new(Some(20.0));
        let hint = |remaining| {
            Some(BucketHint {
                limit: 10,
                remaining,
            })
        };
        gate.on_answer(200, None, hint(5), T0, T0);
        let cut = gate.pace().unwrap();
        assert!(cut < 20.0, "low: cut");
        gate.on_answer(200, None, hint(6), T0, T0);
        assert_eq!(
            gate.pace().unwrap(),
            cut,
            "refilling: the cut is taking effect"
        );
        gate.on_answer(200, None, hint(9), T0, T0);
        assert!(gate.pace().unwrap() > cut, "not low: grows again");
    }

    /// The send times of `count` requests that all want to go at `now`, each asking again
    /// when a slot that is not firm says so.
    fn send_times(
        gate: &mut RateGate,
        now: Timestamp,
        count: usize,
        priority: Priority,
    ) -> Vec<u64> {
        let mut times = Vec::new();
        let mut asking = vec![now; count];
        while let Some(index) = (0..asking.len()).min_by_key(|&i| asking[i]) {
            let slot = gate.reserve(asking[index], priority);
            if slot.firm {
                times.push(slot.at.since(now).as_millis() as u64);
                asking.remove(index);
            } else {
                assert!(slot.at > asking[index], "asks again later");
                asking[index] = slot.at;
            }
        }
        times
    }

    #[test]
    fn a_ceiling_spaces_requests_evenly() {
        let mut gate = RateGate::new(Some(10.0));
        let times = send_times(&mut gate, T0, 5, Priority::Write);
        assert_eq!(times, [0, 100, 200, 300, 400]);
    }

    #[test]
    fn slots_are_given_at_most_one_interval_ahead() {
        let mut gate = RateGate::new(Some(10.0));
        assert_eq!(
            gate.reserve(T0, Priority::Write),
            Slot { at: T0, firm: true }
        );
        let next = T0.plus(Duration::from_millis(100));
        assert_eq!(
            gate.reserve(T0, Priority::Write),
            Slot {
                at: next,
                firm: true
            }
        );
        assert_eq!(
            gate.reserve(T0, Priority::Write),
            Slot {
                at: next,
                firm: false
            },
            "the third asks again when the second goes"
        );
        assert!(
            !gate.reserve(T0, Priority::Read).firm,
            "a read takes only a free slot"
        );
    }

    #[test]
    fn a_429_pauses_every_request_until_its_retry_after_then_paces_at_the_goodput() {
        let mut gate = RateGate::new(None);
        // 50 successes a second, then the bucket is empty.
        let now = successes(&mut gate);
        gate.on_answer(429, Some(Duration::from_secs(2)), None, now, now);
        let end = now.plus(Duration::from_secs(2));
        assert_eq!(
            gate.reserve(now, Priority::Read),
            Slot {
                at: end,
                firm: false
            },
            "nobody goes before the pause ends"
        );
        let times = send_times(&mut gate, end, 3, Priority::Read);
        assert_eq!(times[0], 0);
        assert!(
            times[1] > 0 && times[2] > times[1],
            "and after it, requests are paced, not released together: {times:?}"
        );
        let pace = gate.pace().unwrap();
        assert!(
            (35.0..=45.0).contains(&pace),
            "80 % of the 50 a second that succeeded: {pace}"
        );
    }

    #[test]
    fn a_write_finds_room_within_one_interval_however_many_reads_wait() {
        let mut gate = RateGate::new(Some(10.0));
        assert!(gate.reserve(T0, Priority::Read).firm);
        let waiting: Vec<Slot> = (0..10).map(|_| gate.reserve(T0, Priority::Read)).collect();
        assert!(
            waiting.iter().all(|slot| !slot.firm),
            "reads wait for a free slot"
        );
        let write = gate.reserve(T0, Priority::Write);
        assert_eq!(
            write,
            Slot {
                at: T0.plus(Duration::from_millis(100)),
                firm: true
            },
            "the write takes the next slot, before every read that waits"
        );
    }

    #[test]
    fn the_429s_of_requests_already_out_cut_the_pace_once() {
        let mut gate = RateGate::new(None);
        let now = successes(&mut gate);
        let later = now.plus(Duration::from_millis(10));
        gate.on_answer(429, Some(Duration::from_secs(1)), None, now, later);
        let cut = gate.pace().unwrap();
        for _ in 0..7 {
            gate.on_answer(429, Some(Duration::from_secs(1)), None, now, later);
        }
        assert_eq!(
            gate.pace().unwrap(),
            cut,
            "seven more 429s from the same burst"
        );
        assert_eq!(gate.rate_limited_count(), 8);
    }

    #[test]
    fn a_first_burst_paces_at_what_it_got_through_over_the_wait() {
        let mut gate = RateGate::new(None);
        for i in 0..10 {
            let at = T0.plus(Duration::from_millis(i));
            gate.reserve(at, Priority::Write);
            gate.on_answer(200, None, None, at, at);
        }
        let now = T0.plus(Duration::from_millis(10));
        gate.on_answer(429, Some(Duration::from_secs(1)), None, now, now);
        let end = T0.plus(Duration::from_millis(1010));
        let slot = gate.reserve(now, Priority::Write);
        assert!(
            !slot.firm && slot.at <= end,
            "asks again by the pause's end: {slot:?}"
        );
        assert_eq!(
            gate.reserve(end, Priority::Write),
            Slot {
                at: end,
                firm: true
            }
        );
        let pace = gate.pace().unwrap();
        assert!(
            (5.0..=10.0).contains(&pace),
            "ten got through in about a second: {pace}"
        );
    }

    #[test]
    fn after_the_first_cut_the_pace_climbs_fast_until_the_next_429() {
        let mut gate = RateGate::new(None);
        gate.on_answer(429, Some(Duration::from_secs(1)), None, T0, T0);
        let first = gate.pace().unwrap();
        for _ in 0..100 {
            gate.on_answer(200, None, None, T0, T0);
        }
        let climbed = gate.pace().unwrap();
        assert!(
            climbed >= first + 99.0,
            "one a second more per success: {climbed}"
        );
        let later = T0.plus(Duration::from_secs(2));
        gate.on_answer(429, Some(Duration::from_secs(1)), None, later, later);
        let cut = gate.pace().unwrap();
        gate.on_answer(200, None, None, later, later);
        assert!(
            gate.pace().unwrap() < cut * 1.01,
            "then only by half a percent"
        );
    }

    #[test]
    fn a_pace_no_429_confirms_for_long_is_dropped() {
        let mut gate = RateGate::new(None);
        let now = successes(&mut gate);
        gate.on_answer(429, Some(Duration::from_secs(1)), None, now, now);
        assert!(gate.pace().is_some());
        let soon = now.plus(Duration::from_secs(5));
        gate.reserve(soon, Priority::Read);
        assert!(gate.pace().is_some(), "still paced a few seconds on");
        let later = now.plus(Duration::from_secs(31));
        assert_eq!(gate.reserve(later, Priority::Read).at, later);
        assert_eq!(gate.pace(), None, "half a minute without a 429 lifts it");
    }

    #[test]
    fn a_429_before_any_success_paces_at_one_per_retry_after() {
        let mut gate = RateGate::new(None);
        gate.on_answer(429, Some(Duration::from_secs(4)), None, T0, T0);
        assert_eq!(
            gate.reserve(T0, Priority::Write).at,
            T0.plus(Duration::from_secs(4))
        );
        assert_eq!(gate.pace(), Some(0.2));
    }

    #[test]
    fn the_pace_grows_on_success_but_never_past_the_ceiling() {
        let mut gate = RateGate::new(Some(60.0));
        let now = successes(&mut gate);
        gate.on_answer(429, Some(Duration::from_secs(1)), None, now, now);
        let low = gate.pace().unwrap();
        for _ in 0..1000 {
            gate.on_answer(200, None, None, now, now);
        }
        assert!(gate.pace().unwrap() > low);
        assert!(gate.pace().unwrap() <= 60.0);
    }
}
