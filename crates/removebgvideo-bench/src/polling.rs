//! Polling policies in virtual time: every policy waits on the same jobs, whose status and
//! progress come from the sandbox's own lifecycle model, through the core's `Poller`. No
//! sleeping and no HTTP: what differs between policies is only when they look.
//!
//! The workload: job durations spread from 5 s to 15 min, drawn log-uniformly (most clips are
//! short, a few are long) and, as a second view, uniformly. Every wait starts right after the
//! job is started, with one immediate read, as every SDK's does.

use std::time::Duration;

use removebgvideo_core::random::Random;
use removebgvideo_core::{Job, Model, PollPolicy, PollStep, Poller, Timestamp};
use removebgvideo_sandbox::lifecycle::{Run, RunOutcome, Scenario, processing_time};
use serde_json::{Value, json};

use crate::stats::{mean, percentile, round};

const SHORTEST_S: f64 = 5.0;
const LONGEST_S: f64 = 900.0;

/// A seeded generator behind the core's `Random`.
struct Seeded(fastrand::Rng);

impl Random for Seeded {
    fn unit(&mut self) -> f64 {
        self.0.f64()
    }
}

fn fixed(interval: Duration) -> PollPolicy {
    PollPolicy {
        initial_interval: interval,
        factor: 1.0,
        max_interval: interval,
        jitter: 0.0,
        min_interval: interval.min(Duration::from_millis(500)),
        progress_eta: false,
        ..PollPolicy::default()
    }
}

/// The policies compared, ours first.
pub fn policies() -> Vec<(&'static str, PollPolicy)> {
    vec![
        ("removebgvideo (progress ETA)", PollPolicy::default()),
        ("fixed 2 s (official SDKs)", fixed(Duration::from_secs(2))),
        ("fixed 5 s", fixed(Duration::from_secs(5))),
        (
            "1 s x1.5 to 10 s",
            PollPolicy {
                progress_eta: false,
                ..PollPolicy::default()
            },
        ),
        ("fixed 0.5 s (replicate)", fixed(Duration::from_millis(500))),
    ]
}

/// Video durations in seconds, from 5 s to 15 min.
pub(crate) fn durations(jobs: usize, seed: u64, log_uniform: bool) -> Vec<f64> {
    let mut rng = fastrand::Rng::with_seed(seed);
    (0..jobs)
        .map(|_| {
            let u = rng.f64();
            if log_uniform {
                (SHORTEST_S.ln() + u * (LONGEST_S.ln() - SHORTEST_S.ln())).exp()
            } else {
                SHORTEST_S + u * (LONGEST_S - SHORTEST_S)
            }
        })
        .collect()
}

/// One wait: the polls it took and how long after the job ended (completed, or failed when
/// `fails`) it saw the end.
fn wait(policy: &PollPolicy, video_secs: f64, fails: bool, random: &mut Seeded) -> (u32, Duration) {
    let started_at = Timestamp::from_unix_millis(1_800_000_000_000);
    let run = Run {
        started_at,
        processing: processing_time(&Model::Original, video_secs, &Scenario::Normal),
        outcome: if fails {
            RunOutcome::Fail("simulated".into())
        } else {
            RunOutcome::Complete
        },
    };
    let ended_at = run.ends_at().expect("these runs end");
    let mut poller = Poller::new(policy.clone(), None);
    let mut now = started_at;
    loop {
        let (status, progress) = run.status_at(now);
        let mut job = Job::new("job_bench", status);
        job.progress = Some(progress);
        match poller.on_job(job, now, None, random).step {
            PollStep::PollAt(at) => now = at,
            PollStep::Completed(_) | PollStep::Failed(_) => {
                return (poller.polls(), now.since(ended_at));
            }
            PollStep::DeadlineReached(_) => unreachable!("these waits have no deadline"),
        }
    }
}

fn workload(name: &str, jobs: &[f64], fails: bool, seed: u64) -> Value {
    let results: Vec<Value> = policies()
        .into_iter()
        .map(|(policy_name, policy)| {
            let mut random = Seeded(fastrand::Rng::with_seed(seed));
            let (polls, lags): (Vec<f64>, Vec<f64>) = jobs
                .iter()
                .map(|&secs| {
                    let (polls, lag) = wait(&policy, secs, fails, &mut random);
                    (f64::from(polls), lag.as_secs_f64())
                })
                .unzip();
            json!({
                "name": policy_name,
                "polls_mean": round(mean(&polls), 2),
                "polls_p95": round(percentile(&polls, 0.95), 1),
                "lag_mean_s": round(mean(&lags), 3),
                "lag_p95_s": round(percentile(&lags, 0.95), 3),
                "lag_max_s": round(percentile(&lags, 1.0), 3),
            })
        })
        .collect();
    json!({ "workload": name, "policies": results })
}

pub fn run(jobs: usize, seed: u64) -> Value {
    let log_uniform = durations(jobs, seed, true);
    let uniform = durations(jobs, seed, false);
    let first = workload("log-uniform 5 s to 15 min", &log_uniform, false, seed);
    json!({
        "jobs": jobs,
        "seed": seed,
        "policies": first["policies"],
        "workloads": [
            first,
            workload("uniform 5 s to 15 min", &uniform, false, seed),
            // The sandbox's failing scenario: each job fails 40 % of the way through, which
            // the progress cannot foretell.
            workload("log-uniform, every job failing at 40 %", &log_uniform, true, seed),
        ],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_policy_sees_every_job_complete_and_ours_polls_least() {
        let result = run(60, 7);
        let policies = result["policies"].as_array().unwrap();
        assert_eq!(policies.len(), 5);
        let polls = |i: usize| policies[i]["polls_mean"].as_f64().unwrap();
        for i in 1..policies.len() {
            assert!(polls(0) < polls(i), "{result}");
        }
        let lag = |i: usize| policies[i]["lag_mean_s"].as_f64().unwrap();
        assert!(lag(0) <= lag(1), "{result}");
    }
}
