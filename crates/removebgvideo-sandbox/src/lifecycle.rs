//! How long a job takes and how it ends: from the model, the video duration and the scenario.

use std::time::Duration;

use removebgvideo_core::{JobStatus, Model, Timestamp, units};

/// Time a started job waits in `pending` before processing.
pub const QUEUE_TIME: Duration = Duration::from_secs(1);
/// The shortest processing time.
pub const MIN_PROCESSING: Duration = Duration::from_secs(2);
/// Where a failing job fails, as a fraction of its processing time.
pub const FAIL_AT: f64 = 0.4;
/// Where a stuck job stops progressing, in percent.
pub const STUCK_AT: f64 = 50.0;

/// What a test can ask for through the video URL's `scenario` query parameter.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Scenario {
    /// Completes normally.
    Normal,
    /// Fails every run with this message (`scenario=fail`, message from `error=`).
    Fail(String),
    /// Fails its first run only, so a restart completes (`scenario=fail_once`).
    FailOnce(String),
    /// Stays processing forever (`scenario=stuck`).
    Stuck,
    /// Takes ten times longer (`scenario=slow`).
    Slow,
}

/// What the video URL tells the sandbox: its duration (`duration=` seconds) and scenario.
#[derive(Clone, Debug, PartialEq)]
pub struct VideoHints {
    /// The duration, when the URL says.
    pub duration_secs: Option<f64>,
    /// The scenario.
    pub scenario: Scenario,
}

/// Reads `duration`, `scenario` and `error` from a video URL's query.
pub fn hints_from_url(video_url: &str) -> VideoHints {
    let mut duration_secs = None;
    let mut scenario = "";
    let mut message = "Processing failed (sandbox scenario)".to_owned();
    let url = url::Url::parse(video_url).ok();
    let pairs: Vec<(String, String)> = url
        .as_ref()
        .map(|u| {
            u.query_pairs()
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect()
        })
        .unwrap_or_default();
    for (key, value) in &pairs {
        match key.as_str() {
            // Above 0 and at most a year, like every duration from outside; anything else
            // is no hint (the default duration applies).
            "duration" => {
                duration_secs = value
                    .parse::<f64>()
                    .ok()
                    .filter(|d| units::positive_seconds("/duration", *d).is_ok())
            }
            "scenario" => scenario = value.as_str(),
            "error" => message = value.clone(),
            _ => {}
        }
    }
    let scenario = match scenario {
        "fail" => Scenario::Fail(message),
        "fail_once" => Scenario::FailOnce(message),
        "stuck" => Scenario::Stuck,
        "slow" => Scenario::Slow,
        _ => Scenario::Normal,
    };
    VideoHints {
        duration_secs,
        scenario,
    }
}

/// Processing time of one run: the video's duration scaled by the model's speed.
pub fn processing_time(model: &Model, duration_secs: f64, scenario: &Scenario) -> Duration {
    let factor = match model {
        Model::Light => 0.5,
        Model::Human => 0.8,
        Model::Pro => 2.0,
        Model::Original | Model::Unknown(_) => 1.0,
    };
    let slow = if *scenario == Scenario::Slow {
        10.0
    } else {
        1.0
    };
    // Saturating: computed under the state lock, where a panic would fail every later request.
    let seconds = duration_secs * factor * slow;
    // NaN, zero and negatives (refused before they get here) take the shortest time.
    if seconds.is_nan() || seconds <= 0.0 {
        return MIN_PROCESSING;
    }
    Duration::try_from_secs_f64(seconds)
        .unwrap_or(Duration::MAX)
        .max(MIN_PROCESSING)
}

/// How one run of a job ends.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RunOutcome {
    /// Completes.
    Complete,
    /// Fails with this message.
    Fail(String),
    /// Never ends.
    Stuck,
}

/// One start of a job.
#[derive(Clone, Debug, PartialEq)]
pub struct Run {
    /// When it was started (virtual time).
    pub started_at: Timestamp,
    /// Processing time, after the queue.
    pub processing: Duration,
    /// How it ends.
    pub outcome: RunOutcome,
}

impl Run {
    /// The outcome of run number `run_index` (0 for the first) of a job in `scenario`.
    pub fn outcome_for(scenario: &Scenario, run_index: u32) -> RunOutcome {
        match scenario {
            Scenario::Fail(message) => RunOutcome::Fail(message.clone()),
            Scenario::FailOnce(message) if run_index == 0 => RunOutcome::Fail(message.clone()),
            Scenario::Stuck => RunOutcome::Stuck,
            _ => RunOutcome::Complete,
        }
    }

    /// When processing begins.
    pub fn processing_from(&self) -> Timestamp {
        self.started_at.plus(QUEUE_TIME)
    }

    /// When the run ends, if it ends.
    pub fn ends_at(&self) -> Option<Timestamp> {
        match self.outcome {
            RunOutcome::Complete => Some(self.processing_from().plus(self.processing)),
            RunOutcome::Fail(_) => Some(
                self.processing_from()
                    .plus(self.processing.mul_f64(FAIL_AT)),
            ),
            RunOutcome::Stuck => None,
        }
    }

    /// Status and progress at `now`.
    pub fn status_at(&self, now: Timestamp) -> (JobStatus, f64) {
        let from = self.processing_from();
        if now < from {
            return (JobStatus::Pending, 0.0);
        }
        let fraction = now.since(from).as_secs_f64() / self.processing.as_secs_f64();
        let progress = (fraction * 100.0).floor();
        match &self.outcome {
            RunOutcome::Stuck => (JobStatus::Processing, progress.min(STUCK_AT)),
            RunOutcome::Fail(_) if fraction >= FAIL_AT => {
                (JobStatus::Failed, (FAIL_AT * 100.0).floor())
            }
            RunOutcome::Complete if fraction >= 1.0 => (JobStatus::Completed, 100.0),
            _ => (JobStatus::Processing, progress.min(99.0)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unusable_durations_neither_panic_nor_count_as_hints() {
        for duration in [f64::NAN, -1.0, 0.0, f64::INFINITY, 1e300, f64::MAX] {
            let time = processing_time(&Model::Pro, duration, &Scenario::Slow);
            assert!(time >= MIN_PROCESSING, "{duration}");
            let run = Run {
                started_at: Timestamp::from_unix_millis(0),
                processing: time,
                outcome: RunOutcome::Fail("x".into()),
            };
            let _ = run.ends_at();
            let _ = run.status_at(Timestamp::from_unix_millis(u64::MAX));
        }
        for hint in ["1e300", "-1", "NaN", "inf", "0", "31536001"] {
            let url = format!("https://cdn.example.com/v.mp4?duration={hint}");
            assert_eq!(hints_from_url(&url).duration_secs, None, "{hint}");
        }
        let url = "https://cdn.example.com/v.mp4?duration=12.5";
        assert_eq!(hints_from_url(url).duration_secs, Some(12.5));
    }
}
