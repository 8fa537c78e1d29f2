//! `batch-run`: N items through the batch runner (the library `batch run` is made of), and
//! `batch-resume`: N jobs in flight, the run stopped, then resumed, timing how long until
//! every job is polled again. Each prints one JSON object: wall and CPU seconds, peak RSS,
//! the ledger's cost (commits per job, p50/p99 per commit, its share of the CPU).

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use removebgvideo::{Client, PollPolicy};
use removebgvideo_batch::{BatchOptions, Progress, load_manifest, now, run as run_batch};
use removebgvideo_ledger::{Durability, Ledger};
use serde_json::{Value, json};

use crate::probe::cpu_seconds;
use crate::stats::peak_rss_mib;

fn client(base_url: &str, key: &str) -> Result<Client, String> {
    Client::builder()
        .api_key(key)
        .base_url(base_url)
        .build()
        .map_err(|e| e.to_string())
}

/// A manifest of `items` rows, each its own video (`video_url` with `&item=i`).
fn write_manifest(out: &Path, video_url: &str, items: usize) -> Result<std::path::PathBuf, String> {
    std::fs::create_dir_all(out).map_err(|e| format!("{}: {e}", out.display()))?;
    let path = out.join("manifest.jsonl");
    let mut text = String::with_capacity(items * 80);
    let joiner = if video_url.contains('?') { '&' } else { '?' };
    for i in 0..items {
        text.push_str(&json!({ "key": format!("item-{i}"), "video_url": format!("{video_url}{joiner}item={i}") }).to_string());
        text.push('\n');
    }
    std::fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(path)
}

fn open(out: &Path) -> Result<Ledger, String> {
    Ledger::open(&out.join("ledger.sqlite"), Durability::Normal).map_err(|e| e.to_string())
}

/// `batch-run`: the whole batch, outputs downloaded.
pub fn run(
    base_url: &str,
    key: &str,
    video_url: &str,
    items: usize,
    in_flight: usize,
    out: &Path,
) -> Result<Value, String> {
    let manifest = write_manifest(out, video_url, items)?;
    let cpu_before = cpu_seconds()?;
    let started = Instant::now();
    let client = client(base_url, key)?;
    let mut ledger = open(out)?;
    let loaded = load_manifest(&mut ledger, &manifest, None, now()).map_err(|e| e.to_string())?;
    let mut options = BatchOptions::new(out);
    options.max_in_flight = in_flight;
    let summary =
        run_batch(&client, &mut ledger, &loaded.batch, &options).map_err(|e| e.to_string())?;
    let wall = started.elapsed().as_secs_f64();
    let cpu = cpu_seconds()? - cpu_before;
    if !summary.complete {
        return Err(format!(
            "the batch did not complete: {:?}",
            summary.progress
        ));
    }
    let cost = &summary.ledger;
    Ok(json!({
        "language": "rust",
        "flow": "removebgvideo batch runner (engine + SQLite ledger)",
        "items": items,
        "in_flight": in_flight,
        "wall_s": wall,
        "cpu_s": cpu,
        "cpu_ms_per_job": cpu * 1000.0 / items as f64,
        "peak_rss_mib": peak_rss_mib(),
        "ledger_commits_per_job": cost.commits as f64 / items as f64,
        "ledger_commit_p50_us": cost.commit_p50_us,
        "ledger_commit_p99_us": cost.commit_p99_us,
        "ledger_commit_max_us": cost.commit_max_us,
        "ledger_ms": cost.total_ms,
        "ledger_reads_per_job": cost.reads as f64 / items as f64,
        "ledger_reads_ms": cost.reads_ms,
        "ledger_cpu_share": cost.total_ms / (cpu * 1000.0).max(1e-9),
        "done": summary.progress.done,
    }))
}

/// `batch-resume`: `items` jobs that never end (`scenario=stuck`), all in flight; the run is
/// stopped once every job was created and polled, then resumed on a new client and ledger
/// connection, as a new process would. Measures from the resume's start until the last job's
/// first poll of the resume (from the ledger's status events, which record each job's first
/// observation of a run).
pub fn resume(base_url: &str, key: &str, items: usize, out: &Path) -> Result<Value, String> {
    let manifest = write_manifest(out, "https://example.com/resume.mp4?scenario=stuck", items)?;
    let policy = PollPolicy::default();
    // First run: every job created and polled once, then stopped.
    {
        let client = client(base_url, key)?;
        let mut ledger = open(out)?;
        let loaded =
            load_manifest(&mut ledger, &manifest, None, now()).map_err(|e| e.to_string())?;
        let mut options = BatchOptions::new(out);
        options.max_in_flight = items;
        let cancel = options.cancel.clone();
        options.on_progress = Some(Arc::new(move |p: &Progress| {
            if p.planned == 0 && p.creating == 0 && p.in_flight == p.total && p.total > 0 {
                cancel.cancel();
            }
        }));
        let stopped =
            run_batch(&client, &mut ledger, &loaded.batch, &options).map_err(|e| e.to_string())?;
        if !stopped.cancelled {
            return Err("the first run ended by itself".into());
        }
    }
    // The resume.
    let resumed_at = now().unix_millis();
    let client = client(base_url, key)?;
    let mut ledger = open(out)?;
    let loaded = load_manifest(&mut ledger, &manifest, None, now()).map_err(|e| e.to_string())?;
    let mut options = BatchOptions::new(out);
    options.max_in_flight = items;
    // Stopped a while after the resume: its polls of jobs that never end are silent (no
    // status change), so nothing in the run itself would end it. The first poll of a wait goes
    // out at once; the stop comes well after the first interval.
    let cancel = options.cancel.clone();
    let stop_after = policy.initial_interval * 5;
    let stopper = std::thread::spawn(move || {
        std::thread::sleep(stop_after);
        cancel.cancel();
    });
    run_batch(&client, &mut ledger, &loaded.batch, &options).map_err(|e| e.to_string())?;
    stopper.join().map_err(|_| "the stopper panicked")?;
    let events = ledger
        .batch_events(&loaded.batch)
        .map_err(|e| e.to_string())?;
    let mut first_poll: std::collections::HashMap<&str, u64> = std::collections::HashMap::new();
    for (key, event) in &events {
        if event.kind == "status" && event.at >= resumed_at {
            first_poll.entry(key.as_str()).or_insert(event.at);
        }
    }
    if first_poll.len() != items {
        return Err(format!(
            "only {} of {items} jobs were polled after the resume",
            first_poll.len()
        ));
    }
    let last = first_poll.values().max().copied().unwrap_or(resumed_at);
    let first = first_poll.values().min().copied().unwrap_or(resumed_at);
    Ok(json!({
        "items": items,
        "resume_to_first_poll_s": (first - resumed_at) as f64 / 1000.0,
        "resume_to_every_poll_s": (last - resumed_at) as f64 / 1000.0,
        "peak_rss_mib": peak_rss_mib(),
    }))
}
