//! `batch-run`: N items through the batch runner (the library `batch run` is made of), and
//! `batch-resume`: N jobs in flight, the run stopped, then resumed, timing how long until
//! every job is polled again. Each prints one JSON object: wall and CPU seconds, peak RSS,
//! the ledger's cost (commits per job, p50/p99 per commit, its share of the CPU).

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use removebgvideo::Client;
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
        "ledger_cpu_ms": cost.cpu_ms,
        "ledger_checkpoints_ms": cost.checkpoints_ms,
        "ledger_groups": cost.groups,
        "ledger_group_commit_max_us": cost.group_commit_max_us,
        "ledger_cpu_share": cost.cpu_ms / (cpu * 1000.0).max(1e-9),
        "ledger_wall_share": cost.total_ms / (cpu * 1000.0).max(1e-9),
        "done": summary.progress.done,
    }))
}

/// `batch-worker`: one of several workers on a shared ledger (`ledger`, a `postgres://` URL):
/// loads the manifest into batch `batch` (every worker does; the first one's rows stand), runs
/// until the batch is done, and reports its wall and CPU time, how many items it finished,
/// how many claims it made, and what each transition cost it in the ledger.
pub fn worker(
    base_url: &str,
    key: &str,
    ledger_url: &str,
    manifest: &Path,
    batch: &str,
    in_flight: usize,
    out: &Path,
) -> Result<Value, String> {
    let cpu_before = cpu_seconds()?;
    let started = Instant::now();
    let client = client(base_url, key)?;
    let mut ledger = Ledger::open_postgres(ledger_url).map_err(|e| e.to_string())?;
    load_manifest(&mut ledger, manifest, Some(batch), now()).map_err(|e| e.to_string())?;
    let mut options = BatchOptions::new(out);
    options.max_in_flight = in_flight;
    let summary = run_batch(&client, &mut ledger, batch, &options).map_err(|e| e.to_string())?;
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
        "worker": ledger.worker(),
        "wall_s": wall,
        "cpu_s": cpu,
        "transitions": cost.commits,
        "claims": cost.claims,
        "ledger_commit_p50_us": cost.commit_p50_us,
        "ledger_commit_p99_us": cost.commit_p99_us,
        "ledger_commit_max_us": cost.commit_max_us,
        "ledger_cpu_ms": cost.cpu_ms,
    }))
}

/// `batch-resume`: `items` jobs that never end (`scenario=stuck`), all in flight; the run is
/// stopped once every job was created, then resumed on a new client and ledger connection, as
/// a new process would. Measures from the resume's start (before the ledger is opened) until
/// the sandbox has answered one read per job.
pub fn resume(base_url: &str, key: &str, items: usize, out: &Path) -> Result<Value, String> {
    let manifest = write_manifest(out, "https://example.com/resume.mp4?scenario=stuck", items)?;
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
    // The resume, timed by the sandbox: its request count, read every 2 ms on a helper
    // thread (each read counts itself), until every job has been read again.
    let counter = format!("{base_url}/sandbox/stats");
    let answered = move || -> Result<u64, String> {
        let body = ureq::get(&counter)
            .call()
            .map_err(|e| e.to_string())?
            .body_mut()
            .read_to_string()
            .map_err(|e| e.to_string())?;
        let stats: Value = serde_json::from_str(&body).map_err(|e| e.to_string())?;
        stats["requests"]
            .as_u64()
            .ok_or_else(|| "stats without requests".to_owned())
    };
    let before = answered()?;
    let started = Instant::now();
    let watcher = std::thread::spawn(move || -> Result<(Option<f64>, f64), String> {
        let mut reads = 1u64;
        let mut first = None;
        loop {
            let now_answered = answered()?;
            reads += 1;
            let polls = now_answered.saturating_sub(before + reads - 1);
            if polls > 0 && first.is_none() {
                first = Some(started.elapsed().as_secs_f64());
            }
            if polls >= items as u64 {
                return Ok((first, started.elapsed().as_secs_f64()));
            }
            if started.elapsed() > std::time::Duration::from_secs(60) {
                return Err(format!(
                    "only {polls} of {items} jobs read again within 60 s"
                ));
            }
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
    });
    let client = client(base_url, key)?;
    let mut ledger = open(out)?;
    let loaded = load_manifest(&mut ledger, &manifest, None, now()).map_err(|e| e.to_string())?;
    let mut options = BatchOptions::new(out);
    options.max_in_flight = items;
    let cancel = options.cancel.clone();
    // Polls of jobs that never end change nothing, so nothing in the run would end it: it is
    // stopped once the watcher has seen every job read again.
    let stopper = std::thread::spawn(move || {
        let timing = watcher
            .join()
            .map_err(|_| "the watcher panicked".to_owned());
        cancel.cancel();
        timing
    });
    run_batch(&client, &mut ledger, &loaded.batch, &options).map_err(|e| e.to_string())?;
    let (first, every) = stopper.join().map_err(|_| "the stopper panicked")???;
    Ok(json!({
        "items": items,
        "resume_to_first_poll_s": first,
        "resume_to_every_poll_s": every,
        "peak_rss_mib": peak_rss_mib(),
    }))
}
