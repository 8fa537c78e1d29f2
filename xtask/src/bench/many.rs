//! Step 6, many jobs waited at once: per language, the SDK next to what a careful user writes
//! without it, each on jobs of its own, freshly created on a sandbox of its own.
//!
//! A run: start the sandbox (a separate process, fast clock), create the jobs with
//! `removebgvideo-bench create-jobs` (concurrently, outside the measured part; durations and
//! failures by job, as in the polling section), read the sandbox's counters, run the contender
//! (which reports its own CPU, memory, threads, loop stall and every job's end), read the
//! counters again. Every job must end in its true state: a job reported in the other terminal
//! state fails the whole bench at once (a wrong answer is a bug, never a figure); a contender
//! that crashes, overruns its time or leaves jobs unended gives a row marked failed, with what
//! it could measure, so the run survives and the goal checks show the miss.
//!
//! Then the same with the rate-limited key and fewer jobs: the 429s as a share of requests.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::Plan;
use super::sandbox::{SandboxProcess, Stats};
use super::tools::Tools;
use crate::process::capture_json;

/// Seed of the durations and failures (the polling section's).
const SEED: u64 = 7;
/// Requests in flight at once for the hand-written contenders (and their pooled connections):
/// what a careful user picks so that thousands of jobs do not open thousands of connections.
pub const CONCURRENCY: usize = 100;
/// The sandbox's rate-limited key. The preset allows 1 request per second, under which 500
/// jobs would take minutes to create and every contender would do nothing but wait; the
/// rate-limited run gives the same key the plan's limit instead.
const LIMITED_KEY: &str = "rbv_sandbox_rate_limited";

/// How much of the section a run does.
#[derive(Clone, Debug)]
pub struct ManyPlan {
    pub jobs: usize,
    pub limited_jobs: usize,
    /// The sandbox clock's speed.
    pub speed: f64,
    /// The hand-written contenders' interval between reads of a job.
    pub poll_seconds: f64,
    /// Each wait's limit; the harness stops a contender a minute after it.
    pub timeout_s: u64,
    /// The rate-limited key's requests per second and burst in the second run.
    pub limited_rate_per_second: f64,
    pub limited_burst: u32,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Role {
    Sdk,
    Alternative,
}

/// One contender: its language, role and the mode its script or subcommand takes.
struct Contender {
    language: &'static str,
    role: Role,
    mode: &'static str,
}

const CONTENDERS: [Contender; 6] = [
    Contender {
        language: "python",
        role: Role::Sdk,
        mode: "sdk",
    },
    Contender {
        language: "python",
        role: Role::Alternative,
        mode: "httpx",
    },
    Contender {
        language: "node",
        role: Role::Sdk,
        mode: "sdk",
    },
    Contender {
        language: "node",
        role: Role::Alternative,
        mode: "fetch",
    },
    Contender {
        language: "rust",
        role: Role::Sdk,
        mode: "engine",
    },
    Contender {
        language: "rust",
        role: Role::Alternative,
        mode: "threads",
    },
];

/// The two runs of the section.
struct Scenario {
    name: &'static str,
    jobs: usize,
    rate_limited: bool,
}

/// How the jobs a contender waited for ended, next to the ends the sandbox was told to give.
#[derive(Clone, Debug, PartialEq)]
pub struct Tally {
    pub completed: usize,
    pub failed: usize,
    /// Waits that ended otherwise (an error, the time limit): jobs lost to the caller.
    pub not_ended: usize,
    pub first_not_ended: Option<String>,
}

/// Compares a contender's ends (in the jobs file's order) with the true ones. A job reported
/// in the other terminal state, or a list that does not match the file, is an error.
pub fn judge(expected: &[(String, String)], ends: &[Value]) -> Result<Tally, String> {
    if ends.len() != expected.len() {
        return Err(format!(
            "{} ends reported for {} jobs",
            ends.len(),
            expected.len()
        ));
    }
    let mut tally = Tally {
        completed: 0,
        failed: 0,
        not_ended: 0,
        first_not_ended: None,
    };
    for ((id, truth), end) in expected.iter().zip(ends) {
        let end = end
            .as_str()
            .ok_or_else(|| format!("{id}: an end that is not text: {end}"))?;
        match end {
            "completed" | "failed" if end != truth => {
                return Err(format!(
                    "{id} was reported {end}, but the sandbox made it {truth}"
                ));
            }
            "completed" => tally.completed += 1,
            "failed" => tally.failed += 1,
            other => {
                tally.not_ended += 1;
                if tally.first_not_ended.is_none() {
                    tally.first_not_ended = Some(format!("{id}: {other}"));
                }
            }
        }
    }
    Ok(tally)
}

/// The `ID STATUS` lines of a jobs file.
fn read_expected(path: &Path) -> Result<Vec<(String, String)>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    text.lines()
        .filter(|line| !line.trim().is_empty())
        .map(
            |line| match line.split_whitespace().collect::<Vec<_>>()[..] {
                [id, status] => Ok((id.to_owned(), status.to_owned())),
                _ => Err(format!("{}: not `ID STATUS`: {line:?}", path.display())),
            },
        )
        .collect()
}

/// `Threads:` of a process, while it lives.
fn threads_of(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("Threads:"))?
        .trim()
        .parse()
        .ok()
}

/// What a contender process gave (its JSON, or why there is none), and the most threads it was
/// seen with from outside, sampled every 10 ms: a loop's own probe cannot sample while the
/// loop is stalled, when threads may come and go.
fn run_with_limit(
    mut command: Command,
    out: &Path,
    limit: Duration,
) -> (Result<Value, String>, Option<u64>) {
    let mut peak = None;
    let outcome = (|| {
        let stdout = File::create(out).map_err(|e| format!("{}: {e}", out.display()))?;
        let mut child = command
            .stdout(stdout)
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("could not start {command:?}: {e}"))?;
        let started = Instant::now();
        let status = loop {
            if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
                break status;
            }
            if let Some(threads) = threads_of(child.id()) {
                peak = peak.max(Some(threads));
            }
            if started.elapsed() > limit {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("stopped after {} s", limit.as_secs()));
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        if !status.success() {
            return Err(format!("exited with {status} (its stderr is above)"));
        }
        let text = std::fs::read_to_string(out).map_err(|e| e.to_string())?;
        serde_json::from_str(&text).map_err(|e| format!("printed no JSON ({e})"))
    })();
    (outcome, peak)
}

fn contender_command(
    root: &Path,
    tools: &Tools,
    contender: &Contender,
    sandbox: &SandboxProcess,
    key: &str,
    jobs_file: &Path,
    plan: &ManyPlan,
) -> Command {
    let timeout = plan.timeout_s.to_string();
    let mut command = match contender.language {
        "python" => {
            let mut c = Command::new(&tools.python);
            c.arg(root.join("bench/python/many.py"));
            c
        }
        "node" => {
            let mut c = Command::new("node");
            c.arg(root.join("bench/node/many.js"))
                .arg("--sdk")
                .arg(&tools.node_sdk);
            c
        }
        _ => {
            let mut c = Command::new(&tools.bench);
            c.arg("many-wait");
            c
        }
    };
    command
        .args(["--mode", contender.mode])
        .args(["--base-url", &sandbox.base_url, "--key", key])
        .arg("--jobs-file")
        .arg(jobs_file)
        .args(["--timeout", &timeout]);
    if contender.language != "rust" {
        command
            .args(["--poll-seconds", &plan.poll_seconds.to_string()])
            .args(["--concurrency", &CONCURRENCY.to_string()]);
    }
    command
}

fn round(value: f64, decimals: i32) -> f64 {
    let scale = 10f64.powi(decimals);
    (value * scale).round() / scale
}

/// One report row from a contender's outcome, the tally of its ends and the sandbox's counts.
fn row(
    contender: &Contender,
    outcome: Result<Value, String>,
    expected: &[(String, String)],
    sent: Stats,
    created: &Value,
) -> Result<Value, String> {
    let jobs = expected.len();
    let name = |figures: &Value| {
        figures["flow"]
            .as_str()
            .map(str::to_owned)
            .unwrap_or_else(|| format!("{} ({})", contender.mode, contender.language))
    };
    let (mut row, failure) = match outcome {
        Ok(mut figures) => {
            // The ends are judged here and not kept: 10,000 of them say nothing more.
            let ends = figures
                .as_object_mut()
                .and_then(|fields| fields.remove("statuses"))
                .ok_or_else(|| {
                    format!(
                        "{} ({}) reported no ends",
                        name(&figures),
                        contender.language
                    )
                })?;
            let ends = ends.as_array().cloned().unwrap_or_default();
            let tally = judge(expected, &ends)
                .map_err(|e| format!("{} ({}): {e}", name(&figures), contender.language))?;
            figures["completed"] = json!(tally.completed);
            figures["failed"] = json!(tally.failed);
            figures["not_ended"] = json!(tally.not_ended);
            let failure = tally.first_not_ended.map(|first| {
                format!(
                    "{} of {jobs} jobs did not end in their state (first: {first})",
                    tally.not_ended
                )
            });
            (figures, failure)
        }
        Err(why) => (json!({ "not_ended": jobs }), Some(why)),
    };
    row["flow"] = json!(name(&row));
    row["language"] = json!(contender.language);
    row["role"] = json!(if contender.role == Role::Sdk {
        "sdk"
    } else {
        "alternative"
    });
    row["jobs"] = json!(jobs);
    row["ok"] = json!(failure.is_none());
    row["failure"] = json!(failure);
    row["requests"] = json!(sent.requests);
    row["requests_per_job"] = json!(round(sent.requests as f64 / jobs as f64, 2));
    row["rate_limited"] = json!(sent.rate_limited);
    row["share_429"] = json!(if sent.requests == 0 {
        0.0
    } else {
        round(sent.rate_limited as f64 / sent.requests as f64, 4)
    });
    row["creation_s"] = created["creation_s"].clone();
    row["ended_before_waits"] = created["ended_before_waits"].clone();
    Ok(row)
}

/// A sandbox configuration giving the rate-limited key the run's limit.
fn limited_config(dir: &Path, plan: &ManyPlan) -> Result<PathBuf, String> {
    let path = dir.join("rate-limited.json");
    let config = json!({
        "keys": [{
            "key": LIMITED_KEY,
            "credits": 1e12,
            "rate_per_second": plan.limited_rate_per_second,
            "burst": plan.limited_burst,
        }]
    });
    std::fs::write(&path, config.to_string()).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(path)
}

fn one_run(
    root: &Path,
    tools: &Tools,
    plan: &ManyPlan,
    scenario: &Scenario,
    contender: &Contender,
    scratch: &Path,
) -> Result<Value, String> {
    let config = if scenario.rate_limited {
        Some(limited_config(scratch, plan)?)
    } else {
        None
    };
    let sandbox = SandboxProcess::start_with(&tools.sandbox, plan.speed, config.as_deref())?;
    let key = if scenario.rate_limited {
        if sandbox.rate_limited_key != LIMITED_KEY {
            return Err(format!(
                "the sandbox's rate-limited key is {:?}, not {LIMITED_KEY:?}: update many.rs",
                sandbox.rate_limited_key
            ));
        }
        LIMITED_KEY
    } else {
        sandbox.demo_key.as_str()
    };
    let jobs_file = scratch.join("jobs.txt");
    let mut create = Command::new(&tools.bench);
    create
        .arg("create-jobs")
        .args(["--base-url", &sandbox.base_url, "--key", key])
        .args(["--jobs", &scenario.jobs.to_string()])
        .args(["--seed", &SEED.to_string()])
        .args(["--speed", &plan.speed.to_string()])
        .arg("--out")
        .arg(&jobs_file);
    if scenario.rate_limited {
        // At the key's rate: no creation meets a 429, the bucket is full when the waits begin,
        // and the jobs are lengthened by the time creating them takes.
        create.args(["--pace", &plan.limited_rate_per_second.to_string()]);
    }
    let created = capture_json(&mut create)?;
    let expected = read_expected(&jobs_file)?;
    let before = sandbox.stats()?;
    let command = contender_command(root, tools, contender, &sandbox, key, &jobs_file, plan);
    let limit = Duration::from_secs(plan.timeout_s + 60);
    let (outcome, seen_outside) = run_with_limit(command, &scratch.join("contender.json"), limit);
    let sent = sandbox.stats()?.since(before);
    let mut row = row(contender, outcome, &expected, sent, &created)?;
    row["peak_threads_outside"] = json!(seen_outside);
    // Python's and Node's probes run on the loop; Rust's sampler is a thread of its own (which
    // the outside count would include).
    if contender.language != "rust"
        && let (Some(own), Some(outside)) = (row["peak_threads"].as_u64(), seen_outside)
    {
        row["peak_threads"] = json!(own.max(outside));
    }
    if let Some(failure) = row["failure"].as_str() {
        println!(
            "    !! {} ({}), {}: FAILED: {failure}",
            row["flow"].as_str().unwrap_or_default(),
            contender.language,
            scenario.name
        );
    }
    Ok(row)
}

pub fn many_jobs(root: &Path, tools: &Tools, plan: &Plan) -> Result<Value, String> {
    let plan = &plan.many;
    let scratch = crate::process::target_dir(root)?.join("bench-many");
    std::fs::create_dir_all(&scratch).map_err(|e| e.to_string())?;
    let scenarios = [
        Scenario {
            name: "all at once",
            jobs: plan.jobs,
            rate_limited: false,
        },
        Scenario {
            name: "rate-limited key",
            jobs: plan.limited_jobs,
            rate_limited: true,
        },
    ];
    let mut runs = Vec::new();
    for scenario in &scenarios {
        let mut rows = Vec::new();
        for contender in &CONTENDERS {
            let started = Instant::now();
            let row = one_run(root, tools, plan, scenario, contender, &scratch)?;
            println!(
                "    {} / {} {}: {:.1} s",
                scenario.name,
                contender.language,
                contender.mode,
                started.elapsed().as_secs_f64()
            );
            rows.push(row);
        }
        runs.push(json!({
            "scenario": scenario.name,
            "jobs": scenario.jobs,
            "rate_limited": scenario.rate_limited,
            "rows": rows,
        }));
    }
    let _ = std::fs::remove_dir_all(&scratch);
    Ok(json!({
        "speed": plan.speed,
        "seed": SEED,
        "poll_seconds": plan.poll_seconds,
        "concurrency": CONCURRENCY,
        "timeout_s": plan.timeout_s,
        "limited_rate_per_second": plan.limited_rate_per_second,
        "limited_burst": plan.limited_burst,
        "runs": runs,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expected(ends: &[&str]) -> Vec<(String, String)> {
        ends.iter()
            .enumerate()
            .map(|(i, end)| (format!("job_{i}"), (*end).to_owned()))
            .collect()
    }

    #[test]
    fn ends_are_judged_against_the_true_ones() {
        let truth = expected(&["completed", "failed", "completed"]);
        let tally = judge(
            &truth,
            &[json!("completed"), json!("failed"), json!("timeout")],
        )
        .unwrap();
        assert_eq!(
            tally,
            Tally {
                completed: 1,
                failed: 1,
                not_ended: 1,
                first_not_ended: Some("job_2: timeout".into())
            }
        );
        let wrong = judge(
            &truth,
            &[json!("completed"), json!("completed"), json!("completed")],
        );
        assert!(wrong.unwrap_err().contains("job_1 was reported completed"));
        assert!(
            judge(&truth, &[json!("completed")])
                .unwrap_err()
                .contains("1 ends reported for 3")
        );
        assert!(judge(&truth, &[json!(1), json!(2), json!(3)]).is_err());
    }

    #[test]
    fn a_row_marks_lost_jobs_and_crashes_failed_and_counts_the_429_share() {
        let truth = expected(&["completed", "failed"]);
        let sent = Stats {
            requests: 8,
            rate_limited: 2,
        };
        let created = json!({ "creation_s": 0.1, "ended_before_waits": 0 });
        let figures = json!({ "flow": "f", "wall_s": 1.0, "statuses": ["completed", "error: rate_limited: x"] });
        let lost = row(&CONTENDERS[0], Ok(figures), &truth, sent, &created).unwrap();
        assert_eq!(lost["ok"], false);
        assert_eq!(lost["not_ended"], 1);
        assert!(lost["failure"].as_str().unwrap().contains("1 of 2 jobs"));
        assert_eq!(
            (
                lost["requests_per_job"].as_f64(),
                lost["share_429"].as_f64()
            ),
            (Some(4.0), Some(0.25))
        );
        assert!(lost.get("statuses").is_none(), "the ends are not kept");

        let crashed = row(
            &CONTENDERS[2],
            Err("exited with 134".into()),
            &truth,
            sent,
            &created,
        )
        .unwrap();
        assert_eq!(
            (crashed["ok"].clone(), crashed["failure"].clone()),
            (json!(false), json!("exited with 134"))
        );
        assert_eq!(
            (crashed["language"].clone(), crashed["role"].clone()),
            (json!("node"), json!("sdk"))
        );

        let fine = json!({ "flow": "f", "statuses": ["completed", "failed"] });
        let fine = row(&CONTENDERS[1], Ok(fine), &truth, sent, &created).unwrap();
        assert_eq!(
            (fine["ok"].clone(), fine["role"].clone()),
            (json!(true), json!("alternative"))
        );
    }
}
