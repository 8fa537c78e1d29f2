//! Many workers, one batch: the same N items run by 1, 2 and 4 worker processes
//! (`removebgvideo-bench batch-worker`, the library `batch run` is made of) on one PostgreSQL
//! ledger (a real server, started here) and one sandbox process. Each worker loads the
//! manifest and claims its share; the batch's throughput is its items over the last worker's
//! wall time. Each worker reports its claims and what each transition cost it in the ledger
//! (its step plus its share of its group's commit, on PostgreSQL).

use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::{Value, json};

use super::sandbox::SandboxProcess;
use super::tools::Tools;

/// How much a run does.
pub struct WorkersPlan {
    pub items: usize,
    /// Per worker: a single worker is bound by it (not by the CPU), so more workers can go
    /// faster where the server keeps up.
    pub in_flight: usize,
    pub speed: f64,
    pub workers: Vec<usize>,
}

/// Two-minute clips: two seconds each on the clock of the full run.
const VIDEO_URL: &str = "https://example.com/workers.mp4?duration=120";
/// Output bytes per second of video: 240 KB for a two-minute clip.
const OUTPUT_BYTES_PER_SECOND: u64 = 2_000;

pub fn workers(root: &Path, tools: &Tools, plan: &super::Plan) -> Result<Value, String> {
    let plan = &plan.workers;
    let scratch = crate::process::target_dir(root)?.join("bench-workers");
    let _ = std::fs::remove_dir_all(&scratch);
    std::fs::create_dir_all(&scratch).map_err(|e| e.to_string())?;
    let manifest = scratch.join("manifest.jsonl");
    let rows: Vec<String> = (0..plan.items)
        .map(|i| {
            json!({ "key": format!("item-{i}"), "video_url": format!("{VIDEO_URL}&item={i}") })
                .to_string()
        })
        .collect();
    std::fs::write(&manifest, rows.join("\n") + "\n").map_err(|e| e.to_string())?;
    let postgres = removebgvideo_testpg::TestPostgres::start()?;
    // Outputs of a few hundred kilobytes: what is measured is the shared ledger and the
    // claims, and 24 MB per item (the sandbox's default for two minutes of video) makes the
    // runs mostly hashing and copying on two cores, whose waits for a core then show up in
    // every ledger call's wall time. Large downloads have their own step (`download`).
    let config = scratch.join("sandbox.json");
    let sandbox_config = json!({ "output_bytes_per_second": OUTPUT_BYTES_PER_SECOND });
    std::fs::write(&config, sandbox_config.to_string()).map_err(|e| e.to_string())?;
    let sandbox = SandboxProcess::start_with(&tools.sandbox, plan.speed, Some(&config))?;
    let mut runs = Vec::new();
    for &count in &plan.workers {
        // A batch of its own per row, in the one database.
        let batch = format!("workers-{count}");
        let before = sandbox.stats()?;
        let children: Vec<_> = (0..count)
            .map(|n| {
                Command::new(&tools.bench)
                    .arg("batch-worker")
                    .args(sandbox.client_args())
                    .args(["--ledger", &postgres.url(), "--batch", &batch])
                    .arg("--manifest")
                    .arg(&manifest)
                    .args(["--in-flight", &plan.in_flight.to_string(), "--out"])
                    .arg(scratch.join(format!("{batch}-{n}")))
                    .stdout(Stdio::piped())
                    .stderr(Stdio::inherit())
                    .spawn()
                    .map_err(|e| format!("batch-worker: {e}"))
            })
            .collect::<Result<_, _>>()?;
        let mut reports = Vec::new();
        for child in children {
            let output = child.wait_with_output().map_err(|e| e.to_string())?;
            if !output.status.success() {
                return Err(format!("a batch-worker failed ({})", output.status));
            }
            let report: Value = serde_json::from_slice(&output.stdout)
                .map_err(|e| format!("batch-worker printed no JSON: {e}"))?;
            reports.push(report);
        }
        let sent = sandbox.stats()?.since(before);
        let wall = reports
            .iter()
            .map(|r| r["wall_s"].as_f64().unwrap_or_default())
            .fold(0.0, f64::max);
        let sum = |field: &str| -> f64 {
            reports
                .iter()
                .map(|r| r[field].as_f64().unwrap_or_default())
                .sum()
        };
        let worst = |field: &str| -> f64 {
            reports
                .iter()
                .map(|r| r[field].as_f64().unwrap_or_default())
                .fold(0.0, f64::max)
        };
        let median = |field: &str| -> f64 {
            let mut values: Vec<f64> = reports
                .iter()
                .map(|r| r[field].as_f64().unwrap_or_default())
                .collect();
            values.sort_by(f64::total_cmp);
            values[values.len() / 2]
        };
        println!("    {count} worker(s): {wall:.1} s");
        runs.push(json!({
            "workers": count,
            "wall_s": wall,
            "items_per_s": plan.items as f64 / wall.max(1e-9),
            "claims": sum("claims"),
            "claims_per_s": sum("claims") / wall.max(1e-9),
            "transitions": sum("transitions"),
            "transition_p50_us": median("ledger_commit_p50_us"),
            "transition_p99_us": worst("ledger_commit_p99_us"),
            "transition_max_us": worst("ledger_commit_max_us"),
            "cpu_s": sum("cpu_s"),
            "requests_per_item": sent.requests as f64 / plan.items as f64,
            "rate_limited": sent.rate_limited,
            "per_worker": reports,
        }));
    }
    let _ = std::fs::remove_dir_all(&scratch);
    Ok(json!({
        "items": plan.items,
        "in_flight_per_worker": plan.in_flight,
        "speed": plan.speed,
        "video_url": VIDEO_URL,
        "runs": runs,
    }))
}

/// The table of `docs/benchmarks.md`.
pub fn section(workers: &Value) -> String {
    let rows = super::report::rows_of(&workers["runs"], |r| {
        vec![
            format!("{}", r["workers"]),
            format!("{:.1}", super::report::num(&r["wall_s"])),
            format!("{:.1}", super::report::num(&r["items_per_s"])),
            format!("{:.1}", super::report::num(&r["claims_per_s"])),
            format!(
                "{:.0} / {:.0}",
                super::report::num(&r["transition_p50_us"]),
                super::report::num(&r["transition_p99_us"])
            ),
            format!("{:.1}", super::report::num(&r["requests_per_item"])),
            format!("{}", r["rate_limited"]),
        ]
    });
    format!(
        "{} items, {} in flight per worker, sandbox clock x{}, video `{}`; one PostgreSQL 15 server on the same machine.\n\n{}",
        workers["items"],
        workers["in_flight_per_worker"],
        workers["speed"],
        workers["video_url"].as_str().unwrap_or_default(),
        super::report::table(
            &[
                "workers",
                "wall s",
                "items/s",
                "claims/s",
                "ledger per transition p50 / p99 us",
                "requests/item",
                "429s",
            ],
            rows
        )
    )
}

/// The run with `count` workers.
fn run_of(workers: &Value, count: u64) -> Option<&Value> {
    workers["runs"]
        .as_array()?
        .iter()
        .find(|r| r["workers"].as_u64() == Some(count))
}

/// Issue 16's goals: 5 ms or less per transition at p99 on PostgreSQL, and 4 workers at 3x or
/// more the throughput of one.
pub fn goals(workers: &Value) -> Vec<super::report::Goal> {
    use super::report::{Goal, num};
    let (Some(one), Some(four)) = (run_of(workers, 1), run_of(workers, 4)) else {
        return Vec::new();
    };
    let worst_p99 = workers["runs"]
        .as_array()
        .map(|runs| {
            runs.iter()
                .map(|r| num(&r["transition_p99_us"]))
                .fold(0.0, f64::max)
        })
        .unwrap_or(f64::NAN);
    let speedup = num(&four["items_per_s"]) / num(&one["items_per_s"]);
    vec![
        Goal {
            goal: "PostgreSQL ledger: <= 5 ms per transition at p99",
            measured: format!(
                "{:.2} ms (worst of every worker of every row)",
                worst_p99 / 1000.0
            ),
            met: worst_p99 <= 5000.0,
        },
        Goal {
            goal: "4 workers >= 3x the throughput of 1",
            measured: format!(
                "{speedup:.2}x ({:.1} vs {:.1} items/s)",
                num(&four["items_per_s"]),
                num(&one["items_per_s"])
            ),
            met: speedup >= 3.0,
        },
    ]
}
