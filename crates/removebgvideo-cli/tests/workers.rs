//! Several `batch run` processes on one batch in one PostgreSQL ledger (a real server the test
//! starts), against one sandbox with faults on: they split the work, two of them are killed
//! (SIGKILL) mid-run, and the survivors take over the dead ones' items and finish the batch,
//! with every job made once and one credit budget shared by all of them never passed, counted
//! from the sandbox's own state. They also carry on through a PostgreSQL restart, and share
//! one rate-limited key near its rate without a 429 storm.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use removebgvideo_core::Timestamp;
use removebgvideo_ledger::{ItemPhase, Ledger};
use removebgvideo_sandbox::{FaultConfig, Sandbox, SandboxConfig};
use removebgvideo_testpg::TestPostgres;

const ITEMS: usize = 1_000;
const WORKERS: usize = 4;
/// Short leases, so that the test sees takeovers within seconds (the default is 30 s).
const LEASE_SECONDS: &str = "4";
/// The budget the kill test's workers share: about two thirds of what the batch would cost
/// (2 or 3 credits an item), so that it binds while two workers die.
const BUDGET: f64 = 1_600.0;

/// The flags of the kill and restart tests' workers.
const WORKER_FLAGS: [&str; 4] = ["--lease", LEASE_SECONDS, "--max-in-flight", "32"];

fn worker(sandbox: &Sandbox, manifest: &Path, ledger: &str, dir: &Path, n: usize) -> Child {
    let key = sandbox.demo_key();
    worker_with(sandbox, key, manifest, ledger, dir, n, &WORKER_FLAGS)
}

/// Worker `n`: `batch run` of `manifest` with `key` on `ledger`, its output and logs in `dir`.
fn worker_with(
    sandbox: &Sandbox,
    key: &str,
    manifest: &Path,
    ledger: &str,
    dir: &Path,
    n: usize,
    flags: &[&str],
) -> Child {
    let log =
        |suffix: &str| std::fs::File::create(dir.join(format!("worker-{n}.{suffix}"))).unwrap();
    Command::new(env!("CARGO_BIN_EXE_removebgvideo"))
        .env_remove("REMOVEBGVIDEO_API_KEY")
        .args(["--base-url", sandbox.base_url(), "--api-key", key])
        .args(["--json", "batch", "run"])
        .arg(manifest)
        .args(["--ledger", ledger])
        .args(flags)
        .arg("--out")
        .arg(dir.join(format!("out-{n}")))
        .stdin(Stdio::null())
        .stdout(log("out"))
        .stderr(log("err"))
        .spawn()
        .expect("the binary runs")
}

/// Bounded polling of the ledger.
fn wait_until(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let started = Instant::now();
    while !done() {
        assert!(started.elapsed() < limit, "{what}: not within {limit:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Bounded polling until worker `n` exits; it must exit 0 (its stderr shown if not).
fn ends_well(child: &mut Child, dir: &Path, n: usize) {
    ends_with(child, dir, n, 0);
}

/// Bounded polling until worker `n` exits with `code` (its stderr shown if not).
fn ends_with(child: &mut Child, dir: &Path, n: usize, code: i32) {
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            started.elapsed() < Duration::from_secs(180),
            "worker {n} never ended"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let read = |suffix: &str| std::fs::read_to_string(dir.join(format!("worker-{n}.{suffix}")));
    let (stdout, stderr) = (read("out").unwrap(), read("err").unwrap());
    let tail: String = stdout
        .chars()
        .rev()
        .take(2_000)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    assert_eq!(
        status.code(),
        Some(code),
        "worker {n}: {status}\n{stderr}\n{tail}"
    );
}

fn done_count(ledger: &Ledger, batch: &str) -> u64 {
    ledger.counts(batch).map_or(0, |c| c.of(ItemPhase::Done))
}

fn unix_millis_now() -> u64 {
    Timestamp::from(std::time::SystemTime::now()).unix_millis()
}

#[test]
fn four_workers_share_one_batch_and_a_budget_survive_two_kills_and_make_every_job_once() {
    let postgres = TestPostgres::start().expect("a PostgreSQL server for the test");
    let url = postgres.url();
    let sandbox = Sandbox::start(SandboxConfig {
        speed: 100.0,
        faults: FaultConfig {
            // Answers lost after the server acted (a create must not become two jobs), and
            // plain server errors (retried).
            error_rate: 0.02,
            drop_after_rate: 0.01,
            seed: 16,
            ..FaultConfig::default()
        },
        ..SandboxConfig::default()
    })
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let manifest: PathBuf = dir.path().join("videos.jsonl");
    let rows: Vec<String> = (0..ITEMS)
        .map(|i| {
            format!(
                r#"{{"key":"v{i:04}","video_url":"https://example.com/{i}.mp4?duration=2.{:02}","model":"light"}}"#,
                i % 100
            )
        })
        .collect();
    std::fs::write(&manifest, rows.join("\n")).unwrap();

    let budget = BUDGET.to_string();
    let mut workers: Vec<Child> = (0..WORKERS)
        .map(|n| {
            let flags = [&WORKER_FLAGS[..], &["--budget-credits", budget.as_str()]].concat();
            let key = sandbox.demo_key();
            worker_with(&sandbox, key, &manifest, &url, dir.path(), n, &flags)
        })
        .collect();
    let ledger = {
        let mut opened = None;
        wait_until("the batch is loaded", Duration::from_secs(60), || {
            opened = Ledger::open_postgres(&url)
                .ok()
                .filter(|l| l.batches().is_ok_and(|b| b.len() == 1));
            opened.is_some()
        });
        opened.unwrap()
    };
    let batches = ledger.batches().unwrap();
    assert_eq!(
        batches.len(),
        1,
        "workers loading one manifest at once agree on one batch"
    );
    let batch = &batches[0];

    // Kill one worker once a tenth is done, a second once 40 % is.
    let mut killed: Vec<(u32, u64)> = Vec::new();
    for (victim, share) in [(0usize, ITEMS as u64 / 10), (1, ITEMS as u64 * 4 / 10)] {
        wait_until("progress", Duration::from_secs(120), || {
            done_count(&ledger, batch) >= share
        });
        let pid = workers[victim].id();
        workers[victim].kill().unwrap(); // SIGKILL: no lease released, nothing flushed
        workers[victim].wait().unwrap();
        killed.push((pid, unix_millis_now()));
    }

    // The survivors finish everything, the dead ones' items included, up to the budget: what
    // would pass it stays a draft, held (exit 4: not every item completed).
    for (n, child) in workers.iter_mut().enumerate().skip(2) {
        ends_with(child, dir.path(), n, 4);
    }
    let counts = ledger.counts(batch).unwrap();
    let done = counts.of(ItemPhase::Done);
    assert_eq!(
        done + counts.of(ItemPhase::Created),
        ITEMS as u64,
        "nothing lost: {counts:?}"
    );
    let items = ledger.items(batch).unwrap();
    for item in items.iter().filter(|i| i.phase == ItemPhase::Created) {
        assert_eq!(
            item.credits_reserved, None,
            "{}: held, never reserved",
            item.key
        );
        assert_eq!(item.last_error_code.as_deref(), Some("budget_exceeded"));
    }

    // The budget, from the sandbox's own accounts: every job started is charged, and together
    // they stay within it, though four workers reserved from it at once and two died holding
    // reservations.
    let client = removebgvideo::Client::builder()
        .api_key(sandbox.demo_key())
        .base_url(sandbox.base_url())
        .build()
        .unwrap();
    let usage = client
        .usage_summary(&Default::default(), &Default::default())
        .unwrap();
    assert!(
        usage.credits_used <= BUDGET,
        "{} credits spent of a {BUDGET} budget",
        usage.credits_used
    );
    assert!(
        usage.credits_used >= BUDGET - 3.0,
        "the budget was used: {} of {BUDGET}",
        usage.credits_used
    );
    let charged: f64 = items.iter().filter_map(|i| i.credits_charged).sum();
    assert!(
        (charged - usage.credits_used).abs() < 1e-6,
        "the ledger's charges {charged} match"
    );

    // Every job made once, from the sandbox's own state: one per item, and each item's job
    // is the one the ledger holds.
    let created = sandbox.created_jobs();
    let per_video: HashMap<&str, usize> = created.iter().fold(HashMap::new(), |mut seen, job| {
        *seen.entry(job.video_url.as_str()).or_default() += 1;
        seen
    });
    let twice: Vec<_> = per_video.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "duplicate jobs: {twice:?}");
    assert_eq!(created.len(), ITEMS, "one job per item");
    let job_ids: HashSet<&str> = created.iter().map(|job| job.id.as_str()).collect();
    assert!(
        items.iter().all(|item| item
            .job_id
            .as_deref()
            .is_some_and(|id| job_ids.contains(id))),
        "each item holds the job made for it"
    );

    // The dead workers' items were taken over, on the log, within 40 s of each kill; every
    // event names the worker that wrote it.
    let events = ledger.batch_events(batch).unwrap();
    for (pid, at) in &killed {
        let mark = format!(":{pid}:");
        let takeovers: Vec<u64> = events
            .iter()
            .filter(|(_, e)| e.kind == "claimed")
            .filter(|(_, e)| {
                e.detail
                    .as_ref()
                    .and_then(|d| d["previous_worker"].as_str())
                    .is_some_and(|w| w.contains(&mark))
            })
            .map(|(_, e)| e.at)
            .collect();
        assert!(
            !takeovers.is_empty(),
            "nothing of worker {pid} was taken over"
        );
        let latest = takeovers.iter().max().unwrap();
        assert!(
            latest.saturating_sub(*at) <= 40_000,
            "worker {pid}'s items were taken over {} ms after its death",
            latest - at
        );
    }
    assert!(events.iter().all(|(_, e)| e.worker.is_some()));
    let writers: HashSet<&str> = events
        .iter()
        .filter_map(|(_, e)| e.worker.as_deref())
        .collect();
    assert!(writers.len() >= 3, "the work was shared: {writers:?}");

    // `batch status` shows each worker's share: what it finished, what it took over, what it
    // holds now (nothing: the batch is done).
    let status = Command::new(env!("CARGO_BIN_EXE_removebgvideo"))
        .args(["--json", "batch", "status", "--ledger", &url])
        .output()
        .unwrap();
    assert!(
        status.status.success(),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
    let status: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    let shares = status["workers"].as_array().unwrap();
    assert_eq!(shares.len(), WORKERS, "{shares:?}");
    let sum = |field: &str| {
        shares
            .iter()
            .map(|s| s[field].as_u64().unwrap())
            .sum::<u64>()
    };
    assert_eq!(sum("finished"), done);
    assert!(sum("takeovers") >= killed.len() as u64);
    assert_eq!(sum("leases"), 0);
}

#[test]
fn workers_carry_on_through_a_postgresql_restart_with_nothing_lost() {
    const N: usize = 300;
    let postgres = TestPostgres::start().expect("a PostgreSQL server for the test");
    let url = postgres.url();
    let sandbox = Sandbox::start(SandboxConfig {
        speed: 50.0,
        ..SandboxConfig::default()
    })
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let manifest: PathBuf = dir.path().join("videos.jsonl");
    let rows: Vec<String> = (0..N)
        .map(|i| {
            format!(r#"{{"key":"r{i:03}","video_url":"https://example.com/r{i}.mp4?duration=3","model":"light"}}"#)
        })
        .collect();
    std::fs::write(&manifest, rows.join("\n")).unwrap();
    let mut workers: Vec<Child> = (0..2)
        .map(|n| worker(&sandbox, &manifest, &url, dir.path(), n))
        .collect();
    let mut ledger = None;
    wait_until("a third is done", Duration::from_secs(120), || {
        if ledger.is_none() {
            ledger = Ledger::open_postgres(&url).ok();
        }
        let batch = ledger
            .as_ref()
            .and_then(|l| l.batches().ok())
            .and_then(|b| b.first().cloned());
        batch.is_some_and(|b| done_count(ledger.as_ref().unwrap(), &b) >= N as u64 / 3)
    });
    // Down hard (no clean shutdown), and back a moment later on the same port.
    postgres.kill().unwrap();
    std::thread::sleep(Duration::from_millis(500));
    postgres.restart().unwrap();
    for (n, child) in workers.iter_mut().enumerate() {
        ends_well(child, dir.path(), n);
    }
    let ledger = Ledger::open_postgres(&url).unwrap();
    let batch = &ledger.batches().unwrap()[0];
    assert_eq!(ledger.counts(batch).unwrap().of(ItemPhase::Done), N as u64);
    let created = sandbox.created_jobs();
    let videos: HashSet<&str> = created.iter().map(|job| job.video_url.as_str()).collect();
    assert_eq!((created.len(), videos.len()), (N, N), "one job per item");
}

/// Unix seconds of the sandbox log's `at` (`YYYY-MM-DDTHH:MM:SS[.fff]Z`).
#[test]
fn a_worker_stalled_past_its_lease_stops_when_it_wakes_and_every_job_is_made_once() {
    const N: usize = 60;
    let postgres = TestPostgres::start().expect("a PostgreSQL server for the test");
    let url = postgres.url();
    // Jobs of a few seconds: the stalled worker still has some under way when it wakes.
    let sandbox = Sandbox::start(SandboxConfig {
        speed: 5.0,
        ..SandboxConfig::default()
    })
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let manifest: PathBuf = dir.path().join("videos.jsonl");
    let rows: Vec<String> = (0..N)
        .map(|i| {
            format!(r#"{{"key":"s{i:02}","video_url":"https://example.com/s{i}.mp4?duration=20","model":"light"}}"#)
        })
        .collect();
    std::fs::write(&manifest, rows.join("\n")).unwrap();
    let mut workers: Vec<Child> = (0..2)
        .map(|n| worker(&sandbox, &manifest, &url, dir.path(), n))
        .collect();
    let (stalled, mark) = (workers[0].id(), format!(":{}:", workers[0].id()));
    let mut opened: Option<(Ledger, String)> = None;
    wait_until(
        "the first worker holds leases",
        Duration::from_secs(60),
        || {
            if opened.is_none() {
                opened = Ledger::open_postgres(&url).ok().and_then(|ledger| {
                    let batch = ledger.batches().ok()?.first()?.clone();
                    Some((ledger, batch))
                });
            }
            opened.as_ref().is_some_and(|(ledger, batch)| {
                ledger
                    .leases(batch, Timestamp::from(std::time::SystemTime::now()))
                    .is_ok_and(|leases| leases.iter().any(|l| l.worker.contains(&mark)))
            })
        },
    );
    let (ledger, batch) = opened.unwrap();
    // SIGSTOP: the worker stalls (a pause of its host, a debugger, a swap storm) without dying.
    let signal = |name: &str| {
        let sent = Command::new("kill")
            .args([name, &stalled.to_string()])
            .status()
            .unwrap();
        assert!(sent.success(), "kill {name}");
    };
    signal("-STOP");
    wait_until("its items are taken over", Duration::from_secs(40), || {
        ledger.batch_events(&batch).is_ok_and(|events| {
            events.iter().any(|(_, e)| {
                e.kind == "claimed"
                    && e.detail
                        .as_ref()
                        .and_then(|d| d["previous_worker"].as_str())
                        .is_some_and(|w| w.contains(&mark))
            })
        })
    });
    signal("-CONT");
    // Awake, its next write over an item it lost is refused: it stops, saying why, and
    // writes nothing over the worker that took over.
    ends_with(&mut workers[0], dir.path(), 0, 3);
    let said = std::fs::read_to_string(dir.path().join("worker-0.out")).unwrap()
        + &std::fs::read_to_string(dir.path().join("worker-0.err")).unwrap();
    assert!(said.contains("another worker took it over"), "{said}");
    ends_well(&mut workers[1], dir.path(), 1);
    assert_eq!(ledger.counts(&batch).unwrap().of(ItemPhase::Done), N as u64);
    let created = sandbox.created_jobs();
    let videos: HashSet<&str> = created.iter().map(|job| job.video_url.as_str()).collect();
    assert_eq!((created.len(), videos.len()), (N, N), "one job per item");
}

/// The rate-limited key's plan: 25 requests a second, a bucket of 5.
const RATE: f64 = 25.0;

/// What four workers on one rate-limited key did.
struct Shared {
    requests: usize,
    limited: usize,
    /// Requests served per second while the workers had more to send than the key takes.
    throughput: f64,
}

/// Four workers on a batch of 240 items, with one key allowing [`RATE`] requests a second,
/// each worker given `flags`.
fn four_workers_on_one_rate_limited_key(flags: &[&str]) -> Shared {
    const N: usize = 240;
    const KEY: &str = "rbv_workers_limited";
    let postgres = TestPostgres::start().expect("a PostgreSQL server for the test");
    let url = postgres.url();
    let sandbox = Sandbox::start(SandboxConfig {
        speed: 100.0,
        keys: vec![removebgvideo_sandbox::KeyConfig {
            key: KEY.into(),
            credits: 1e9,
            rate_per_second: RATE,
            burst: 5,
        }],
        ..SandboxConfig::default()
    })
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let manifest: PathBuf = dir.path().join("videos.jsonl");
    let rows: Vec<String> = (0..N)
        .map(|i| {
            format!(r#"{{"key":"l{i:03}","video_url":"https://example.com/l{i}.mp4?duration=3","model":"light"}}"#)
        })
        .collect();
    std::fs::write(&manifest, rows.join("\n")).unwrap();
    let started = Instant::now();
    let flags = [&["--max-in-flight", "16"], flags].concat();
    let mut workers: Vec<Child> = (0..WORKERS)
        .map(|n| worker_with(&sandbox, KEY, &manifest, &url, dir.path(), n, &flags))
        .collect();
    for (n, child) in workers.iter_mut().enumerate() {
        ends_well(child, dir.path(), n);
    }
    let log = sandbox.request_log();
    let api: Vec<_> = log.iter().filter(|r| r.path.starts_with("/v1/")).collect();
    let limited = api.iter().filter(|r| r.status == Some(429)).count();
    // Throughput while the workers had more to send than the key takes: from the first create
    // to the last (before, the workers are starting; after, only the last jobs' polls are
    // left).
    let creates: Vec<u64> = api
        .iter()
        .filter(|r| r.method == "POST")
        .map(|r| r.at_ms)
        .collect();
    let (first, last) = (creates[0], *creates.last().unwrap());
    let served = api
        .iter()
        .filter(|r| r.status != Some(429))
        .filter(|r| (first..=last).contains(&r.at_ms))
        .count();
    let seconds = (last - first) as f64 / 1000.0;
    let shared = Shared {
        requests: api.len(),
        limited,
        throughput: served as f64 / seconds,
    };
    eprintln!(
        "{flags:?}: {} requests, {limited} answered 429 ({:.2} %); {served} served in the {seconds:.1} s of creates: {:.1}/s of {RATE}; whole run {:.1} s",
        shared.requests,
        limited as f64 / shared.requests as f64 * 100.0,
        shared.throughput,
        started.elapsed().as_secs_f64()
    );
    shared
}

/// The issue's goals: 2 % of requests answered 429 or fewer, and 80 % of the key's rate or
/// more. The workers read the key's bucket from the sandbox's `X-RateLimit-*` headers (see
/// `crates/removebgvideo-core/src/rate.rs` and its simulation, `tests/shared_key.rs`).
/// Measured here, beside the other tests of this file on 2 cores: 91 % without a ceiling and
/// 88 % with one (95 % of the key's rate), with no 429.
fn assert_goals(shared: &Shared) {
    let share = shared.limited as f64 / shared.requests as f64;
    assert!(
        share <= 0.02,
        "{} of {} requests answered 429",
        shared.limited,
        shared.requests
    );
    assert!(
        shared.throughput >= 0.8 * RATE,
        "{:.1} requests/s served, under 80 % of the key's {RATE}/s",
        shared.throughput
    );
}

#[test]
fn four_workers_on_one_rate_limited_key_use_it_near_its_rate_without_a_429_storm() {
    assert_goals(&four_workers_on_one_rate_limited_key(&[]));
}

#[test]
fn four_workers_under_a_shared_ceiling_split_it_and_keep_the_goals() {
    // The ceiling, a little under the key's rate, is split between the workers through the
    // ledger's rate gate as they come and go; a 429 any of them gets pauses all of them.
    let ceiling = (RATE * 0.95).to_string();
    let flags = ["--max-requests-per-second", ceiling.as_str()];
    assert_goals(&four_workers_on_one_rate_limited_key(&flags));
}
