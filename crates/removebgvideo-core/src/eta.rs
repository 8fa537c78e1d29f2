//! Projected completion: when a job should finish, from the progress it reported over time.
//!
//! Servers report progress in whole percent, rounded down, and the sandbox's (like the
//! API's) progress grows linearly while a job processes. Two readings of one run give its
//! rate; the projection is the moment the rate reaches 100 %, measured from the latest
//! reading. The first reading of the run is kept as the baseline, so every later reading
//! lengthens it and the rounding error shrinks as the job goes on.

use std::time::Duration;

use crate::job::Phase;
use crate::timestamp::Timestamp;

/// One progress reading.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Reading {
    at: Timestamp,
    progress: f64,
}

/// The progress readings of the current run of one job.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ProgressProjection {
    first: Option<Reading>,
    previous: Option<Reading>,
    last: Option<Reading>,
}

impl ProgressProjection {
    /// A projection with no readings.
    pub fn new() -> Self {
        ProgressProjection::default()
    }

    /// Records a read of the job at `at`. Only processing reads with a progress count; a
    /// return to waiting or a drop in progress means a new run, so the readings start over.
    pub fn observe(&mut self, at: Timestamp, phase: Phase, progress: Option<f64>) {
        match (phase, progress) {
            (Phase::Processing, Some(progress)) if progress.is_finite() => {
                if self.last.is_some_and(|last| progress < last.progress) {
                    *self = ProgressProjection::default();
                }
                let reading = Reading { at, progress };
                self.first.get_or_insert(reading);
                self.previous = self.last.replace(reading);
            }
            (Phase::Waiting, _) => *self = ProgressProjection::default(),
            _ => {}
        }
    }

    /// When the job should complete, once two readings of this run differ by at least one
    /// percent; `None` before that, and while the job stalls: its last two readings are
    /// equal although its rate until then says it should have gained two percent or more. A
    /// stalled job (at 99 %, or at 100 % still processing) would otherwise be projected ever
    /// just ahead and polled at the shortest interval. (Two close readings of a slow job can
    /// legitimately be equal; that is not a stall.)
    pub fn expected_completion(&self) -> Option<Projection> {
        let (first, last) = (self.first?, self.last?);
        if let Some(previous) = self.previous
            && previous.progress >= last.progress
        {
            let rate_before =
                (previous.progress - first.progress) / previous.at.since(first.at).as_secs_f64();
            let due = rate_before * last.at.since(previous.at).as_secs_f64();
            if !(rate_before > 0.0 && due < 2.0) {
                return None;
            }
        }
        let gained = last.progress - first.progress;
        let elapsed = last.at.since(first.at).as_secs_f64();
        if gained < 1.0 || elapsed <= 0.0 {
            return None;
        }
        let rate = gained / elapsed;
        // A whole-percent reading p means the true value lies in [p, p + 1): take the middle.
        let rounding = if last.progress.fract() == 0.0 {
            0.5
        } else {
            0.0
        };
        let remaining = (100.0 - last.progress - rounding).max(0.0) / rate;
        // Each reading is off by up to one percent, so the rate is off by up to one part in
        // `gained`, and the last reading by up to half a percent either way.
        let uncertainty = remaining / gained + rounding / rate;
        Some(Projection {
            expected: last.at.plus(Duration::try_from_secs_f64(remaining).ok()?),
            uncertainty: Duration::try_from_secs_f64(uncertainty).ok()?,
        })
    }
}

/// A projected completion.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Projection {
    /// The most likely completion time.
    pub expected: Timestamp,
    /// How far either way the completion can be, given the readings' rounding.
    pub uncertainty: Duration,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ms: u64) -> Timestamp {
        Timestamp::from_unix_millis(ms)
    }

    /// Reads of a job that processes linearly from `start_ms` for `duration_ms`.
    fn linear(start_ms: u64, duration_ms: u64, now_ms: u64) -> f64 {
        let fraction = (now_ms - start_ms) as f64 / duration_ms as f64;
        (fraction * 100.0).floor().min(99.0)
    }

    #[test]
    fn one_reading_projects_nothing() {
        let mut projection = ProgressProjection::new();
        projection.observe(at(0), Phase::Processing, Some(10.0));
        assert_eq!(projection.expected_completion(), None);
        projection.observe(at(5_000), Phase::Processing, Some(10.0));
        assert_eq!(
            projection.expected_completion(),
            None,
            "no progress, no rate"
        );
    }

    #[test]
    fn linear_progress_projects_its_end_within_one_step() {
        // 100 s of processing from t = 1 s: the end is at 101 s.
        let mut projection = ProgressProjection::new();
        for now in [1_000, 3_700, 20_000, 61_300] {
            projection.observe(
                at(now),
                Phase::Processing,
                Some(linear(1_000, 100_000, now)),
            );
        }
        let projected = projection.expected_completion().unwrap().expected;
        let error = projected.distance(at(101_000));
        // One percent of the run is 1 s; the projection must be well inside it.
        assert!(error.as_millis() <= 1_000, "projected {projected:?}");
    }

    #[test]
    fn the_projection_sharpens_as_readings_accumulate() {
        let end = at(1_000 + 600_000);
        let mut projection = ProgressProjection::new();
        let mut errors = Vec::new();
        for now in [1_500, 7_000, 60_000, 300_000, 590_000] {
            projection.observe(
                at(now),
                Phase::Processing,
                Some(linear(1_000, 600_000, now)),
            );
            if let Some(projection) = projection.expected_completion() {
                let error = projection.expected.distance(end);
                assert!(
                    error <= projection.uncertainty,
                    "{error:?} > {projection:?}"
                );
                errors.push(error.as_millis());
            }
        }
        assert!(errors.len() >= 3);
        assert!(
            errors.last().unwrap() < errors.first().unwrap(),
            "{errors:?}"
        );
        assert!(*errors.last().unwrap() <= 6_000, "{errors:?}");
    }

    #[test]
    fn a_restart_starts_the_readings_over() {
        let mut projection = ProgressProjection::new();
        projection.observe(at(0), Phase::Processing, Some(0.0));
        projection.observe(at(10_000), Phase::Processing, Some(50.0));
        assert!(projection.expected_completion().is_some());
        projection.observe(at(11_000), Phase::Waiting, Some(0.0));
        assert_eq!(projection.expected_completion(), None);
        projection.observe(at(12_000), Phase::Processing, Some(5.0));
        projection.observe(at(13_000), Phase::Processing, Some(2.0));
        assert_eq!(projection.expected_completion(), None, "a drop starts over");
    }

    #[test]
    fn fractional_progress_is_taken_as_exact() {
        let mut projection = ProgressProjection::new();
        projection.observe(at(0), Phase::Processing, Some(0.0));
        projection.observe(at(10_000), Phase::Processing, Some(12.5));
        // 12.5 % in 10 s: 87.5 % more takes 70 s.
        let projection = projection.expected_completion().unwrap();
        assert_eq!(projection.expected, at(80_000));
        // Exact readings leave only the rate's one part in 12.5 either way: 5.6 s.
        assert_eq!(projection.uncertainty.as_millis(), 5_600);
    }
}
