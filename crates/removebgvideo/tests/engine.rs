//! The engine against the sandbox over real loopback HTTP: hundreds of waits on a few threads,
//! each ending in its job's true state; cancellation of a whole set; a job update from outside
//! ending a wait; downloads and runs through the engine; and virtual time.

use std::collections::HashMap;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use removebgvideo::core::Timestamp;
use removebgvideo::{
    CallOptions, Client, CreateJobRequest, DownloadOptions, ErrorCode, Event, Job, JobStatus,
    PollPolicy, RunOptions, RunRequest, Time, VirtualClock, WaitLimit, WaitOptions,
};
use removebgvideo_sandbox::{Sandbox, SandboxConfig, output_bytes};

const VIDEO: &str = "https://cdn.removebgvideo.com/uploads/your-video.mp4";

fn fast_poll() -> PollPolicy {
    PollPolicy {
        initial_interval: Duration::from_millis(20),
        max_interval: Duration::from_millis(200),
        min_interval: Duration::from_millis(10),
        max_eta_interval: Duration::from_millis(200),
        ..PollPolicy::default()
    }
}

fn sandbox() -> Sandbox {
    Sandbox::start(SandboxConfig {
        speed: 1000.0,
        ..SandboxConfig::default()
    })
    .expect("the sandbox starts")
}

fn client(sandbox: &Sandbox) -> Client {
    Client::builder()
        .api_key(sandbox.demo_key())
        .base_url(sandbox.base_url())
        .poll_policy(fast_poll())
        .build()
        .unwrap()
}

/// Whether `path` holds the sandbox's output of `job_id`, `bytes` long.
fn is_output(job_id: &str, path: &std::path::Path, bytes: u64) -> bool {
    let found = std::fs::read(path).unwrap();
    let mut expected = vec![0u8; bytes as usize];
    output_bytes(job_id, 0, &mut expected);
    !found.is_empty() && found == expected
}

/// Threads of this process now.
fn threads() -> usize {
    std::fs::read_dir("/proc/self/task").map_or(0, |d| d.count())
}

#[test]
fn hundreds_of_waits_run_on_the_engine_and_end_in_their_true_states() {
    let sandbox = sandbox();
    let client = client(&sandbox);
    let mut truth = HashMap::new();
    for i in 0..300 {
        let (url, end) = match i % 10 {
            0 => (format!("{VIDEO}?scenario=fail&n={i}"), JobStatus::Failed),
            _ => (
                format!("{VIDEO}?duration={}&n={i}", 5 + i % 30),
                JobStatus::Completed,
            ),
        };
        let created = client
            .create_job(&CreateJobRequest::new(url), &CallOptions::default())
            .unwrap();
        truth.insert(created.id, end);
    }
    let before = threads();
    let peak = Arc::new(Mutex::new(before));
    let mut set = client.watch(truth.keys().cloned(), &WaitOptions::default());
    assert_eq!(set.pending(), 300);
    let mut ended = HashMap::new();
    for (job_id, outcome) in set.by_ref() {
        let mut peak = peak.lock().unwrap();
        *peak = (*peak).max(threads());
        let status = match outcome {
            Ok(job) => job.status,
            Err(error) if error.code == ErrorCode::JobFailed => error.job.unwrap().status,
            Err(error) => panic!("{job_id}: {error}"),
        };
        ended.insert(job_id, status);
    }
    assert_eq!(ended, truth, "every job ended, in its true state");
    let engine = client.engine().workers() + 1;
    let peak = *peak.lock().unwrap();
    assert!(
        peak <= before + engine,
        "300 waits took the engine's {engine} threads, not one each ({before} before, {peak} at most)"
    );
}

#[test]
fn cancelling_a_set_ends_every_wait_as_cancelled() {
    let sandbox = sandbox();
    let client = client(&sandbox);
    let ids: Vec<String> = (0..20)
        .map(|i| {
            let url = format!("{VIDEO}?scenario=stuck&n={i}");
            client
                .create_job(&CreateJobRequest::new(url), &CallOptions::default())
                .unwrap()
                .id
        })
        .collect();
    let mut set = client.watch(ids, &WaitOptions::default());
    set.cancel();
    let codes: Vec<ErrorCode> = set.by_ref().map(|(_, r)| r.unwrap_err().code).collect();
    assert_eq!(codes, vec![ErrorCode::Cancelled; 20]);
}

#[test]
fn a_job_update_from_outside_ends_its_wait() {
    let sandbox = sandbox();
    let client = client(&sandbox);
    let stuck = client
        .create_job(
            &CreateJobRequest::new(format!("{VIDEO}?scenario=stuck")),
            &CallOptions::default(),
        )
        .unwrap();
    let (sender, outcome) = mpsc::channel();
    let slow = WaitOptions {
        poll: Some(PollPolicy {
            initial_interval: Duration::from_secs(60),
            max_interval: Duration::from_secs(60),
            min_interval: Duration::from_secs(60),
            ..PollPolicy::default()
        }),
        ..WaitOptions::default()
    };
    client.submit_wait(&stuck.id, &slow, Box::new(move |r| sender.send(r).unwrap()));
    let mut job = Job::new(stuck.id.clone(), "completed".into());
    job.output_url = Some("https://cdn.example.com/o.webm".into());
    // The first poll may still be on its way: the update is an observation either way.
    client.engine().update_job(job);
    let job = outcome
        .recv_timeout(Duration::from_secs(30))
        .unwrap()
        .unwrap();
    assert_eq!(job.status, JobStatus::Completed);
}

#[test]
fn downloads_and_runs_go_through_the_engine_too() {
    let sandbox = sandbox();
    let client = client(&sandbox);
    let dir = std::env::temp_dir().join(format!("rbv-engine-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();

    let events = Arc::new(Mutex::new(Vec::new()));
    let sink = events.clone();
    let options = RunOptions {
        call: CallOptions {
            on_event: Some(Arc::new(move |e: &Event| {
                sink.lock().unwrap().push(e.clone())
            })),
            ..CallOptions::default()
        },
        ..RunOptions::default()
    };
    let mut request = RunRequest::url(format!("{VIDEO}?duration=20"));
    request.download_to = Some(dir.join("run.webm"));
    let (sender, outcome) = mpsc::channel();
    client.submit_run(
        &request,
        &options,
        Box::new(move |r| sender.send(r).unwrap()),
    );
    let run = outcome
        .recv_timeout(Duration::from_secs(60))
        .unwrap()
        .unwrap();
    let output = run.output.unwrap();
    assert!(is_output(&run.job.id, &output.path, output.bytes));
    assert!(
        events
            .lock()
            .unwrap()
            .iter()
            .any(|e| matches!(e, Event::StatusChanged { .. })),
        "the run's events reach the caller"
    );

    let (sender, outcome) = mpsc::channel();
    let target = dir.join("again.webm");
    client.submit_download(
        run.job.clone(),
        &target,
        &DownloadOptions::default(),
        Box::new(move |r| sender.send(r).unwrap()),
    );
    let download = outcome
        .recv_timeout(Duration::from_secs(60))
        .unwrap()
        .unwrap();
    assert_eq!(download.bytes, output.bytes);
    assert!(is_output(&run.job.id, &target, download.bytes));
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn the_engine_jumps_virtual_time_to_its_next_timer() {
    let sandbox = sandbox();
    let start = Timestamp::from_unix_secs(1_795_000_000);
    let clock = VirtualClock::new(start);
    let client = Client::builder()
        .api_key(sandbox.demo_key())
        .base_url(sandbox.base_url())
        .clock(Arc::new(clock.clone()))
        .build()
        .unwrap();
    let stuck = client
        .create_job(
            &CreateJobRequest::new(format!("{VIDEO}?scenario=stuck")),
            &CallOptions::default(),
        )
        .unwrap();
    let options = WaitOptions {
        limit: WaitLimit::After(Duration::from_secs(3600)),
        ..WaitOptions::default()
    };
    let (_, outcome) = client.watch([stuck.id], &options).next().unwrap();
    assert_eq!(outcome.unwrap_err().code, ErrorCode::WaitTimeout);
    assert_eq!(
        clock.now().since(start),
        Duration::from_secs(3600),
        "an hour of polling passed in virtual time, ending at the deadline"
    );
}

#[test]
fn a_batch_on_a_rate_limited_key_paces_itself_instead_of_starting_a_429_storm() {
    let key = "rbv_engine_limited";
    let sandbox = Sandbox::start(SandboxConfig {
        speed: 1000.0,
        keys: vec![removebgvideo_sandbox::KeyConfig {
            key: key.into(),
            credits: 1e9,
            rate_per_second: 100.0,
            burst: 10,
        }],
        ..SandboxConfig::default()
    })
    .unwrap();
    let client = Client::builder()
        .api_key(key)
        .base_url(sandbox.base_url())
        .poll_policy(fast_poll())
        .build()
        .unwrap();
    // The creates go through the engine too, all at once, and meet the same limit.
    let (sender, created) = mpsc::channel();
    for i in 0..150 {
        let url = format!("{VIDEO}?duration={}&n={i}", 20 + i % 40);
        let sender = sender.clone();
        client.submit_create_job(
            &CreateJobRequest::new(url),
            &CallOptions::default(),
            Box::new(move |r| sender.send(r).unwrap()),
        );
    }
    let ids: Vec<String> = (0..150)
        .map(|_| created.recv().unwrap().unwrap().id)
        .collect();
    let ended: Vec<JobStatus> = client
        .watch(ids, &WaitOptions::default())
        .map(|(id, outcome)| outcome.unwrap_or_else(|e| panic!("{id}: {e}")).status)
        .collect();
    assert_eq!(
        ended,
        vec![JobStatus::Completed; 150],
        "no job lost to the limit"
    );
    let log = sandbox.request_log();
    let requests: Vec<_> = log.iter().filter(|r| r.path.starts_with("/v1/")).collect();
    let limited = requests.iter().filter(|r| r.status == Some(429)).count();
    // A storm is most requests refused (80 % for a thread per wait in docs/benchmarks.md); the
    // 2 % goal is the benchmark's to measure, on a quiet machine. On a loaded test machine the
    // goodput the gate measures is noisier, so this guards against the storm, at 5 %.
    assert!(
        limited * 20 <= requests.len(),
        "{limited} of {} requests answered 429 (at most 5 %)",
        requests.len()
    );
}
