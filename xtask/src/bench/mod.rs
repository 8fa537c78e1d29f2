//! `cargo xtask bench [--smoke]`: the SDK next to what users would use instead, in one run on
//! one machine. Writes `bench/results/*.json`, the charts in `docs/benchmarks/` and the tables
//! of `docs/benchmarks.md`. `--smoke` runs every step with tiny counts on debug builds and
//! writes under `bench-smoke/` in cargo's target directory instead: CI runs it so the harness cannot rot; it asserts
//! nothing about speed. `--only many` (or any comma-separated steps) measures those steps alone
//! and keeps the last results of the others.

mod many;
mod many_report;
mod measure;
mod report;
mod runner;
mod runner_report;
pub(crate) mod sandbox;
mod tools;
mod workers;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use serde_json::{Value, json};

use crate::process::run_command;
use tools::Tools;

/// How much of each measurement a run does.
pub struct Plan {
    smoke: bool,
    percall_calls: usize,
    percall_rounds: usize,
    coldstart_runs: usize,
    polling_jobs: usize,
    webhook_jobs: usize,
    batch_jobs: usize,
    batch_threads: usize,
    batch_video_seconds: u32,
    batch_rounds: usize,
    download_mib: Vec<u64>,
    download_runs: usize,
    many: many::ManyPlan,
    runner: runner::RunnerPlan,
    workers: workers::WorkersPlan,
}

impl Plan {
    fn full() -> Plan {
        Plan {
            smoke: false,
            percall_calls: 1000,
            percall_rounds: 7,
            coldstart_runs: 21,
            polling_jobs: 2000,
            // At real speed every job takes 4 to 11 s; they run at once.
            webhook_jobs: 200,
            batch_jobs: 500,
            batch_threads: 100,
            // Two-minute clips: about 4 s each on the batch sandbox's clock.
            batch_video_seconds: 120,
            batch_rounds: 3,
            download_mib: vec![128, 1024],
            download_runs: 5,
            many: many::ManyPlan {
                jobs: 10_000,
                limited_jobs: 500,
                // Video durations run to 15 min: the longest job takes 30 s.
                speed: 30.0,
                poll_seconds: 2.0,
                timeout_s: 600,
                // A tenth of the jobs at once.
                limited_rate_per_second: 50.0,
                limited_burst: 50,
            },
            runner: runner::RunnerPlan {
                items: 10_000,
                in_flight: 256,
                speed: 300.0,
            },
            // Two-second jobs, 16 at a time per worker: one worker is bound by its ceiling
            // (8 items/s), so four can go four times as fast if the ledger and the machine
            // keep up.
            workers: workers::WorkersPlan {
                items: 600,
                in_flight: 16,
                speed: 60.0,
                workers: vec![1, 2, 4],
            },
        }
    }

    fn smoke() -> Plan {
        Plan {
            smoke: true,
            percall_calls: 20,
            percall_rounds: 2,
            coldstart_runs: 1,
            polling_jobs: 40,
            webhook_jobs: 6,
            batch_jobs: 6,
            batch_threads: 3,
            batch_video_seconds: 10,
            batch_rounds: 1,
            download_mib: vec![2, 8],
            download_runs: 1,
            many: many::ManyPlan {
                jobs: 30,
                limited_jobs: 20,
                // The longest job takes 0.9 s; reads every 0.25 s keep the run short.
                speed: 1000.0,
                poll_seconds: 0.25,
                timeout_s: 60,
                // Half the jobs at once, so the smoke run meets 429s too.
                limited_rate_per_second: 20.0,
                limited_burst: 10,
            },
            runner: runner::RunnerPlan {
                items: 40,
                in_flight: 16,
                speed: 1000.0,
            },
            workers: workers::WorkersPlan {
                items: 24,
                in_flight: 4,
                speed: 1000.0,
                workers: vec![1, 2, 4],
            },
        }
    }
}

/// Where a run writes: the repository's files, or a scratch copy for the smoke run.
struct Destination {
    results: PathBuf,
    page: PathBuf,
    charts: PathBuf,
}

impl Destination {
    fn new(root: &Path, plan: &Plan) -> Result<Destination, String> {
        let template = root.join("docs/benchmarks.md");
        let destination = if plan.smoke {
            let base = crate::process::target_dir(root)?.join("bench-smoke");
            let _ = std::fs::remove_dir_all(&base);
            let page = base.join("docs/benchmarks.md");
            std::fs::create_dir_all(base.join("docs")).map_err(|e| e.to_string())?;
            std::fs::copy(&template, &page).map_err(|e| format!("{}: {e}", template.display()))?;
            Destination {
                results: base.join("results"),
                page,
                charts: base.join("docs/benchmarks"),
            }
        } else {
            Destination {
                results: root.join("bench/results"),
                page: template,
                charts: root.join("docs/benchmarks"),
            }
        };
        for dir in [&destination.results, &destination.charts] {
            std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
        }
        Ok(destination)
    }
}

fn version(program: &str, arg: &str) -> String {
    Command::new(program)
        .arg(arg)
        .output()
        .ok()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .next()
                .unwrap_or_default()
                .trim()
                .to_owned()
        })
        .unwrap_or_else(|| "unknown".into())
}

fn meta(root: &Path, tools: &Tools, seconds: f64) -> Value {
    // "-dirty" when the measured code is not all committed.
    let commit = Command::new("git")
        .args(["describe", "--always", "--dirty"])
        .current_dir(root)
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    json!({
        "date": version("date", "-u"),
        "commit": commit,
        "cpus": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        "profile": tools.profile,
        "rustc": version("rustc", "-V"),
        "python": version(tools.python.to_str().unwrap_or("python3"), "-V"),
        "node": version("node", "-v"),
        "curl": version("curl", "-V")
            .split_whitespace()
            .take(2)
            .collect::<Vec<_>>()
            .join(" "),
        "measuring_seconds": (seconds * 10.0).round() / 10.0,
    })
}

type Step = fn(&Path, &Tools, &Plan) -> Result<Value, String>;

/// The steps (and result files) of a run, in order.
fn steps() -> [(&'static str, Step); 9] {
    [
        ("percall", measure::percall),
        ("coldstart", |_, tools, plan| {
            measure::coldstart(tools, plan)
        }),
        ("polling", |_, tools, plan| measure::polling(tools, plan)),
        ("webhooks", |_, tools, plan| measure::webhooks(tools, plan)),
        ("batch", measure::batch),
        ("download", measure::download),
        ("many", many::many_jobs),
        ("runner", runner::runner),
        ("workers", workers::workers),
    ]
}

/// The steps `--only` names, checked; every step when it names none.
fn chosen(only: &[String]) -> Result<Vec<&'static str>, String> {
    let names: Vec<&'static str> = steps().iter().map(|(name, _)| *name).collect();
    if only.is_empty() {
        return Ok(names);
    }
    only.iter()
        .map(|wanted| {
            names
                .iter()
                .find(|name| **name == wanted.as_str())
                .copied()
                .ok_or_else(|| {
                    format!(
                        "--only: no step {wanted:?}; the steps are {}",
                        names.join(", ")
                    )
                })
        })
        .collect()
}

/// `cargo xtask bench [--smoke] [--only STEP,...]`. With `--only`, the other sections keep
/// their last results: the full run's `bench/results/*.json` (also for a smoke run, whose own
/// results start empty), so the page and the goals can still be written whole.
pub fn run(root: &Path, smoke: bool, only: &[String]) -> Result<(), String> {
    let started = Instant::now();
    let chosen = chosen(only)?;
    let plan = if smoke { Plan::smoke() } else { Plan::full() };
    let destination = Destination::new(root, &plan)?;
    println!("==> building and installing what the run measures");
    let tools = Tools::prepare(root, !plan.smoke)?;
    let measuring = Instant::now();
    let mut results = report::Results::new();
    for (name, step) in steps() {
        if !chosen.contains(&name) {
            let kept = root.join("bench/results").join(format!("{name}.json"));
            let text = std::fs::read_to_string(&kept)
                .map_err(|e| format!("{}: {e} (run the whole bench once)", kept.display()))?;
            let value =
                serde_json::from_str(&text).map_err(|e| format!("{}: {e}", kept.display()))?;
            results.insert(name, value);
            continue;
        }
        let step_started = Instant::now();
        println!("==> {name}");
        let value = step(root, &tools, &plan).map_err(|e| format!("bench {name}: {e}"))?;
        println!(
            "<== {name} in {:.1} s",
            step_started.elapsed().as_secs_f64()
        );
        results.insert(name, value);
    }
    let now = meta(root, &tools, measuring.elapsed().as_secs_f64());
    let meta = if only.is_empty() {
        now
    } else {
        // The run table stays the whole run's; a later partial run adds a line of its own.
        let kept = root.join("bench/results/meta.json");
        let mut kept: Value = std::fs::read_to_string(&kept)
            .ok()
            .and_then(|text| serde_json::from_str(&text).ok())
            .unwrap_or_else(|| json!({}));
        let line = format!(
            "{} on {} ({} s measuring)",
            now["commit"].as_str().unwrap_or_default(),
            now["date"].as_str().unwrap_or_default(),
            now["measuring_seconds"]
        );
        kept[format!("measured later: {}", chosen.join(", "))] = json!(line);
        kept
    };
    results.insert("meta", meta);
    for (name, value) in &results {
        let text = serde_json::to_string_pretty(value).expect("JSON") + "\n";
        let path = destination.results.join(format!("{name}.json"));
        std::fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    run_command(
        Command::new(&tools.python)
            .arg(root.join("bench/python/charts.py"))
            .arg(&destination.results)
            .arg(&destination.charts),
    )?;
    let page = std::fs::read_to_string(&destination.page).map_err(|e| e.to_string())?;
    let sections = report::sections(&results)?;
    let page = report::render(&page, &sections)?;
    std::fs::write(&destination.page, page).map_err(|e| e.to_string())?;
    for (name, body) in &sections {
        if *name == "goals" {
            println!("{body}");
        }
    }
    println!(
        "bench done in {:.1} s ({:.1} s measuring): {}",
        started.elapsed().as_secs_f64(),
        measuring.elapsed().as_secs_f64(),
        destination.page.display()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_names_existing_steps_in_the_runs_order() {
        assert_eq!(
            chosen(&[]).unwrap(),
            [
                "percall",
                "coldstart",
                "polling",
                "webhooks",
                "batch",
                "download",
                "many",
                "runner",
                "workers"
            ]
        );
        assert_eq!(chosen(&["many".into()]).unwrap(), ["many"]);
        let unknown = chosen(&["manyjobs".into()]).unwrap_err();
        assert!(
            unknown.contains("\"manyjobs\"") && unknown.contains("many"),
            "{unknown}"
        );
    }
}
