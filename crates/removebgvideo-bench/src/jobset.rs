//! `create-jobs`: the jobs of the many-jobs section, created on the sandbox before the measured
//! waits begin. Their video durations are spread as in the polling section (log-uniform from
//! 5 s to 15 min, seeded), one job in ten fails (the sandbox's `scenario=fail`, 40 % of the way
//! through), so every job's true end state is known before anyone waits for it.
//!
//! Creating thousands of jobs takes a moment, during which the sandbox's fast clock runs: the
//! longest jobs are created first and the shortest last, so the jobs created early lose little
//! of their length by the time the waits begin. Under a rate limit (`--pace R`: at most R
//! creations a second, the key's rate, so no creation meets a 429) creating takes longer
//! still, but on a schedule known in advance: each job is lengthened by the time from its slot
//! to the last one, so at the end of the creating every job has its drawn length still ahead.
//! The file lists the jobs in a seeded random order (no user sorts their jobs), one
//! `JOB_ID STATUS` line each, STATUS being the end the sandbox was told to give it
//! (`completed` or `failed`).

use std::io::Write;
use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use removebgvideo::{CallOptions, Client, CreateJobRequest, ErrorCode, Model};
use removebgvideo_core::Timestamp;
use removebgvideo_sandbox::lifecycle::{FAIL_AT, Run, RunOutcome, Scenario, processing_time};
use serde_json::{Value, json};

use crate::polling::durations;
use crate::stats::round;

/// One job in ten fails.
pub const FAILING_SHARE: f64 = 0.1;
/// Threads creating the jobs (the sandbox, on the same machine, is the limit beyond a few).
const CREATORS: usize = 8;
/// How long one creation may keep meeting 429s before the whole set is given up.
const RATE_LIMITED_FOR_AT_MOST: Duration = Duration::from_secs(120);

/// What one job is told to be.
#[derive(Clone, Debug, PartialEq)]
pub struct Planned {
    pub video_secs: f64,
    pub fails: bool,
}

impl Planned {
    /// The video URL whose query tells the sandbox this job's duration and end.
    pub fn video_url(&self) -> String {
        let scenario = if self.fails { "&scenario=fail" } else { "" };
        format!(
            "https://example.com/many.mp4?duration={:.1}{scenario}",
            self.video_secs
        )
    }

    pub fn status(&self) -> &'static str {
        if self.fails { "failed" } else { "completed" }
    }

    /// The same job ending `extra` (virtual time) later: a failing job fails at `FAIL_AT` of
    /// its processing, so its video grows by `extra / FAIL_AT`.
    fn later_by(&self, extra: Duration) -> Planned {
        let grow = if self.fails { 1.0 / FAIL_AT } else { 1.0 };
        Planned {
            video_secs: round(self.video_secs + extra.as_secs_f64() * grow, 1),
            fails: self.fails,
        }
    }

    /// Virtual time from creation (auto-started) to the job's end, from the sandbox's own
    /// lifecycle model.
    fn lasts(&self) -> Duration {
        let outcome = if self.fails {
            RunOutcome::Fail("planned".into())
        } else {
            RunOutcome::Complete
        };
        let scenario = if self.fails {
            Scenario::Fail("planned".into())
        } else {
            Scenario::Normal
        };
        let started_at = Timestamp::from_unix_millis(0);
        let run = Run {
            started_at,
            processing: processing_time(&Model::Original, self.video_secs, &scenario),
            outcome,
        };
        run.ends_at()
            .map_or(Duration::MAX, |end| end.since(started_at))
    }
}

/// The jobs, longest first (the order they are created in).
pub fn plan(jobs: usize, seed: u64) -> Vec<Planned> {
    let mut rng = fastrand::Rng::with_seed(seed ^ 0x6d61_6e79);
    let mut planned: Vec<Planned> = durations(jobs, seed, true)
        .into_iter()
        .map(|video_secs| Planned {
            // One decimal, as the URL says it.
            video_secs: round(video_secs, 1),
            fails: rng.f64() < FAILING_SHARE,
        })
        .collect();
    planned.sort_by(|a, b| b.video_secs.total_cmp(&a.video_secs));
    planned
}

/// Creates one job, waiting out 429s (the rate-limited run creates its jobs with its own
/// key); the same Idempotency-Key on every try, so no try makes a second job.
fn create_one(client: &Client, job: &Planned, index: usize) -> Result<String, String> {
    let request = CreateJobRequest::new(job.video_url());
    let options = CallOptions {
        idempotency_key: Some(format!("many-jobs-{index}")),
        ..CallOptions::default()
    };
    let started = Instant::now();
    loop {
        match client.create_job(&request, &options) {
            Ok(accepted) => return Ok(accepted.id),
            Err(error)
                if error.code == ErrorCode::RateLimited
                    && started.elapsed() < RATE_LIMITED_FOR_AT_MOST =>
            {
                std::thread::sleep(error.retry_after.unwrap_or(Duration::from_secs(1)));
            }
            Err(error) => return Err(format!("creating job {index}: {error}")),
        }
    }
}

/// When, after the start, each job's creation is due under `pace` creations a second (all at
/// once without one), and each job lengthened by the (virtual) time from its slot to the last.
fn schedule(planned: &[Planned], pace: Option<f64>, speed: f64) -> Vec<(Duration, Planned)> {
    let slot = |index: usize| match pace {
        Some(rate) => Duration::from_secs_f64(index as f64 / rate),
        None => Duration::ZERO,
    };
    let last = slot(planned.len().saturating_sub(1));
    planned
        .iter()
        .enumerate()
        .map(|(index, job)| {
            let due = slot(index);
            (due, job.later_by((last - due).mul_f64(speed)))
        })
        .collect()
}

pub fn run(
    base_url: &str,
    key: &str,
    jobs: usize,
    seed: u64,
    speed: f64,
    pace: Option<f64>,
    out: &Path,
) -> Result<Value, String> {
    if !(speed.is_finite() && speed > 0.0) {
        return Err(format!("--speed must be a positive number (got {speed})"));
    }
    if pace.is_some_and(|rate| !(rate.is_finite() && rate > 0.0)) {
        return Err(format!("--pace must be a positive number (got {pace:?})"));
    }
    let client = Client::builder()
        .api_key(key)
        .base_url(base_url)
        .build()
        .map_err(|e| e.to_string())?;
    let planned = schedule(&plan(jobs, seed), pace, speed);
    let next = AtomicUsize::new(0);
    let created: Mutex<Vec<Option<(String, Instant)>>> = Mutex::new(vec![None; jobs]);
    let started = Instant::now();
    let failures: Vec<String> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..CREATORS.min(jobs.max(1)))
            .map(|_| {
                scope.spawn(|| -> Result<(), String> {
                    loop {
                        let index = next.fetch_add(1, Ordering::Relaxed);
                        let Some((due, job)) = planned.get(index) else {
                            return Ok(());
                        };
                        if let Some(wait) = (started + *due).checked_duration_since(Instant::now())
                        {
                            std::thread::sleep(wait);
                        }
                        let id = create_one(&client, job, index)?;
                        created.lock().expect("created")[index] = Some((id, Instant::now()));
                    }
                })
            })
            .collect();
        workers
            .into_iter()
            .filter_map(|worker| match worker.join() {
                Ok(Ok(())) => None,
                Ok(Err(message)) => Some(message),
                Err(_) => Some("a creating thread panicked".into()),
            })
            .collect()
    });
    if let Some(first) = failures.first() {
        return Err(first.clone());
    }
    let done = Instant::now();
    let created = created.into_inner().expect("created");
    let mut lines: Vec<(String, &'static str)> = Vec::with_capacity(jobs);
    let mut ended_before_done = 0;
    for ((_, job), entry) in planned.iter().zip(created) {
        let (id, at) = entry.ok_or("a job was not created")?;
        // Virtual time over the clock's speed: when, in real time, this job ends.
        if at + job.lasts().div_f64(speed) <= done {
            ended_before_done += 1;
        }
        lines.push((id, job.status()));
    }
    fastrand::Rng::with_seed(seed).shuffle(&mut lines);
    let mut text = String::with_capacity(jobs * 24);
    for (id, status) in &lines {
        text += &format!("{id} {status}\n");
    }
    std::fs::File::create(out)
        .and_then(|mut file| file.write_all(text.as_bytes()))
        .map_err(|e| format!("{}: {e}", out.display()))?;
    let failing = planned.iter().filter(|(_, job)| job.fails).count();
    Ok(json!({
        "jobs": jobs,
        "expected_completed": jobs - failing,
        "expected_failed": failing,
        "creation_s": round(done.duration_since(started).as_secs_f64(), 3),
        "ended_before_waits": ended_before_done,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_plan_spreads_durations_fails_a_tenth_and_starts_with_the_longest() {
        let jobs = plan(2000, 7);
        assert_eq!(jobs.len(), 2000);
        assert!(
            jobs.windows(2)
                .all(|pair| pair[0].video_secs >= pair[1].video_secs)
        );
        let (longest, shortest) = (jobs[0].video_secs, jobs[1999].video_secs);
        assert!(longest > 600.0 && longest <= 900.0, "{longest}");
        assert!((5.0..20.0).contains(&shortest), "{shortest}");
        let failing = jobs.iter().filter(|job| job.fails).count();
        assert!((150..250).contains(&failing), "{failing} failing");
        assert_eq!(plan(2000, 7), jobs, "seeded");
        let failing_job = jobs.iter().find(|job| job.fails).unwrap();
        assert!(failing_job.video_url().ends_with("&scenario=fail"));
        assert_eq!(failing_job.status(), "failed");
        // A 10 s video: 1 s queued and 10 s processing; failing, 40 % of the processing.
        let ten = Planned {
            video_secs: 10.0,
            fails: false,
        };
        assert_eq!(ten.lasts(), Duration::from_secs(11));
        let failing_ten = Planned {
            fails: true,
            ..ten.clone()
        };
        assert_eq!(failing_ten.lasts(), Duration::from_secs(5));
        // Lengthened by 20 s, each still ends 20 s later than drawn.
        let extra = Duration::from_secs(20);
        assert_eq!(ten.later_by(extra).lasts(), Duration::from_secs(31));
        assert_eq!(failing_ten.later_by(extra).lasts(), Duration::from_secs(25));
    }

    #[test]
    fn paced_jobs_are_lengthened_by_the_time_to_the_last_slot() {
        let jobs = plan(3, 1);
        let paced = schedule(&jobs, Some(2.0), 30.0);
        let dues: Vec<f64> = paced.iter().map(|(due, _)| due.as_secs_f64()).collect();
        assert_eq!(dues, [0.0, 0.5, 1.0]);
        // The first slot is 1 s before the last: 30 s of a clock 30 times as fast.
        let first = &paced[0].1;
        assert_eq!(
            first.lasts(),
            jobs[0].later_by(Duration::from_secs(30)).lasts()
        );
        assert_eq!(paced[2].1, jobs[2], "the last is as drawn");
        let unpaced = schedule(&jobs, None, 30.0);
        assert!(
            unpaced
                .iter()
                .zip(&jobs)
                .all(|((due, job), drawn)| due.is_zero() && job == drawn)
        );
    }
}
