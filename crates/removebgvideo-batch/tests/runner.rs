//! The batch runner against a sandbox on loopback: results keyed by key, the budget, a server
//! that ignores idempotency keys, and a stop (Ctrl-C) that leaves everything resumable.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use removebgvideo::{Client, PollPolicy};
use removebgvideo_batch::{BatchOptions, Progress, Summary, load_manifest, now, run};
use removebgvideo_ledger::{Durability, ItemPhase, Ledger};
use removebgvideo_sandbox::{FaultConfig, KeyConfig, Sandbox, SandboxConfig, output_bytes};
use serde_json::Value;

fn fast_poll() -> PollPolicy {
    PollPolicy {
        initial_interval: Duration::from_millis(20),
        max_interval: Duration::from_millis(200),
        min_interval: Duration::from_millis(10),
        max_eta_interval: Duration::from_millis(200),
        ..PollPolicy::default()
    }
}

fn sandbox(config: SandboxConfig) -> Sandbox {
    Sandbox::start(SandboxConfig {
        speed: 1000.0,
        output_bytes_per_second: 1000,
        ..config
    })
    .expect("the sandbox starts")
}

fn client(sandbox: &Sandbox, key: &str) -> Client {
    Client::builder()
        .api_key(key)
        .base_url(sandbox.base_url())
        .poll_policy(fast_poll())
        .build()
        .unwrap()
}

fn write_manifest(dir: &Path, rows: &[String]) -> std::path::PathBuf {
    let path = dir.join("videos.jsonl");
    std::fs::write(&path, rows.join("\n")).unwrap();
    path
}

/// Loads and runs a manifest; the ledger is `out/ledger.sqlite`.
fn run_manifest(
    client: &Client,
    manifest: &Path,
    options: &BatchOptions,
) -> (Summary, Ledger, String) {
    let mut ledger = Ledger::open(&options.out_dir.join("ledger.sqlite"), Durability::Normal)
        .unwrap_or_else(|_| {
            std::fs::create_dir_all(&options.out_dir).unwrap();
            Ledger::open(&options.out_dir.join("ledger.sqlite"), Durability::Normal).unwrap()
        });
    let loaded = load_manifest(&mut ledger, manifest, None, now()).unwrap();
    let summary = run(client, &mut ledger, &loaded.batch, options).unwrap();
    (summary, ledger, loaded.batch)
}

fn lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

#[test]
fn a_manifest_runs_to_outputs_and_results_keyed_by_key() {
    let sandbox = sandbox(SandboxConfig::default());
    let client = client(&sandbox, sandbox.demo_key());
    let dir = tempfile::tempdir().unwrap();
    let rows: Vec<String> = (0..30)
        .map(|i| {
            let scenario = if i % 10 == 4 { "&scenario=fail" } else { "" };
            format!(
                r#"{{"key": "clip-{i}", "video_url": "https://example.com/{i}.mp4?duration={}{scenario}", "model": "light", "metadata": {{"user": "u{i}"}}}}"#,
                1 + i % 3
            )
        })
        .collect();
    let manifest = write_manifest(dir.path(), &rows);
    let reports = Arc::new(Mutex::new(Vec::<Progress>::new()));
    let sink = reports.clone();
    let mut options = BatchOptions::new(dir.path().join("out"));
    options.max_in_flight = 8;
    options.on_progress = Some(Arc::new(move |p: &Progress| {
        sink.lock().unwrap().push(p.clone())
    }));
    let (summary, ledger, batch) = run_manifest(&client, &manifest, &options);

    assert!(!summary.complete);
    assert_eq!((summary.progress.done, summary.progress.failed), (27, 3));
    let last = reports.lock().unwrap().last().cloned().unwrap();
    assert_eq!(last, summary.progress, "the last report is the summary's");
    assert!(reports.lock().unwrap().iter().all(|p| p.in_flight <= 8));

    let results = lines(&summary.results);
    let errors = lines(&summary.errors);
    assert_eq!(results.len(), 27);
    assert_eq!(errors.len(), 3);
    let jobs: HashMap<String, String> = sandbox
        .created_jobs()
        .into_iter()
        .map(|job| (job.video_url, job.id))
        .collect();
    assert_eq!(jobs.len(), 30, "one job per item");
    for line in &results {
        let key = line["key"].as_str().unwrap();
        let i: usize = key.trim_start_matches("clip-").parse().unwrap();
        assert_eq!(line["outcome"], "completed");
        assert_eq!(line["context"]["metadata"]["user"], format!("u{i}"));
        let url = format!("https://example.com/{i}.mp4?duration={}", 1 + i % 3);
        assert_eq!(line["job_id"], jobs[&url].as_str());
        let path = line["output"]["path"].as_str().unwrap();
        let bytes = std::fs::read(path).unwrap();
        let mut want = vec![0u8; bytes.len()];
        output_bytes(&jobs[&url], 0, &mut want);
        assert_eq!(bytes, want, "{key}: byte-exact");
        assert_eq!(line["output"]["size"], bytes.len() as u64);
        assert_eq!(line["credits_charged"], line["credits_estimated"]);
    }
    for line in &errors {
        assert_eq!(line["outcome"], "failed");
        assert_eq!(line["error"]["code"], "job_failed");
        assert!(line["error"]["request_id"].as_str().is_some());
        assert_eq!(line["credits_charged"], 0.0, "a failed job is refunded");
    }
    let events = ledger.events(&batch, "clip-0").unwrap();
    let kinds: Vec<&str> = events.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(kinds.first(), Some(&"planned"));
    let order = ["intent", "created", "completed", "output"];
    let mut at = 0;
    for kind in order {
        at += kinds[at..]
            .iter()
            .position(|k| *k == kind)
            .unwrap_or_else(|| panic!("no {kind} after {at} in {kinds:?}"));
    }
    assert!(
        events
            .iter()
            .filter(|e| e.kind == "status")
            .all(|e| e.request_id.is_some())
    );

    // The same run again: nothing is sent but the checks of the outputs.
    let before = sandbox.request_counts().0;
    let (again, _, _) = run_manifest(&client, &manifest, &options);
    assert_eq!(again.progress, summary.progress);
    assert_eq!(
        sandbox.request_counts().0,
        before,
        "a finished batch sends nothing"
    );
}

#[test]
fn the_budget_is_never_passed_and_charges_and_refunds_match_the_usage_events() {
    const KEY: &str = "rbv_budget";
    let sandbox = sandbox(SandboxConfig {
        keys: vec![KeyConfig {
            key: KEY.into(),
            credits: 10_000.0,
            rate_per_second: 10_000.0,
            burst: 10_000,
        }],
        ..SandboxConfig::default()
    });
    let client = client(&sandbox, KEY);
    let dir = tempfile::tempdir().unwrap();
    // 4 s of `original` is 4 credits; every fifth fails (refunded).
    let rows: Vec<String> = (0..40)
        .map(|i| {
            let scenario = if i % 5 == 2 { "&scenario=fail" } else { "" };
            format!(r#"{{"video_url": "https://example.com/b{i}.mp4?duration=4{scenario}"}}"#)
        })
        .collect();
    let manifest = write_manifest(dir.path(), &rows);
    let budget = 90.0;
    let reports = Arc::new(Mutex::new(Vec::<Progress>::new()));
    let sink = reports.clone();
    let mut options = BatchOptions::new(dir.path().join("out"));
    options.budget_credits = Some(budget);
    options.max_in_flight = 6;
    options.on_progress = Some(Arc::new(move |p: &Progress| {
        sink.lock().unwrap().push(p.clone())
    }));
    let (summary, ledger, batch) = run_manifest(&client, &manifest, &options);

    assert!(
        reports
            .lock()
            .unwrap()
            .iter()
            .all(|p| p.credits_committed <= budget),
        "committed credits stayed within the budget at every report"
    );
    let events = client
        .usage_events(
            &removebgvideo::UsageEventsQuery { limit: Some(100) },
            &Default::default(),
        )
        .unwrap();
    let mut charged: HashMap<String, f64> = HashMap::new();
    let mut refunded: HashMap<String, f64> = HashMap::new();
    for event in &events.events {
        let job = event.job_id.clone().unwrap();
        match event.event.as_deref() {
            Some("job.charged") => *charged.entry(job).or_default() += event.credits.unwrap(),
            Some("job.refunded") => *refunded.entry(job).or_default() += event.credits.unwrap(),
            _ => {}
        }
    }
    let total: f64 = charged.values().sum();
    assert!(total <= budget, "charged {total} of a {budget} budget");
    assert!(total >= budget - 4.0 - 1e-9, "the budget was used: {total}");
    let items = ledger.items(&batch).unwrap();
    for item in &items {
        let Some(job) = &item.job_id else { continue };
        match item.phase {
            ItemPhase::Done => {
                assert_eq!(
                    item.credits_charged,
                    charged.get(job).copied(),
                    "{}",
                    item.key
                );
                assert_eq!(item.credits_reserved, item.credits_charged);
            }
            ItemPhase::Failed => {
                assert_eq!(item.credits_charged, Some(0.0));
                assert_eq!(
                    refunded.get(job).copied(),
                    item.credits_reserved.map(|r| -r)
                );
            }
            ItemPhase::Created => {
                assert_eq!(item.last_error_code.as_deref(), Some("budget_exceeded"));
                assert!(!charged.contains_key(job) && !refunded.contains_key(job));
            }
            other => panic!("{}: {other:?}", item.key),
        }
    }
    assert!(summary.progress.held > 0);
    assert_eq!(
        summary.progress.done + summary.progress.failed + summary.progress.held,
        40
    );

    // A larger budget starts what was held, without a second job for anything.
    options.budget_credits = Some(1000.0);
    let (summary, _, _) = run_manifest(&client, &manifest, &options);
    assert_eq!((summary.progress.done, summary.progress.failed), (32, 8));
    assert_eq!(sandbox.created_jobs().len(), 40);
}

#[test]
fn a_server_that_ignores_keys_gets_no_create_twice_unless_the_caller_opts_in() {
    let sandbox = sandbox(SandboxConfig {
        honour_idempotency_keys: false,
        faults: FaultConfig {
            drop_after_rate: 0.25,
            seed: 7,
            ..FaultConfig::default()
        },
        ..SandboxConfig::default()
    });
    let client = client(&sandbox, sandbox.demo_key());
    let dir = tempfile::tempdir().unwrap();
    let rows: Vec<String> = (0..40)
        .map(|i| {
            format!(r#"{{"key": "k{i}", "video_url": "https://example.com/u{i}.mp4?duration=1"}}"#)
        })
        .collect();
    let manifest = write_manifest(dir.path(), &rows);
    let options = BatchOptions::new(dir.path().join("out"));
    let (summary, ledger, batch) = run_manifest(&client, &manifest, &options);
    let per_url = |sandbox: &Sandbox| {
        let mut jobs: HashMap<String, usize> = HashMap::new();
        for job in sandbox.created_jobs() {
            *jobs.entry(job.video_url).or_default() += 1;
        }
        jobs
    };
    let jobs = per_url(&sandbox);
    assert!(
        jobs.values().all(|n| *n == 1),
        "no create sent twice: {jobs:?}"
    );
    assert!(summary.progress.unknown > 0, "some creates went unanswered");
    let unknown: Vec<_> = ledger
        .items(&batch)
        .unwrap()
        .into_iter()
        .filter(|item| item.phase == ItemPhase::Unknown)
        .collect();
    for item in &unknown {
        assert_eq!(item.last_error_code.as_deref(), Some("outcome_unknown"));
        assert!(item.job_id.is_none());
    }
    let errors = lines(&summary.errors);
    assert!(errors.iter().any(|line| line["outcome"] == "unknown"));

    // A re-run leaves them parked; opting in creates each again, as a new generation.
    let before = sandbox.created_jobs().len();
    let (again, _, _) = run_manifest(&client, &manifest, &options);
    assert_eq!(again.progress.unknown, summary.progress.unknown);
    assert_eq!(sandbox.created_jobs().len(), before);
    let mut opted = options.clone();
    opted.recreate_unknown = true;
    let mut rounds = 0;
    loop {
        let (summary, ledger, batch) = run_manifest(&client, &manifest, &opted);
        if summary.progress.unknown == 0 {
            for item in &unknown {
                let item = ledger.item(&batch, &item.key).unwrap();
                assert!(item.generation >= 1, "{}: a new generation", item.key);
                assert_eq!(item.phase, ItemPhase::Done);
            }
            break;
        }
        rounds += 1;
        assert!(rounds < 10, "dropped answers kept every recreate unknown");
    }
}

#[test]
fn a_stopped_run_leaves_everything_resumable_and_the_resume_finishes_it() {
    let sandbox = sandbox(SandboxConfig::default());
    let client = client(&sandbox, sandbox.demo_key());
    let dir = tempfile::tempdir().unwrap();
    let rows: Vec<String> = (0..60)
        .map(|i| format!(r#"{{"video_url": "https://example.com/s{i}.mp4?duration=20"}}"#))
        .collect();
    let manifest = write_manifest(dir.path(), &rows);
    let mut options = BatchOptions::new(dir.path().join("out"));
    options.max_in_flight = 10;
    let cancel = options.cancel.clone();
    // Stops as soon as some requests went out, as Ctrl-C would.
    let stop = sandbox.request_counts().0 + 15;
    let over = std::sync::atomic::AtomicBool::new(false);
    let (summary, ledger, batch) = std::thread::scope(|scope| {
        scope.spawn(|| {
            while sandbox.request_counts().0 < stop
                && !over.load(std::sync::atomic::Ordering::Relaxed)
            {
                std::thread::sleep(Duration::from_millis(1));
            }
            cancel.cancel();
        });
        let result = run_manifest(&client, &manifest, &options);
        over.store(true, std::sync::atomic::Ordering::Relaxed);
        result
    });
    assert!(summary.cancelled);
    assert!(summary.progress.done < 60);
    let started = ledger
        .items(&batch)
        .unwrap()
        .iter()
        .filter(|item| item.job_id.is_some())
        .count();
    assert!(started <= 10 + 1, "no new work after the stop: {started}");

    let mut resumed = BatchOptions::new(dir.path().join("out"));
    resumed.max_in_flight = 10;
    let (summary, _, _) = run_manifest(&client, &manifest, &resumed);
    assert!(summary.complete, "{:?}", summary.progress);
    assert_eq!(sandbox.created_jobs().len(), 60, "no job made twice");
}
