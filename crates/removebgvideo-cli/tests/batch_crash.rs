//! `batch run` killed over and over: a 1,000-item manifest against a sandbox with faults on
//! (answers dropped after the work was done, 5xx after the work was done, plain 5xx, 429
//! bursts from a tight key, truncated downloads), the runner killed at 50 or more moments
//! (kill -9 after a random number of requests, and aborts at the crash points: after an
//! intent is committed, between a create's or a start's answer and its commit, between a
//! job's end and its commit, between a download's rename and its record), resumed each time
//! until it ends. Then the sandbox's own state is the judge: one job per item, every item in
//! the state its row asks for, every output byte-exact, and the ledger agreeing with it.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use removebgvideo_batch::{CRASH_ENV, CRASH_POINTS};
use removebgvideo_core::JobStatus;
use removebgvideo_ledger::{Durability, ItemPhase, Ledger};
use removebgvideo_sandbox::{FaultConfig, KeyConfig, Sandbox, SandboxConfig, output_bytes};

const ITEMS: usize = 1_000;
const KILLS: usize = 50;
const KEY: &str = "rbv_crash_suite";
const BYTES_PER_SECOND: u64 = 400;

/// What a row asks of the sandbox, by its index.
fn expected(i: usize) -> (&'static str, ItemPhase) {
    match i % 10 {
        3 => ("&scenario=fail", ItemPhase::Failed),
        7 => ("&scenario=fail_once", ItemPhase::Done),
        _ => ("", ItemPhase::Done),
    }
}

fn video_url(i: usize) -> String {
    let (scenario, _) = expected(i);
    format!(
        "https://example.com/crash/{i}.mp4?duration={}{scenario}",
        1 + i % 5
    )
}

fn manifest(dir: &Path) -> PathBuf {
    let mut text = String::from("key,video_url,model,output_format\n");
    let models = ["original", "light", "pro", "human"];
    let formats = ["webm", "mov", "gif", "webp"];
    for i in 0..ITEMS {
        text.push_str(&format!(
            "item-{i},{},{},{}\n",
            video_url(i),
            models[i % 4],
            formats[(i / 4) % 4]
        ));
    }
    let path = dir.join("videos.csv");
    std::fs::write(&path, text).unwrap();
    path
}

/// A small deterministic generator: the moments of the kills are random, yet a failing run
/// can be replayed from the seed it prints.
struct Dice(u64);

impl Dice {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

fn runner(sandbox: &Sandbox, manifest: &Path, out: &Path, crash: Option<String>) -> Child {
    let mut command = Command::new(env!("CARGO_BIN_EXE_removebgvideo"));
    command
        .env_remove("REMOVEBGVIDEO_API_KEY")
        .env_remove(CRASH_ENV)
        .args(["--base-url", sandbox.base_url(), "--api-key", KEY, "--json"])
        .args(["batch", "run"])
        .arg(manifest)
        .arg("--out")
        .arg(out)
        .args(["--restart-failed", "1", "--max-in-flight", "48"])
        .stdout(std::fs::File::create(out.with_extension("stdout")).unwrap())
        .stderr(Stdio::null());
    if let Some(crash) = crash {
        command.env(CRASH_ENV, crash);
    }
    command.spawn().expect("the binary starts")
}

/// Waits (bounded) for the child to end by itself.
fn wait_for(child: &mut Child, limit: Duration) -> ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "the runner did not end within {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Kills the child once the sandbox has answered `requests` more requests (bounded polling);
/// returns whether it was still running then, i.e. the kill interrupted it. A child that
/// ended by itself is left to be reaped by the caller.
fn kill_after(sandbox: &Sandbox, child: &mut Child, requests: u64) -> bool {
    let start = sandbox.request_counts().0;
    let deadline = Instant::now() + Duration::from_secs(60);
    while sandbox.request_counts().0 < start + requests {
        if child.try_wait().unwrap().is_some() {
            return false;
        }
        assert!(Instant::now() < deadline, "no progress within 60 s");
        std::thread::sleep(Duration::from_millis(1));
    }
    child.kill().unwrap(); // SIGKILL
    // It may have ended on its own just before: only a death by the signal counts.
    killed(child.wait().unwrap())
}

fn all_final(out: &Path) -> bool {
    not_final(out).is_empty()
}

/// The items not final yet, with their logs' last events (what a stuck run shows).
fn not_final(out: &Path) -> Vec<String> {
    let ledger = Ledger::open(&out.join("ledger.sqlite"), Durability::Normal).unwrap();
    let batch = ledger.batches().unwrap().remove(0);
    let items = ledger.items(&batch).unwrap();
    items
        .iter()
        .filter(|item| !item.phase.is_final())
        .take(5)
        .map(|item| {
            let events = ledger.events(&batch, &item.key).unwrap();
            let last: Vec<String> = events
                .iter()
                .rev()
                .take(4)
                .map(|e| format!("{} {:?} {:?}", e.kind, e.phase_to, e.detail))
                .collect();
            format!("{} {:?} {:?}", item.key, item.phase, last)
        })
        .collect()
}

#[cfg(unix)]
fn killed(status: ExitStatus) -> bool {
    use std::os::unix::process::ExitStatusExt;
    status.signal().is_some()
}

#[test]
fn a_batch_killed_fifty_times_under_faults_ends_with_one_job_per_item_and_nothing_lost() {
    let dir = tempfile::tempdir().unwrap();
    let sandbox = Sandbox::start(SandboxConfig {
        speed: 500.0,
        output_bytes_per_second: BYTES_PER_SECOND,
        keys: vec![KeyConfig {
            key: KEY.into(),
            credits: 1e9,
            rate_per_second: 600.0,
            burst: 40,
        }],
        faults: FaultConfig {
            error_rate: 0.02,
            drop_after_rate: 0.03,
            status_after_rate: 0.03,
            truncate_download_rate: 0.1,
            seed: 20261202,
            ..FaultConfig::default()
        },
        ..SandboxConfig::default()
    })
    .unwrap();
    let manifest = manifest(dir.path());
    let out = dir.path().join("out");
    let seed = std::env::var("CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20261202u64);
    eprintln!("crash suite seed {seed} (CRASH_SEED replays it)");
    let mut dice = Dice(seed);
    let points = CRASH_POINTS;
    let mut kills = 0;
    let mut by_point: HashMap<&str, usize> = HashMap::new();
    let mut rounds = 0;
    let mut finished = None;
    while finished.is_none() {
        rounds += 1;
        assert!(
            rounds < 400,
            "the batch did not finish in 400 rounds ({kills} kills: {by_point:?}); last output: {}\nstuck: {:?}",
            std::fs::read_to_string(out.with_extension("stdout")).unwrap_or_default(),
            not_final(&out)
        );
        let every_point = points.iter().all(|p| by_point.contains_key(p));
        if kills >= KILLS && every_point {
            // Kills done: run to the end (a run that leaves items for later ends 4 and is
            // run again, as a user would).
            let mut child = runner(&sandbox, &manifest, &out, None);
            let status = wait_for(&mut child, Duration::from_secs(120));
            if all_final(&out) {
                finished = Some(status);
            }
            continue;
        }
        // Every other round aborts at a crash point; a kill -9 after a random number of
        // requests backs it up, so a round whose point is not reached still ends early.
        // The points take turns, first those not hit yet.
        let crash = (rounds % 2 == 0).then(|| {
            let missing: Vec<&str> = points
                .iter()
                .copied()
                .filter(|p| !by_point.contains_key(p))
                .collect();
            let pool = if missing.is_empty() {
                &points[..]
            } else {
                &missing[..]
            };
            (pool[rounds / 2 % pool.len()], 1 + dice.below(10))
        });
        let env = crash.map(|(point, at)| format!("{point}:{at}"));
        let mut child = runner(&sandbox, &manifest, &out, env);
        let requests = if crash.is_some() {
            60 + dice.below(150)
        } else {
            5 + dice.below(60)
        };
        if kill_after(&sandbox, &mut child, requests) {
            kills += 1;
            *by_point.entry("sigkill").or_default() += 1;
        } else if let Some((point, _)) = crash
            && killed(child.wait().unwrap())
        {
            kills += 1;
            *by_point.entry(point).or_default() += 1;
        }
    }
    eprintln!("{kills} kills in {rounds} rounds: {by_point:?}");
    assert!(kills >= KILLS);
    for point in points {
        assert!(
            by_point.get(point).copied().unwrap_or(0) > 0,
            "no crash at {point}: {by_point:?}"
        );
    }
    let status = finished.unwrap();
    assert_eq!(status.code(), Some(4), "some rows fail by design: exit 4");

    // The sandbox's own state.
    let jobs = sandbox.created_jobs();
    let mut per_url: HashMap<&str, Vec<&removebgvideo_sandbox::CreatedJob>> = HashMap::new();
    for job in &jobs {
        per_url.entry(job.video_url.as_str()).or_default().push(job);
    }
    let duplicates: Vec<_> = per_url.iter().filter(|(_, jobs)| jobs.len() > 1).collect();
    assert!(duplicates.is_empty(), "duplicate jobs: {duplicates:?}");
    assert_eq!(per_url.len(), ITEMS, "every item has its job (0 lost)");

    let ledger = Ledger::open(&out.join("ledger.sqlite"), Durability::Normal).unwrap();
    let batch = ledger.batches().unwrap().remove(0);
    let items = ledger.items(&batch).unwrap();
    assert_eq!(items.len(), ITEMS);
    let mut outputs = 0;
    for (i, item) in items.iter().enumerate() {
        let url = video_url(i);
        let job = per_url[url.as_str()][0];
        let (_, phase) = expected(i);
        assert_eq!(item.phase, phase, "item {i}: {item:?}");
        assert_eq!(item.job_id.as_deref(), Some(job.id.as_str()), "item {i}");
        let status = match phase {
            ItemPhase::Done => JobStatus::Completed,
            _ => JobStatus::Failed,
        };
        assert_eq!(job.status, status, "item {i}: the sandbox says");
        assert_eq!(
            item.job_status.as_deref(),
            Some(status.as_str()),
            "item {i}"
        );
        // The log: one answer with the job id, the restarts the scenario needs, statuses
        // that end where the sandbox is.
        let events = ledger.events(&batch, &item.key).unwrap();
        let created = events.iter().filter(|e| e.kind == "created").count();
        assert_eq!(created, 1, "item {i}: {events:?}");
        let restarts = events.iter().filter(|e| e.kind == "restart").count();
        match i % 10 {
            3 | 7 => assert!(restarts >= 1, "item {i} was restarted: {events:?}"),
            _ => assert_eq!(restarts, 0, "item {i}"),
        }
        if phase == ItemPhase::Done {
            let path = item.output_path.as_ref().unwrap();
            let bytes = std::fs::read(path).unwrap();
            let size = ((1 + i % 5) as u64 * BYTES_PER_SECOND).max(1024);
            assert_eq!(bytes.len() as u64, size, "item {i}: output size");
            let mut want = vec![0u8; size as usize];
            output_bytes(&job.id, 0, &mut want);
            assert!(bytes == want, "item {i}: output differs from the sandbox's");
            assert_eq!(item.output_size, Some(size));
            outputs += 1;
        }
    }
    assert_eq!(outputs, ITEMS - ITEMS / 10);
    // No part file left behind.
    let leftovers: Vec<_> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".part"))
        .collect();
    assert!(leftovers.is_empty(), "part files left: {leftovers:?}");
}
