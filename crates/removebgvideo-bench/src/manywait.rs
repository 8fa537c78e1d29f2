//! `many-wait`: every job of a `create-jobs` file waited for at once by the Rust client, in one
//! of two ways:
//!
//! - `threads`: what a Rust user writes today, one OS thread per job, each calling
//!   `Client::wait`.
//! - `engine`: the SDK's own way of waiting for many jobs, [`watch`]: one job set that yields
//!   each job's result as it finishes. Until the engine of issue 13 lands, `watch` is a
//!   stand-in built from threads (the same as `threads`), so today the two rows measure the
//!   same thing; the swap is one call (see [`watch`]).
//!
//! Prints one JSON object: wall and CPU seconds of the waiting (the process's own, from the
//! kernel), peak RSS, peak OS threads, and every job's end in the file's order (`completed`,
//! `failed`, or `error: CODE: message` for a wait that ended otherwise, `timeout` for one that
//! had not ended when the whole set's time was up).

use std::sync::mpsc;
use std::time::{Duration, Instant};

use removebgvideo::{Client, Error, ErrorCode, Job, WaitLimit, WaitOptions};
use serde_json::{Value, json};

use crate::probe::{ThreadPeak, cpu_seconds};
use crate::stats::{peak_rss_mib, round};

/// A job's result as a waiter reports it.
pub type Finished = (String, Result<Job, Error>);

/// The ids of a `create-jobs` file (its first column).
pub fn read_ids(path: &std::path::Path) -> Result<Vec<String>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let ids: Vec<String> = text
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .map(str::to_owned)
        .collect();
    if ids.is_empty() {
        return Err(format!("{} lists no jobs", path.display()));
    }
    Ok(ids)
}

/// How one wait ended, as every contender of the section reports it.
pub fn end_of(result: &Result<Job, Error>) -> String {
    match result {
        Ok(job) => job.status.as_str().to_owned(),
        Err(error) if error.code == ErrorCode::JobFailed => "failed".into(),
        Err(error) => format!("error: {}: {}", error.code.as_str(), error.message),
    }
}

/// One OS thread per job, each in `Client::wait`; results arrive on the channel as they end.
/// A thread that cannot be started is that job's error.
fn thread_per_wait(
    client: &Client,
    job_ids: &[String],
    options: &WaitOptions,
) -> mpsc::Receiver<Finished> {
    let (sender, finished) = mpsc::channel();
    for id in job_ids {
        let (client, job_id, options, to_collector) =
            (client.clone(), id.clone(), options.clone(), sender.clone());
        let spawned = std::thread::Builder::new()
            .name("wait".into())
            .spawn(move || {
                let result = client.wait(&job_id, &options);
                let _ = to_collector.send((job_id, result));
            });
        if let Err(error) = spawned {
            let error = Error::new(ErrorCode::SdkBug, format!("cannot start a thread: {error}"));
            let _ = sender.send((id.clone(), Err(error)));
        }
    }
    finished
}

/// The SDK-engine side of the section: every job handed to one job set on the client's engine
/// (a scheduler and a few HTTP workers), results taken as the jobs finish.
pub fn watch(
    client: &Client,
    job_ids: &[String],
    options: &WaitOptions,
) -> impl Iterator<Item = Finished> {
    client.watch(job_ids.iter().cloned(), options)
}

/// The engine row's name in the report.
const ENGINE_FLOW: &str = "removebgvideo engine (Client::watch)";

/// Each job's end, in `job_ids`' order; `timeout` for those not ended by `deadline`.
fn collect(
    job_ids: &[String],
    finished: impl Iterator<Item = Finished>,
    deadline: Instant,
) -> Vec<String> {
    let position: std::collections::HashMap<&str, usize> = job_ids
        .iter()
        .enumerate()
        .map(|(i, id)| (id.as_str(), i))
        .collect();
    let mut ends = vec![None; job_ids.len()];
    let mut left = job_ids.len();
    for (id, result) in finished {
        if let Some(&i) = position.get(id.as_str())
            && ends[i].is_none()
        {
            ends[i] = Some(end_of(&result));
            left -= 1;
        }
        if left == 0 || Instant::now() >= deadline {
            break;
        }
    }
    ends.into_iter()
        .map(|end| end.unwrap_or_else(|| "timeout".into()))
        .collect()
}

pub fn run(
    base_url: &str,
    key: &str,
    jobs_file: &std::path::Path,
    mode: &str,
    timeout: Duration,
) -> Result<Value, String> {
    let job_ids = read_ids(jobs_file)?;
    let flow = match mode {
        "threads" => "a thread per Client::wait",
        "engine" => ENGINE_FLOW,
        other => return Err(format!("--mode must be threads or engine (got {other:?})")),
    };
    let client = Client::builder()
        .api_key(key)
        .base_url(base_url)
        .build()
        .map_err(|e| e.to_string())?;
    let options = WaitOptions {
        limit: WaitLimit::After(timeout),
        ..WaitOptions::default()
    };
    let threads = ThreadPeak::start();
    let cpu_before = cpu_seconds()?;
    let started = Instant::now();
    let deadline = started + timeout + Duration::from_secs(30);
    let ends = if mode == "engine" {
        collect(&job_ids, watch(&client, &job_ids, &options), deadline)
    } else {
        collect(
            &job_ids,
            thread_per_wait(&client, &job_ids, &options).into_iter(),
            deadline,
        )
    };
    let wall = started.elapsed().as_secs_f64();
    let cpu = cpu_seconds()? - cpu_before;
    let peak_threads = threads.stop();
    Ok(json!({
        "language": "rust",
        "flow": flow,
        "jobs": job_ids.len(),
        "wall_s": round(wall, 3),
        "cpu_s": round(cpu, 3),
        "cpu_s_per_job": round(cpu / job_ids.len() as f64, 6),
        "peak_rss_mib": peak_rss_mib().map(|m| round(m, 1)),
        "peak_threads": peak_threads,
        "stall_max_ms": null,
        "statuses": ends,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use removebgvideo::JobStatus;

    #[test]
    fn ends_are_in_the_files_order_and_unended_jobs_time_out() {
        let ids: Vec<String> = ["a", "b", "c"].map(String::from).to_vec();
        let mut failed = Error::new(ErrorCode::JobFailed, "the job failed");
        failed.job = Some(Box::new(Job::new("b", JobStatus::Failed)));
        let finished = vec![
            ("b".to_owned(), Err(failed)),
            ("a".to_owned(), Ok(Job::new("a", JobStatus::Completed))),
            (
                "stranger".to_owned(),
                Ok(Job::new("stranger", JobStatus::Completed)),
            ),
        ];
        let far = Instant::now() + Duration::from_secs(60);
        assert_eq!(
            collect(&ids, finished.into_iter(), far),
            ["completed", "failed", "timeout"]
        );
        let limited = Error::new(ErrorCode::RateLimited, "slow down");
        assert_eq!(end_of(&Err(limited)), "error: rate_limited: slow down");
    }
}
