//! The batch runner at scale: N items through `removebgvideo-bench batch-run` (the library
//! `batch run` is made of), next to a hand-written asyncio + httpx pipeline that keeps a JSON
//! file of job ids, on one sandbox process; then N jobs in flight resumed
//! (`batch-resume`), timing until every one is polled again. Requests are counted by the
//! sandbox. The 500-job thread flow of the batch section is the third comparison (its own
//! table; its CPU per job is repeated here).

use std::path::Path;
use std::process::Command;

use serde_json::{Value, json};

use super::sandbox::SandboxProcess;
use super::tools::Tools;
use crate::process::capture_json;

/// How much a run does.
pub struct RunnerPlan {
    pub items: usize,
    pub in_flight: usize,
    pub speed: f64,
}

/// Clips of two minutes, about 0.4 s each on the clock below; outputs of 6 KB (50 bytes per
/// second of video) so that 10,000 of them measure the runner, not the disk.
const VIDEO_URL: &str = "https://example.com/runner.mp4?duration=120";
const OUTPUT_BYTES_PER_SECOND: u64 = 50;

pub fn runner(root: &Path, tools: &Tools, plan: &super::Plan) -> Result<Value, String> {
    let plan = &plan.runner;
    let scratch = crate::process::target_dir(root)?.join("bench-runner");
    let _ = std::fs::remove_dir_all(&scratch);
    std::fs::create_dir_all(&scratch).map_err(|e| e.to_string())?;
    let config = scratch.join("sandbox.json");
    std::fs::write(
        &config,
        json!({ "output_bytes_per_second": OUTPUT_BYTES_PER_SECOND }).to_string(),
    )
    .map_err(|e| e.to_string())?;
    let sandbox = SandboxProcess::start_with(&tools.sandbox, plan.speed, Some(&config))?;
    let items = plan.items.to_string();
    let in_flight = plan.in_flight.to_string();
    let mut flows = Vec::new();
    for (name, mut command) in [
        ("runner", {
            let mut c = Command::new(&tools.bench);
            c.arg("batch-run").args(["--in-flight", &in_flight]);
            c
        }),
        ("pipeline", {
            let mut c = Command::new(&tools.python);
            c.arg(root.join("bench/python/pipeline.py"))
                .args(["--concurrency", &in_flight]);
            c
        }),
    ] {
        let out = scratch.join(name);
        command
            .args(sandbox.client_args())
            .args(["--items", &items, "--video-url", VIDEO_URL, "--out"])
            .arg(&out);
        let before = sandbox.stats()?;
        let mut run = capture_json(&mut command)?;
        let sent = sandbox.stats()?.since(before);
        run["requests_per_job"] = json!(sent.requests as f64 / plan.items as f64);
        run["rate_limited"] = json!(sent.rate_limited);
        println!(
            "    {name}: {:.1} s",
            run["wall_s"].as_f64().unwrap_or_default()
        );
        flows.push(run);
        let _ = std::fs::remove_dir_all(&out);
    }
    let mut resume = Command::new(&tools.bench);
    resume
        .arg("batch-resume")
        .args(sandbox.client_args())
        .args(["--items", &items, "--out"])
        .arg(scratch.join("resume"));
    let resume = capture_json(&mut resume)?;
    let _ = std::fs::remove_dir_all(&scratch);
    Ok(json!({
        "items": plan.items,
        "in_flight": plan.in_flight,
        "speed": plan.speed,
        "video_url": VIDEO_URL,
        "flows": flows,
        "resume": resume,
    }))
}
