//! The five measurements. Each runs its contenders one after another on the same machine, in
//! the same run, and returns what they printed (plus what only the harness can see: process
//! start-up times, the sandbox's request counts, curl's figures).

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use serde_json::{Value, json};

use super::Plan;
use super::sandbox::SandboxProcess;
use super::tools::Tools;
use crate::process::capture_json;

/// Video seconds per output byte in the sandbox (its `output_bytes_per_second`).
const OUTPUT_BYTES_PER_VIDEO_SECOND: f64 = 200_000.0;

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    match values.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => values[n / 2],
        n => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}

fn round(value: f64, decimals: i32) -> f64 {
    let scale = 10f64.powi(decimals);
    (value * scale).round() / scale
}

/// A completed job on `sandbox` for a video of `video_seconds`.
fn prepare_job(
    tools: &Tools,
    sandbox: &SandboxProcess,
    video_seconds: f64,
) -> Result<Value, String> {
    capture_json(
        Command::new(&tools.bench)
            .arg("prepare")
            .args(sandbox.client_args())
            .arg("--video-url")
            .arg(format!(
                "https://example.com/bench.mp4?duration={video_seconds}"
            )),
    )
}

fn text(value: &Value) -> Result<String, String> {
    value
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| format!("expected a string, got {value}"))
}

/// 1. `get_job` in a tight loop: each language's SDK next to what its users would use.
pub fn percall(root: &Path, tools: &Tools, plan: &Plan) -> Result<Value, String> {
    let sandbox = SandboxProcess::start(&tools.sandbox, 1000.0)?;
    let job_id = text(&prepare_job(tools, &sandbox, 10.0)?["job_id"])?;
    let calls = plan.percall_calls.to_string();
    let rounds = plan.percall_rounds.to_string();
    let mut common = sandbox.client_args().to_vec();
    common.extend([
        "--job-id",
        job_id.as_str(),
        "--calls",
        calls.as_str(),
        "--rounds",
        rounds.as_str(),
    ]);
    let rust = capture_json(Command::new(&tools.bench).arg("percall").args(&common))?;
    let python = capture_json(
        Command::new(&tools.python)
            .arg(root.join("bench/python/percall.py"))
            .args(&common),
    )?;
    let node = capture_json(
        Command::new("node")
            .arg(root.join("bench/node/percall.js"))
            .arg("--sdk")
            .arg(&tools.node_sdk)
            .args(&common),
    )?;
    Ok(json!({ "python": python, "node": node, "rust": rust }))
}

/// 2. Process start plus import, as a user's script pays it.
pub fn coldstart(tools: &Tools, plan: &Plan) -> Result<Value, String> {
    let sdk = tools.node_sdk.to_str().ok_or("path is not UTF-8")?;
    let require = format!("require({sdk:?})");
    let python = tools.python.to_str().ok_or("path is not UTF-8")?;
    let python_code = [
        ("python: import removebgvideo", "import removebgvideo"),
        ("python: import requests", "import requests"),
        ("python: import httpx", "import httpx"),
        ("python: empty script", "pass"),
    ];
    let node_code = [
        ("node: require('removebgvideo')", require.as_str()),
        ("node: empty script", ""),
    ];
    let contenders: Vec<(&str, &str, [&str; 2])> = python_code
        .iter()
        .map(|(name, code)| (*name, python, ["-c", *code]))
        .chain(
            node_code
                .iter()
                .map(|(name, code)| (*name, "node", ["-e", *code])),
        )
        .collect();
    let mut times: Vec<Vec<f64>> = vec![Vec::new(); contenders.len()];
    // One untimed pass fills the page cache; then runs interleave the contenders.
    for run in 0..=plan.coldstart_runs {
        for (i, (name, program, args)) in contenders.iter().enumerate() {
            let started = Instant::now();
            let status = Command::new(program)
                .args(args)
                .status()
                .map_err(|e| format!("{name}: {e}"))?;
            if !status.success() {
                return Err(format!("{name} failed ({status})"));
            }
            if run > 0 {
                times[i].push(started.elapsed().as_secs_f64() * 1000.0);
            }
        }
    }
    let medians: Vec<f64> = times.iter_mut().map(|t| median(t)).collect();
    let empty = |language: &str| {
        contenders
            .iter()
            .position(|(name, _, _)| name.starts_with(language) && name.ends_with("empty script"))
            .map(|i| medians[i])
            .unwrap_or(0.0)
    };
    let results: Vec<Value> = contenders
        .iter()
        .zip(&medians)
        .map(|((name, _, _), median_ms)| {
            let language = name.split(':').next().unwrap_or_default();
            json!({
                "name": name,
                "median_ms": round(*median_ms, 1),
                "import_ms": round(median_ms - empty(language), 1),
            })
        })
        .collect();
    Ok(json!({ "runs": plan.coldstart_runs, "contenders": results }))
}

/// 3. Polling policies in virtual time (no sandbox, no sleeping).
pub fn polling(tools: &Tools, plan: &Plan) -> Result<Value, String> {
    capture_json(Command::new(&tools.bench).args([
        "polling",
        "--jobs",
        &plan.polling_jobs.to_string(),
        "--seed",
        "7",
    ]))
}

/// 3b. Webhooks next to polling alone: detection lag and requests per job, on a sandbox at
/// real speed (in the bench process: the receiver and the sandbox's deliveries on loopback).
pub fn webhooks(tools: &Tools, plan: &Plan) -> Result<Value, String> {
    capture_json(Command::new(&tools.bench).args([
        "webhook-lag",
        "--jobs",
        &plan.webhook_jobs.to_string(),
        "--seed",
        "12",
    ]))
}

/// 4. A batch through create -> start -> wait, per language, next to the official SDKs' way.
pub fn batch(root: &Path, tools: &Tools, plan: &Plan) -> Result<Value, String> {
    // A clock 30 times faster than real time: a two-minute clip takes about 4 s.
    let speed = 30.0;
    let video_url = format!(
        "https://example.com/batch.mp4?duration={}",
        plan.batch_video_seconds
    );
    let sandbox = SandboxProcess::start(&tools.sandbox, speed)?;
    let jobs = plan.batch_jobs.to_string();
    let threads = plan.batch_threads.to_string();
    let mut common = sandbox.client_args().to_vec();
    common.extend(["--jobs", jobs.as_str(), "--video-url", video_url.as_str()]);
    let python_script = root.join("bench/python/batch.py");
    let node_script = root.join("bench/node/batch.js");
    let kinds = [
        ("python", "sdk"),
        ("python", "requests"),
        ("node", "sdk"),
        ("node", "fetch"),
    ];
    // Rounds interleave the flows; each flow's figures are the medians over its rounds.
    let mut runs: Vec<Vec<Value>> = vec![Vec::new(); kinds.len()];
    for _ in 0..plan.batch_rounds {
        for (i, (language, mode)) in kinds.iter().enumerate() {
            let mut command = if *language == "python" {
                let mut c = Command::new(&tools.python);
                c.arg(&python_script).args(["--threads", &threads]);
                c
            } else {
                let mut c = Command::new("node");
                c.arg(&node_script).arg("--sdk").arg(&tools.node_sdk);
                c
            };
            command.args(["--mode", mode]).args(&common);
            let before = sandbox.requests_answered()?;
            let mut run = capture_json(&mut command)?;
            // The count read before the flow is itself counted afterwards.
            let sent = sandbox.requests_answered()? - before - 1;
            run["requests_per_job"] = json!(round(sent as f64 / plan.batch_jobs as f64, 2));
            runs[i].push(run);
        }
    }
    let mut flows = Vec::new();
    for rounds in runs {
        let mut flow = rounds.first().cloned().ok_or("no batch rounds")?;
        for field in [
            "wall_s",
            "cpu_s",
            "cpu_s_per_job",
            "requests_per_job",
            "peak_rss_mib",
        ] {
            let mut values: Vec<f64> = rounds.iter().filter_map(|r| r[field].as_f64()).collect();
            flow[field] = json!(round(median(&mut values), 4));
        }
        flow["rounds_cpu_s_per_job"] = rounds.iter().map(|r| r["cpu_s_per_job"].clone()).collect();
        flows.push(flow);
    }
    Ok(json!({
        "speed": speed,
        "video_url": video_url,
        "rounds": plan.batch_rounds,
        "flows": flows,
    }))
}

fn flush_disks() -> Result<(), String> {
    crate::process::run_command(&mut Command::new("sync"))
}

fn curl_download(url: &str, out: &Path) -> Result<(u64, f64), String> {
    let output = Command::new("curl")
        .args(["--silent", "--show-error", "--fail", "--output"])
        .arg(out)
        .args(["--write-out", "%{size_download} %{time_total}", url])
        .output()
        .map_err(|e| format!("curl: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "curl failed: {}",
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    let text = String::from_utf8_lossy(&output.stdout);
    let mut parts = text.split_whitespace();
    let bytes = parts
        .next()
        .and_then(|b| b.parse().ok())
        .ok_or("curl size")?;
    let seconds = parts
        .next()
        .and_then(|s| s.parse().ok())
        .ok_or("curl time")?;
    Ok((bytes, seconds))
}

/// 5. Large outputs: throughput next to curl from the same server, and peak memory by size.
pub fn download(root: &Path, tools: &Tools, plan: &Plan) -> Result<Value, String> {
    // A clock fast enough that an hour-long video is done in milliseconds.
    let sandbox = SandboxProcess::start(&tools.sandbox, 1_000_000.0)?;
    let scratch = crate::process::target_dir(root)?.join("bench-scratch");
    std::fs::create_dir_all(&scratch).map_err(|e| e.to_string())?;
    let out = scratch.join("output.bin");
    let mut rss_by_size = Vec::new();
    let mut contenders = Vec::new();
    let largest = *plan.download_mib.iter().max().ok_or("no download sizes")?;
    for &mib in &plan.download_mib {
        let video_seconds = (mib as f64 * 1_048_576.0 / OUTPUT_BYTES_PER_VIDEO_SECOND).ceil();
        let job = prepare_job(tools, &sandbox, video_seconds)?;
        let job_id = text(&job["job_id"])?;
        let url = text(&job["output_url"])?;
        let runs = if mib == largest {
            plan.download_runs
        } else {
            1
        };
        let mut rust = Vec::new();
        let mut python = Vec::new();
        let mut curl = Vec::new();
        let mut curl_synced = Vec::new();
        let mut size = 0;
        for _ in 0..runs {
            // Each contender starts with no other file's dirty pages waiting for the disk.
            flush_disks()?;
            let ours = capture_json(
                Command::new(&tools.bench)
                    .arg("download")
                    .args(sandbox.client_args())
                    .args(["--job-id", &job_id])
                    .arg("--out")
                    .arg(&out),
            )?;
            std::fs::remove_file(&out).map_err(|e| e.to_string())?;
            flush_disks()?;
            let py = capture_json(
                Command::new(&tools.python)
                    .arg(root.join("bench/python/download.py"))
                    .args(sandbox.client_args())
                    .args(["--job-id", &job_id])
                    .arg("--out")
                    .arg(&out),
            )?;
            std::fs::remove_file(&out).map_err(|e| e.to_string())?;
            flush_disks()?;
            let (bytes, seconds) = curl_download(&url, &out)?;
            // The same bytes made durable, as our client leaves them: curl, then fsync.
            let synced = Instant::now();
            crate::process::run_command(Command::new("sync").arg(&out))?;
            let sync_seconds = synced.elapsed().as_secs_f64();
            std::fs::remove_file(&out).map_err(|e| e.to_string())?;
            for result in [&ours, &py] {
                if result["bytes"].as_u64() != Some(bytes) {
                    return Err(format!("sizes differ: curl {bytes}, ours {result}"));
                }
            }
            size = bytes;
            rust.push(ours);
            python.push(py);
            curl.push(bytes as f64 / seconds / 1_048_576.0);
            curl_synced.push(bytes as f64 / (seconds + sync_seconds) / 1_048_576.0);
        }
        let field = |results: &[Value], name: &str| -> Vec<f64> {
            results.iter().filter_map(|r| r[name].as_f64()).collect()
        };
        let peak = |results: &[Value]| {
            field(results, "peak_rss_mib")
                .into_iter()
                .fold(0.0, f64::max)
        };
        rss_by_size.push(json!({ "name": "removebgvideo (Rust)", "size_bytes": size, "peak_rss_mib": peak(&rust) }));
        rss_by_size.push(json!({ "name": "removebgvideo (Python)", "size_bytes": size, "peak_rss_mib": peak(&python) }));
        if mib == largest {
            contenders = vec![
                json!({ "name": "removebgvideo (Rust)", "throughput_mib_s": round(median(&mut field(&rust, "throughput_mib_s")), 1), "peak_rss_mib": peak(&rust), "runs_mib_s": field(&rust, "throughput_mib_s") }),
                json!({ "name": "removebgvideo (Python)", "throughput_mib_s": round(median(&mut field(&python, "throughput_mib_s")), 1), "peak_rss_mib": peak(&python), "runs_mib_s": field(&python, "throughput_mib_s") }),
                json!({ "name": "curl", "throughput_mib_s": round(median(&mut curl.clone()), 1), "peak_rss_mib": null, "runs_mib_s": curl.iter().map(|v| round(*v, 1)).collect::<Vec<_>>() }),
                json!({ "name": "curl, then fsync", "throughput_mib_s": round(median(&mut curl_synced.clone()), 1), "peak_rss_mib": null, "runs_mib_s": curl_synced.iter().map(|v| round(*v, 1)).collect::<Vec<_>>() }),
            ];
        }
    }
    let _ = std::fs::remove_dir_all(&scratch);
    let size_bytes = rss_by_size
        .iter()
        .filter_map(|r| r["size_bytes"].as_u64())
        .max();
    Ok(json!({
        "size_bytes": size_bytes,
        "runs": plan.download_runs,
        "contenders": contenders,
        "rss_by_size": rss_by_size,
    }))
}
