//! The rate gate of one client (one API key): every request reserves its send time here, so a
//! 429 pauses every call of the key, not only the one that got it, and a batch paces itself
//! instead of starting a 429 storm.
//!
//! - Until the first 429 (and without a configured ceiling) requests go at once.
//! - A 429 pauses every request until its `Retry-After` (a request whose slot was reserved
//!   before the 429 asks for a new one when that slot comes), and the gate starts pacing at 80 % of
//!   the rate the server was answering successes at (its goodput over the last second): once a
//!   key's token bucket is empty, that is its refill rate. Each success then raises the pace by
//!   0.5 %, and the next 429 cuts it again (once for all the requests that were already out when
//!   it was cut), so the pace swings between 80 % and a little over the refill rate, with one
//!   429 for about sixty requests. Only after the first cut, whose estimate rests on one burst
//!   and may be far too low, the pace grows by one request per second per success (doubling
//!   each second, TCP's slow start) until the next 429.
//! - An optional ceiling (requests per second) is never passed.
//! - While pacing, polls (reads) use at most 80 % of the pace, so a create or a start (a write)
//!   always finds room within one interval: polls yield to creates when the gate is tight.

use std::time::Duration;

use crate::timestamp::Timestamp;

/// Pace gained per success while pacing.
const INCREASE: f64 = 1.005;
/// The share of the goodput the pace restarts at after a 429.
const DECREASE: f64 = 0.8;
/// The share of the pace reads may use.
const READ_SHARE: f64 = 0.8;
/// The slowest pace the gate goes down to, so a key is never starved for ever.
const MIN_RATE: f64 = 0.05;
/// A pace is dropped after this long without a 429 (or the time of 200 requests at it, if
/// longer): a key that was limited once is not held back for the rest of the client's life.
const QUIET: Duration = Duration::from_secs(30);
/// The window the goodput is measured over.
const WINDOW: Duration = Duration::from_secs(1);

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
    /// The next free send time of writes (theoretical arrival time, as in GCRA).
    next_write: Timestamp,
    /// The next free send time of reads: they use only part of the pace, and each write
    /// takes a slot from them, never the other way round.
    next_read: Timestamp,
    /// Successes in the current measuring window, and its start.
    window_successes: u32,
    success_window_start: Timestamp,
    /// The success rate (goodput) of the last full window.
    goodput: f64,
    /// 429s seen.
    limited: u64,
    /// When the pace was last cut.
    last_cut: Timestamp,
    /// When the last 429 came.
    last_limited: Timestamp,
    /// Between the first cut and the next 429: the pace grows fast.
    slow_start: bool,
    /// Counts the 429s: a slot reserved before the last one was reserved before its pause
    /// and its pace, so its request asks again when the slot comes.
    generation: u64,
}

impl RateGate {
    /// A gate with an optional ceiling in requests per second (`None`: only 429s pace it).
    pub fn new(ceiling: Option<f64>) -> Self {
        let ceiling = ceiling.filter(|c| c.is_finite() && *c > 0.0);
        RateGate {
            ceiling,
            pace: ceiling,
            paused_until: Timestamp::EPOCH,
            next_write: Timestamp::EPOCH,
            next_read: Timestamp::EPOCH,
            window_successes: 0,
            success_window_start: Timestamp::EPOCH,
            goodput: 0.0,
            limited: 0,
            last_cut: Timestamp::EPOCH,
            last_limited: Timestamp::EPOCH,
            slow_start: false,
            generation: 0,
        }
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

    /// Reserves a send time for one request at or after `now`; the caller sends then.
    pub fn reserve(&mut self, now: Timestamp, priority: Priority) -> Timestamp {
        self.relax(now);
        let mut at = now.max(self.paused_until);
        if let Some(pace) = self.pace {
            match priority {
                Priority::Write => {
                    at = at.max(self.next_write);
                    self.next_write = at.plus(interval(pace));
                    self.next_read = self.next_read.max(at).plus(interval(pace));
                }
                Priority::Read => {
                    at = at.max(self.next_read);
                    self.next_read = at.plus(interval(pace * READ_SHARE));
                }
            }
        }
        at
    }

    /// A request got an answer at `now`: a 429 with its `Retry-After` (if any) slows and
    /// pauses every request; anything else lets the pace grow.
    /// `sent_at` is when the answered request was sent.
    pub fn on_answer(
        &mut self,
        status: u16,
        retry_after: Option<Duration>,
        sent_at: Timestamp,
        now: Timestamp,
    ) {
        if status != 429 {
            self.count_success(now);
            if let Some(pace) = self.pace {
                let grown = if self.slow_start {
                    pace + 1.0
                } else {
                    pace * INCREASE
                };
                self.pace = Some(self.capped(grown));
            }
            return;
        }
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
        self.next_write = self.paused_until;
        self.next_read = self.paused_until;
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
        self.next_write = self.next_write.max(self.paused_until);
        self.next_read = self.next_read.max(self.paused_until);
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

    /// Drops a pace that no 429 has confirmed for a long while.
    fn relax(&mut self, now: Timestamp) {
        if let Some(pace) = self.pace
            && self.limited > 0
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
            gate.on_answer(200, None, at, at);
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
        assert_eq!(gate.reserve(after, Priority::Write), until, "paused");
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
        gate.on_answer(429, Some(Duration::from_secs(1)), T0, T0);
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
            assert_eq!(gate.reserve(T0, Priority::Read), T0);
        }
        assert!(!gate.is_tight(T0));
    }

    #[test]
    fn a_ceiling_spaces_requests_evenly() {
        let mut gate = RateGate::new(Some(10.0));
        let times: Vec<u64> = (0..5)
            .map(|_| gate.reserve(T0, Priority::Write).since(T0).as_millis() as u64)
            .collect();
        assert_eq!(times, [0, 100, 200, 300, 400]);
    }

    #[test]
    fn a_429_pauses_every_request_until_its_retry_after_then_paces_at_the_goodput() {
        let mut gate = RateGate::new(None);
        // 50 successes a second, then the bucket is empty.
        let now = successes(&mut gate);
        gate.on_answer(429, Some(Duration::from_secs(2)), now, now);
        let first = gate.reserve(now, Priority::Read);
        assert_eq!(
            first,
            now.plus(Duration::from_secs(2)),
            "nobody goes before the pause ends"
        );
        let second = gate.reserve(now, Priority::Read);
        assert!(
            second > first,
            "and after it, requests are paced, not released together"
        );
        let pace = gate.pace().unwrap();
        assert!(
            (35.0..=45.0).contains(&pace),
            "80 % of the 50 a second that succeeded: {pace}"
        );
    }

    #[test]
    fn writes_find_room_while_reads_wait_their_share() {
        let mut gate = RateGate::new(Some(10.0));
        let reads: Vec<Timestamp> = (0..10).map(|_| gate.reserve(T0, Priority::Read)).collect();
        let write = gate.reserve(T0, Priority::Write);
        assert!(
            write < *reads.last().unwrap(),
            "a write is not queued behind every read already reserved"
        );
    }

    #[test]
    fn the_429s_of_requests_already_out_cut_the_pace_once() {
        let mut gate = RateGate::new(None);
        let now = successes(&mut gate);
        let later = now.plus(Duration::from_millis(10));
        gate.on_answer(429, Some(Duration::from_secs(1)), now, later);
        let cut = gate.pace().unwrap();
        for _ in 0..7 {
            gate.on_answer(429, Some(Duration::from_secs(1)), now, later);
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
            gate.on_answer(200, None, at, at);
        }
        let now = T0.plus(Duration::from_millis(10));
        gate.on_answer(429, Some(Duration::from_secs(1)), now, now);
        assert_eq!(
            gate.reserve(now, Priority::Write),
            T0.plus(Duration::from_millis(1010))
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
        gate.on_answer(429, Some(Duration::from_secs(1)), T0, T0);
        let first = gate.pace().unwrap();
        for _ in 0..100 {
            gate.on_answer(200, None, T0, T0);
        }
        let climbed = gate.pace().unwrap();
        assert!(
            climbed >= first + 99.0,
            "one a second more per success: {climbed}"
        );
        let later = T0.plus(Duration::from_secs(2));
        gate.on_answer(429, Some(Duration::from_secs(1)), later, later);
        let cut = gate.pace().unwrap();
        gate.on_answer(200, None, later, later);
        assert!(
            gate.pace().unwrap() < cut * 1.01,
            "then only by half a percent"
        );
    }

    #[test]
    fn a_pace_no_429_confirms_for_long_is_dropped() {
        let mut gate = RateGate::new(None);
        let now = successes(&mut gate);
        gate.on_answer(429, Some(Duration::from_secs(1)), now, now);
        assert!(gate.pace().is_some());
        let soon = now.plus(Duration::from_secs(5));
        gate.reserve(soon, Priority::Read);
        assert!(gate.pace().is_some(), "still paced a few seconds on");
        let later = now.plus(Duration::from_secs(31));
        assert_eq!(gate.reserve(later, Priority::Read), later);
        assert_eq!(gate.pace(), None, "half a minute without a 429 lifts it");
    }

    #[test]
    fn a_429_before_any_success_paces_at_one_per_retry_after() {
        let mut gate = RateGate::new(None);
        gate.on_answer(429, Some(Duration::from_secs(4)), T0, T0);
        assert_eq!(
            gate.reserve(T0, Priority::Write),
            T0.plus(Duration::from_secs(4))
        );
        assert_eq!(gate.pace(), Some(0.2));
    }

    #[test]
    fn the_pace_grows_on_success_but_never_past_the_ceiling() {
        let mut gate = RateGate::new(Some(60.0));
        let now = successes(&mut gate);
        gate.on_answer(429, Some(Duration::from_secs(1)), now, now);
        let low = gate.pace().unwrap();
        for _ in 0..1000 {
            gate.on_answer(200, None, now, now);
        }
        assert!(gate.pace().unwrap() > low);
        assert!(gate.pace().unwrap() <= 60.0);
    }
}
